"""Fixtures of the ingestion tests."""

from __future__ import annotations

import pytest

from penstat.contract.layout import Paths
from penstat.ingestion.pipeline import ingest_feed
from tests import builders as b


@pytest.fixture
def home(paths: Paths) -> Paths:
    """PENSTAT_HOME with the facility register loaded (the other v1 feeds need it).

    Modules that need another starting point define their own `home`."""
    b.register(paths.inbox)
    assert [o.outcome for o in ingest_feed("facility_register", paths)] == ["loaded"]
    return paths
