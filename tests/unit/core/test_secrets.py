"""The pseudonym key: from Airflow's secrets chain (a connection's password or a variable,
through the configured secrets backend or AIRFLOW_CONN_/AIRFLOW_VAR_ variables), falling
back to PENSTAT_PSEUDONYM_KEY; checked the same way whatever its source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from penstat.core import secrets
from penstat.core.secrets import MissingPseudonymKey, key_and_source, pseudonym_key

ENV_KEY = "env-key-0123456789abcdef"
AIRFLOW_KEY = "airflow-key-fedcba9876543210"


@pytest.fixture
def clean_env(monkeypatch):
    for name in (secrets.KEY_ENV, *secrets.AIRFLOW_POINTERS):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_environment_variable_is_the_fallback(clean_env):
    clean_env.setenv(secrets.KEY_ENV, ENV_KEY)
    assert key_and_source() == (ENV_KEY, secrets.KEY_ENV)
    assert pseudonym_key() == ENV_KEY.encode()


def test_an_airflow_connection_wins_over_the_environment(clean_env):
    pytest.importorskip("airflow.sdk")
    clean_env.setenv(secrets.KEY_ENV, ENV_KEY)
    clean_env.setenv("AIRFLOW_CONN_PENSTAT_PSEUDONYM_KEY",
                     json.dumps({"conn_type": "generic", "password": AIRFLOW_KEY}))
    key, source = key_and_source()
    assert (key, source) == (AIRFLOW_KEY, "Airflow connection penstat_pseudonym_key (password)")
    assert pseudonym_key() == AIRFLOW_KEY.encode()


def test_an_airflow_variable_is_read_when_there_is_no_connection(clean_env):
    pytest.importorskip("airflow.sdk")
    clean_env.setenv("AIRFLOW_VAR_PENSTAT_PSEUDONYM_KEY", AIRFLOW_KEY)
    assert key_and_source() == (AIRFLOW_KEY, "Airflow variable penstat_pseudonym_key")


def test_a_weak_key_from_airflow_is_refused_and_named(clean_env):
    pytest.importorskip("airflow.sdk")
    clean_env.setenv(secrets.KEY_ENV, ENV_KEY)  # a good fallback does not rescue a bad secret
    clean_env.setenv("AIRFLOW_VAR_PENSTAT_PSEUDONYM_KEY", "x" * 20)
    with pytest.raises(MissingPseudonymKey, match=r"Airflow variable penstat_pseudonym_key is "
                                                  r"not usable \(it is one character repeated"):
        pseudonym_key()


def test_no_key_anywhere_is_refused(clean_env):
    with pytest.raises(MissingPseudonymKey, match="PENSTAT_PSEUDONYM_KEY is not usable"):
        pseudonym_key()


def test_without_a_pointer_to_airflow_airflow_is_not_imported():
    """`penstat real` and the tests do not pay Airflow's start-up for the key."""
    code = ("import sys; from penstat.core.secrets import pseudonym_key; "
            "k = pseudonym_key(); print('airflow' in sys.modules, k.decode())")
    env = {k: v for k, v in os.environ.items()
           if k not in secrets.AIRFLOW_POINTERS} | {secrets.KEY_ENV: ENV_KEY}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", ENV_KEY]
