"""Secrets penstat needs: the pseudonym key (PENSTAT_PSEUDONYM_KEY, no default)."""

from __future__ import annotations

import os


class MissingPseudonymKey(RuntimeError):
    pass


def pseudonym_key() -> bytes:
    """The keyed-hash secret. Refuses to run without one: there is no default."""
    key = os.environ.get("PENSTAT_PSEUDONYM_KEY", "")
    if len(key) < 16:
        raise MissingPseudonymKey(
            "PENSTAT_PSEUDONYM_KEY is not set (or shorter than 16 characters): person-level "
            "deliveries cannot be pseudonymised, so they are not ingested. Set it from your "
            "secret store; it must stay the same across runs for pseudonyms to link."
        )
    return key.encode("utf-8")
