"""The lineage of a publication: one OpenLineage run event whose inputs are the
deliveries it holds and whose outputs are the marts it publishes.

Written to $PENSTAT_HOME/lineage/publications/<version>.json (OpenLineage's file
transport, penstat.core.lineage) once the publication is switched to `current`.
Each delivery is its archive folder (byte-identical to what arrived; the manifest's
delivery id is the dataset's version), each mart its Parquet file with its row count
and sha256 (the same as in the publication's manifest.json). The run id is derived
from the version, so writing the file again for the same publication names the
same run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

from penstat.contract.layout import Paths
from penstat.contract.published import MART_COLUMNS
from penstat.core.lineage import NAMESPACE, PRODUCER, PUBLICATIONS, file_namespace, write_events

log = logging.getLogger(__name__)
JOB_NAME = "penstat.publication"
RUN_NAMESPACE = uuid.UUID("6c3a4e52-4d1f-4f0b-9b77-0a9d2b1f3c11")  # uuid5 namespace of runs


def lineage_file(paths: Paths, version: str) -> Path:
    return paths.lineage / PUBLICATIONS / f"{version}.json"


def publication_event(paths: Paths, version: str, published_at: str,
                      deliveries: list[str], marts: dict[str, dict]):
    """The COMPLETE run event of publication `version` (openlineage.client RunEvent)."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import (
        dataset_version_dataset,
        output_statistics_output_dataset,
        schema_dataset,
    )

    namespace = file_namespace()
    inputs = []
    for delivery in deliveries:
        feed, delivery_id = delivery.split("/", 1)
        inputs.append(InputDataset(
            namespace=namespace, name=str(paths.archive / feed / delivery_id),
            facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=delivery_id, producer=PRODUCER)}))
    folder = paths.published / version
    outputs = []
    for mart, info in marts.items():
        fields = [schema_dataset.SchemaDatasetFacetFields(name=c)
                  for c in MART_COLUMNS.get(mart, ())]
        outputs.append(OutputDataset(
            namespace=namespace, name=str(folder / f"{mart}.parquet"),
            facets={"schema": schema_dataset.SchemaDatasetFacet(fields=fields,
                                                                producer=PRODUCER),
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                        datasetVersion=str(info.get("sha256", version)), producer=PRODUCER)},
            outputFacets={"outputStatistics":
                          output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                              rowCount=int(info.get("rows", 0)), producer=PRODUCER)}))
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=published_at or datetime.now(UTC).isoformat(),
        run=Run(runId=str(uuid.uuid5(RUN_NAMESPACE, version))),
        job=Job(namespace=NAMESPACE, name=JOB_NAME),
        inputs=inputs, outputs=outputs, producer=PRODUCER)


def record_publication(paths: Paths, version: str, published_at: str,
                       deliveries: list[str], marts: dict[str, dict]) -> Path | None:
    """Write the publication's lineage file; its path, or None if it could not be
    written (logged: lineage never withdraws a publication that passed the gate)."""
    target = lineage_file(paths, version)
    try:
        event = publication_event(paths, version, published_at, deliveries, marts)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.unlink(missing_ok=True)
        write_events([event], tmp)
        tmp.replace(target)
        return target
    except Exception as exc:
        log.error("lineage of publication %s not written: %s: %s", version,
                  type(exc).__name__, exc)
        return None
