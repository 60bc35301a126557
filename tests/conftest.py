from __future__ import annotations

import logging
import os
import tempfile

# Airflow reads its home at import time: keep the tests' Airflow out of ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="penstat-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
from pathlib import Path

import pytest

from penstat.contract.layout import Paths

TEST_KEY = "test-only-pseudonym-key-0123456789"


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A fresh PENSTAT_HOME with a throwaway pseudonym key."""
    home = tmp_path / "home"
    monkeypatch.setenv("PENSTAT_HOME", str(home))
    monkeypatch.setenv("PENSTAT_PSEUDONYM_KEY", TEST_KEY)
    p = Paths.from_env()
    p.ensure()
    return p


@pytest.fixture(autouse=True)
def _quiet_gx():
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
