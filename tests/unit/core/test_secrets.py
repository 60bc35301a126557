"""The pseudonym key: from Airflow's connection lookup first, then the environment."""

from __future__ import annotations

import pytest

from penstat.core.secrets import (
    CONNECTION_ID,
    KEY_ENV,
    MissingPseudonymKey,
    key_from_airflow,
    pseudonym_key,
)

CONN_ENV = f"AIRFLOW_CONN_{CONNECTION_ID.upper()}"
AIRFLOW_KEY = "from-airflow-connection-0123456789"
ENV_KEY = "from-environment-variable-0123456789"


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.delenv(CONN_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


def connection(password: str) -> str:
    return f'{{"conn_type": "generic", "password": "{password}"}}'


def test_without_an_airflow_connection_the_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv(KEY_ENV, ENV_KEY)
    assert key_from_airflow() is None
    assert pseudonym_key() == ENV_KEY.encode()


def test_the_airflow_connection_wins_over_the_environment(monkeypatch):
    # AIRFLOW_CONN_*: the secrets backend Airflow always consults (a configured
    # backend such as Vault is asked first, the same way)
    monkeypatch.setenv(CONN_ENV, connection(AIRFLOW_KEY))
    monkeypatch.setenv(KEY_ENV, ENV_KEY)
    assert key_from_airflow() == AIRFLOW_KEY
    assert pseudonym_key() == AIRFLOW_KEY.encode()


def test_a_weak_key_in_the_connection_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv(CONN_ENV, connection("short"))
    monkeypatch.setenv(KEY_ENV, ENV_KEY)  # no silent fallback past a configured key
    with pytest.raises(MissingPseudonymKey, match=f"Airflow connection {CONNECTION_ID}"):
        pseudonym_key()


def test_no_key_anywhere_is_refused(monkeypatch):
    with pytest.raises(MissingPseudonymKey, match=KEY_ENV):
        pseudonym_key()
