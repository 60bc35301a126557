"""OpenLineage events of a dbt build: one START and one COMPLETE (or FAIL) per model,
seed and test run, with each model's input and output tables, parsed by openlineage-dbt
from the artifacts the build left in the target path (penstat.core.lineage)."""

from __future__ import annotations

import logging
from pathlib import Path

from penstat.core.lineage import DBT_EVENTS, NAMESPACE, PRODUCER, write_events
from penstat.core.locations import DBT_PROJECT_DIR

log = logging.getLogger(__name__)


def record_dbt_build(home: Path, target_path: Path) -> int:
    """Append the last build's events to $PENSTAT_HOME/lineage/dbt/events.jsonl; the
    number written. Lineage never fails a build: a parse error is logged and 0 returned."""
    try:
        from openlineage.common.provider.dbt.local import DbtLocalArtifactProcessor

        processor = DbtLocalArtifactProcessor(
            producer=PRODUCER, job_namespace=NAMESPACE, project_dir=str(DBT_PROJECT_DIR),
            target_path=str(target_path), dbt_command_line=["dbt", "build"])
        events = processor.parse()
        return write_events([*events.starts, *events.completes, *events.fails],
                            Path(home) / "lineage" / DBT_EVENTS)
    except Exception as exc:  # observability must not stop the warehouse
        log.warning("dbt lineage not written: %s: %s", type(exc).__name__, exc)
        return 0
