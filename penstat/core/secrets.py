"""Secrets penstat needs: the pseudonym key (PENSTAT_PSEUDONYM_KEY, no default)."""

from __future__ import annotations

import os

KEY_ENV = "PENSTAT_PSEUDONYM_KEY"
MIN_KEY_CHARACTERS = 16


class MissingPseudonymKey(RuntimeError):
    pass


def key_weakness(key: str) -> str | None:
    """Why `key` cannot protect identifiers (None: it is acceptable).

    The length alone is no guard: sixteen spaces, or one character repeated,
    pass a length check yet make every pseudonym guessable by anyone who
    tries the obvious keys. Whitespace does not count towards the length.
    """
    if not key:
        return "it is not set"
    meaningful = "".join(key.split())
    if len(meaningful) < MIN_KEY_CHARACTERS:
        return (f"it has {len(meaningful)} characters other than white space; "
                f"at least {MIN_KEY_CHARACTERS} are required")
    if len(set(meaningful)) == 1:
        return "it is one character repeated"
    return None


def pseudonym_key() -> bytes:
    """The keyed-hash secret. Refuses to run without a usable one: there is no default.

    The key is used exactly as configured (not stripped), so pseudonyms made with
    an existing key stay the same.
    """
    key = os.environ.get(KEY_ENV, "")
    weakness = key_weakness(key)
    if weakness:
        raise MissingPseudonymKey(
            f"{KEY_ENV} is not usable ({weakness}): person-level deliveries cannot be "
            "pseudonymised, so they are not ingested and stay in the inbox. Set a random "
            f"key of at least {MIN_KEY_CHARACTERS} characters from your secret store; it "
            "must stay the same across runs for pseudonyms to link."
        )
    return key.encode("utf-8")
