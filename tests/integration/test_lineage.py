"""Lineage: a publication's OpenLineage file names each delivery it holds and each mart
it publishes, and the dbt build's events name the marts' upstream tables; both written
with OpenLineage's file transport under $PENSTAT_HOME/lineage/ (penstat.core.lineage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penstat.contract.layout import Paths
from penstat.contract.published import MART_COLUMNS
from penstat.core.lineage import DBT_EVENTS, airflow_environment
from penstat.publication.lineage import lineage_file, publication_event, record_publication
from tests import builders as b
from tests.reliability import build_and_publish, ingest_all, penstat_home, write_baseline


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_publication_names_its_deliveries_and_marts(tmp_path):
    with penstat_home(tmp_path / "home") as paths:
        first_deliveries = write_baseline(paths)
        ingest_all()
        first = build_and_publish()
        b.occupancy(paths.inbox, delivery_id="occ-2", rows=b.occupancy_rows("2024-01-02"))
        ingest_all(("occupancy",))
        second = build_and_publish()

    for published, deliveries in ((first, first_deliveries),
                                  (second, [*first_deliveries, "occupancy/occ-2"])):
        assert published["lineage"] == str(lineage_file(paths, published["version"]))
        (event,) = _events(Path(published["lineage"]))
        assert event["eventType"] == "COMPLETE"
        assert event["job"] == {"namespace": "penstat", "name": "penstat.publication",
                                "facets": {}}
        held = sorted(i["name"] for i in event["inputs"])
        assert held == sorted(str(paths.archive / d) for d in deliveries)
        for name in held:  # the inputs are the byte-identical archived deliveries
            assert Path(name).is_dir(), name
        manifest = json.loads((paths.published / published["version"] / "manifest.json")
                              .read_text())
        outputs = {Path(o["name"]).stem: o for o in event["outputs"]}
        assert set(outputs) == set(manifest["marts"]) == set(MART_COLUMNS)
        for mart, output in outputs.items():
            assert Path(output["name"]).is_file()
            assert output["outputFacets"]["outputStatistics"]["rowCount"] == \
                manifest["marts"][mart]["rows"]
            assert output["facets"]["version"]["datasetVersion"] == \
                manifest["marts"][mart]["sha256"]
            assert [f["name"] for f in output["facets"]["schema"]["fields"]] == \
                list(MART_COLUMNS[mart])
    assert first["version"] != second["version"]

    dbt_events = _events(paths.lineage / DBT_EVENTS)
    outputs = {o["name"].rsplit(".", 1)[-1] for e in dbt_events
               if e["eventType"] == "COMPLETE" for o in e.get("outputs", [])}
    assert set(MART_COLUMNS) <= outputs
    inputs = {i["name"] for e in dbt_events for i in e.get("inputs", [])}
    assert any(".raw." in name for name in inputs), sorted(inputs)[:10]


def test_the_event_changes_when_a_delivery_or_mart_changes(tmp_path):
    """Not a constant: the same publication gives the same run id, another one another."""
    paths = Paths(tmp_path)
    marts = {"mart_facility_daily": {"rows": 2, "sha256": "a" * 64}}
    one = publication_event(paths, "v1", "2026-01-01T00:00:00Z", ["occupancy/occ-1"], marts)
    same = publication_event(paths, "v1", "2026-01-01T00:00:00Z", ["occupancy/occ-1"], marts)
    other = publication_event(paths, "v2", "2026-01-01T00:00:00Z", ["occupancy/occ-2"], marts)
    assert one.run.runId == same.run.runId != other.run.runId
    assert [i.name for i in other.inputs] == [str(paths.archive / "occupancy" / "occ-2")]


def test_a_lineage_failure_is_logged_and_does_not_withdraw_the_publication(tmp_path, caplog):
    paths = Paths(tmp_path)
    (tmp_path / "lineage").write_text("a file where the lineage folder should be")
    assert record_publication(paths, "v1", "2026-01-01T00:00:00Z", [], {}) is None
    assert "lineage of publication v1 not written" in caplog.text


def test_airflow_writes_its_events_with_the_file_transport(tmp_path):
    env = airflow_environment(tmp_path / "lineage")
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport == {"type": "file", "append": True,
                         "log_file_path": str(tmp_path / "lineage" / "airflow" /
                                              "events.jsonl")}
    pytest.importorskip("airflow.providers.openlineage")
