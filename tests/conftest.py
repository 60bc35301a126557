from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ingestion.settings import Paths

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
