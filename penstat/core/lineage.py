"""OpenLineage: one producer, one namespace, one way to write events to files.

penstat writes its lineage with OpenLineage's file transport under
$PENSTAT_HOME/lineage/ (docs/operations.md, "Lineage"): Airflow's OpenLineage
provider writes each task run's events to airflow/events.jsonl, the dbt build its
models' to dbt/events.jsonl, and every publication one event naming the deliveries
it holds (inputs) and the marts it publishes (outputs) to publications/<version>.json.
A lineage consumer (Marquez, DataHub, OpenMetadata) reads those files as they are.

Datasets are named the way the OpenLineage naming spec names local files:
namespace `file://<host>`, name the absolute path; a delivery is its archive folder
(byte-identical to what arrived), a mart its Parquet file in the publication.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PRODUCER = "https://github.com/penstat/penstat"
NAMESPACE = "penstat"  # the job namespace of every penstat job (Airflow's, dbt's, ours)
AIRFLOW_EVENTS = "airflow/events.jsonl"
DBT_EVENTS = "dbt/events.jsonl"
PUBLICATIONS = "publications"


def file_namespace() -> str:
    """The dataset namespace of a local file (OpenLineage naming spec: file://{host})."""
    return f"file://{socket.gethostname()}"


def write_events(events: Iterable[Any], path: Path) -> int:
    """Append `events` (openlineage.client RunEvents) to the JSON-lines file `path`
    through OpenLineage's file transport; the number written."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    path.parent.mkdir(parents=True, exist_ok=True)
    client = OpenLineageClient(transport=FileTransport(FileConfig(
        log_file_path=str(path), append=True)))
    n = 0
    for event in events:
        client.emit(event)
        n += 1
    return n


def airflow_environment(lineage_dir: Path) -> dict[str, str]:
    """Environment for Airflow's OpenLineage provider: file transport under lineage_dir."""
    return {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({
            "type": "file", "log_file_path": str(lineage_dir / AIRFLOW_EVENTS),
            "append": True}),
    }
