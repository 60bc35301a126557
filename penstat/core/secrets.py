"""Secrets penstat needs: the pseudonym key (no default).

Where the key comes from, first found wins:

1. the Airflow connection `penstat_pseudonym_key` (its password), looked up the
   Airflow way: the configured secrets backend (`[secrets] backend`: Vault, AWS
   Secrets Manager, ...), then `AIRFLOW_CONN_PENSTAT_PSEUDONYM_KEY`, then, inside a
   task, the metadata database through the execution API. Airflow masks it in task
   logs. Only when Airflow is installed; a connection that is not defined is no error;
2. the environment variable PENSTAT_PSEUDONYM_KEY.

Either way the key must pass `key_weakness`.
"""

from __future__ import annotations

import os

KEY_ENV = "PENSTAT_PSEUDONYM_KEY"
CONNECTION_ID = "penstat_pseudonym_key"
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
    from_airflow = key_from_airflow()
    key = from_airflow if from_airflow is not None else os.environ.get(KEY_ENV, "")
    source = f"the Airflow connection {CONNECTION_ID}" if from_airflow is not None else KEY_ENV
    weakness = key_weakness(key)
    if weakness:
        raise MissingPseudonymKey(
            f"{source} is not usable ({weakness}): person-level deliveries cannot be "
            "pseudonymised, so they are not ingested and stay in the inbox. Set a random "
            f"key of at least {MIN_KEY_CHARACTERS} characters from your secret store; it "
            "must stay the same across runs for pseudonyms to link."
        )
    return key.encode("utf-8")


def key_from_airflow() -> str | None:
    """The password of the Airflow connection CONNECTION_ID; None when Airflow is not
    installed or has no such connection (then the environment variable is used)."""
    try:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None
    try:
        connection = Connection.get(CONNECTION_ID)
    except AirflowNotFoundException:
        return None
    return connection.password if connection is not None else None
