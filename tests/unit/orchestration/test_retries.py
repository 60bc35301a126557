"""Which failures the idempotent tasks retry: what passes by itself, never a verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from penstat.ingestion.pipeline import IngestionHalted
from penstat.orchestration import tasks
from penstat.publication.publish import GateFailed
from penstat.transform.dbt_runner import DbtBuildFailed


@pytest.mark.parametrize(("failure", "verdict"), [
    (DbtBuildFailed("1 of 178 ERROR: test not_null_mart_x_y"), True),
    (GateFailed(["mart_x: expect_column_values_to_not_be_null"], Path("gate.json")), True),
    (IngestionHalted("the warehouse is locked by another writer"), False),
    (OSError(28, "No space left on device"), False),
    (RuntimeError("anything else"), False),
])
def test_a_verdict_is_not_retried(failure, verdict):
    assert tasks.is_verdict(failure) is verdict
