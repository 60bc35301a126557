"""Secrets penstat needs: the pseudonym key (no default).

Where the key comes from, first found wins:

1. Airflow, the way Airflow deployments keep secrets: the password of the connection
   `penstat_pseudonym_key`, else the variable `penstat_pseudonym_key`, looked up through
   Airflow's secrets chain: the configured secrets backend (`[secrets] backend`: Vault,
   AWS Secrets Manager, GCP Secret Manager, ...), `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*`
   environment variables, and, inside a task, the metadata database.
2. The environment variable PENSTAT_PSEUDONYM_KEY.

Airflow is consulted when it is already loaded (every Airflow task) or when the
environment points at a secret of it (AIRFLOW_CONN_PENSTAT_PSEUDONYM_KEY,
AIRFLOW_VAR_PENSTAT_PSEUDONYM_KEY or AIRFLOW__SECRETS__BACKEND): importing Airflow
takes seconds, which `penstat real` and the tests need not pay for nothing.
Whatever its source, a key is checked the same way (key_weakness) and never logged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

KEY_ENV = "PENSTAT_PSEUDONYM_KEY"
AIRFLOW_SECRET_ID = "penstat_pseudonym_key"  # connection (password) or variable id
AIRFLOW_POINTERS = ("AIRFLOW_CONN_PENSTAT_PSEUDONYM_KEY", "AIRFLOW_VAR_PENSTAT_PSEUDONYM_KEY",
                    "AIRFLOW__SECRETS__BACKEND")
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


def _airflow_wanted() -> bool:
    return "airflow.sdk" in sys.modules or any(os.environ.get(v) for v in AIRFLOW_POINTERS)


def _from_airflow() -> tuple[str, str] | None:
    """(key, where it came from) from Airflow's secrets chain, or None."""
    try:
        from airflow.sdk import Connection, Variable
    except ImportError:
        return None
    lookups: tuple[tuple[str, Callable[[], str | None]], ...] = (
        (f"Airflow connection {AIRFLOW_SECRET_ID} (password)",
         lambda: Connection.get(AIRFLOW_SECRET_ID).password),
        (f"Airflow variable {AIRFLOW_SECRET_ID}",
         lambda: Variable.get(AIRFLOW_SECRET_ID, default=None)),
    )
    for where, lookup in lookups:
        try:
            value = lookup()
        except Exception:  # not defined there (AirflowNotFoundException), no backend
            continue
        if value:
            return str(value), where
    return None


def key_and_source() -> tuple[str, str]:
    """The configured key (possibly empty) and where it was found."""
    if _airflow_wanted():
        found = _from_airflow()
        if found:
            return found
    return os.environ.get(KEY_ENV, ""), KEY_ENV


def pseudonym_key() -> bytes:
    """The keyed-hash secret. Refuses to run without a usable one: there is no default.

    The key is used exactly as configured (not stripped), so pseudonyms made with
    an existing key stay the same.
    """
    key, source = key_and_source()
    weakness = key_weakness(key)
    if weakness:
        raise MissingPseudonymKey(
            f"{source} is not usable ({weakness}): person-level deliveries cannot be "
            "pseudonymised, so they are not ingested and stay in the inbox. Set a random "
            f"key of at least {MIN_KEY_CHARACTERS} characters as the password of the "
            f"Airflow connection {AIRFLOW_SECRET_ID} (in your secrets backend) or in "
            f"{KEY_ENV}; it must stay the same across runs for pseudonyms to link."
        )
    return key.encode("utf-8")
