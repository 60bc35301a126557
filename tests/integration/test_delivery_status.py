"""The operator's view: mart_delivery_status, the lateness check and where alerts go.

mart_delivery_status is built by dbt against `as_of_date`; here a fixed date
(2024-03-10) over the small baseline, so every number is known:

- occupancy (daily): each facility last sent 2024-01-01; 2024-01-02 fell due on
  2024-01-03, so 67 days late;
- staffing (monthly): TS-0001 and TS-0002 last sent January; February fell due
  on 2024-03-01, 9 days late; TS-0003 never sent January (due 2024-02-01): 38;
- facility_register: no schedule; recidivism: next yearly extraction due
  2025-06-30, on time.

A late feed fails penstat_build.check_delivery_status; every penstat task's
failure goes to penstat.orchestration.callbacks.notify_failure: one JSON line on the
`penstat.alerts` logger, and the PENSTAT_ALERT_HOOK function if configured.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from types import SimpleNamespace

import duckdb
import pytest

from penstat.orchestration import callbacks, tasks
from tests.reliability import V1_FEEDS, ingest_all, penstat_home, write_baseline

AS_OF = "2024-03-10"
RECEIVED: list[dict] = []


def record_alert(event: dict) -> None:
    """A PENSTAT_ALERT_HOOK target (tests.integration.test_delivery_status:record_alert)."""
    RECEIVED.append(event)


def broken_hook(event: dict) -> None:
    raise ConnectionError("the chat server is down")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from penstat.transform.dbt_runner import build

    with penstat_home(tmp_path_factory.mktemp("status") / "home") as paths:
        write_baseline(paths)
        ingest_all()
        build(paths.home, {"as_of_date": AS_OF})
        yield paths


def test_mart_delivery_status_per_feed_and_facility(home):
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT feed, facility_id, last_period_received, days_late, last_delivery_id, "
            "status FROM marts.mart_delivery_status WHERE feed IN ?", [list(V1_FEEDS)]
        ).fetchall()
    finally:
        con.close()
    jan1, jan = date(2024, 1, 1), date(2024, 1, 1)
    assert sorted(rows, key=lambda r: (r[0], r[1] or "")) == [
        ("facility_register", None, jan1, None, "reg-1", "ok"),
        ("occupancy", "TS-0001", jan1, 67, "occ-base", "late"),
        ("occupancy", "TS-0002", jan1, 67, "occ-base", "late"),
        ("occupancy", "TS-0003", jan1, 67, "occ-base", "late"),
        ("recidivism", None, date(2024, 6, 30), 0, "rec-1", "ok"),
        ("staffing", "TS-0001", jan, 9, "stf-1", "late"),
        ("staffing", "TS-0002", jan, 9, "stf-1", "late"),
        ("staffing", "TS-0003", None, 38, None, "late"),
    ]


def test_late_feeds_are_reported_with_facility_and_days(home):
    late = tasks.late_feeds(home, min_days_late=1)
    assert [(r["feed"], r["facility_id"], r["days_late"]) for r in late
            if r["feed"] in V1_FEEDS] == [
        ("occupancy", "TS-0001", 67), ("occupancy", "TS-0002", 67),
        ("occupancy", "TS-0003", 67), ("staffing", "TS-0001", 9), ("staffing", "TS-0002", 9),
        ("staffing", "TS-0003", 38)]
    report = tasks.lateness_report(late)
    assert "occupancy/TS-0001: 67 days late, last period 2024-01-01" in report
    assert "staffing/TS-0003: 38 days late, last period None" in report
    assert [r["facility_id"] for r in tasks.late_feeds(home, min_days_late=40)
            if r["feed"] in V1_FEEDS] == ["TS-0001", "TS-0002", "TS-0003"]
    assert [r for r in tasks.late_feeds(home, min_days_late=100)
            if r["feed"] in V1_FEEDS] == []


def test_a_late_feed_fails_the_check_task(home):
    with pytest.raises(tasks.FeedsLate, match="occupancy/TS-0001: 67 days late"):
        tasks.check_delivery_status()
    # as the DAG calls it: with the lateness the build read
    late = tasks.late_feeds()
    with pytest.raises(tasks.FeedsLate, match=f"(?s){len(late)} feed/facility pair.*"
                       "occupancy/TS-0001: 67 days late"):
        tasks.check_delivery_status(tasks.late_summary(late))
    few = {"late": late[:1], "late_total": 1000}  # what a build keeps of many
    with pytest.raises(tasks.FeedsLate, match=r"1000 feed/facility(.|\n)*and 999 more"):
        tasks.check_delivery_status(few)
    assert tasks.check_delivery_status(tasks.late_summary([])) == {"late": 0}


def _context(dag_id: str, task_id: str, error: Exception) -> dict:
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id="asset_triggered__x")
    return {"task_instance": ti, "exception": error}


def test_a_failure_is_one_json_alert_line_by_default(monkeypatch, caplog):
    monkeypatch.delenv(callbacks.HOOK_ENV, raising=False)
    caplog.set_level(logging.ERROR, logger="penstat.alerts")
    callbacks.notify_failure(_context("penstat_build", "check_delivery_status",
                                      tasks.FeedsLate("occupancy/TS-0001: 67 days late")))
    [record] = [r for r in caplog.records if r.name == "penstat.alerts"]
    event = json.loads(record.getMessage())
    assert event == {"event": "penstat_task_failed", "kind": "feed_late",
                     "dag_id": "penstat_build", "task_id": "check_delivery_status",
                     "run_id": "asset_triggered__x", "feed": None,
                     "error": "occupancy/TS-0001: 67 days late"}


def test_a_failing_feed_is_routed_to_the_configured_hook(monkeypatch, caplog):
    RECEIVED.clear()
    monkeypatch.setenv(callbacks.HOOK_ENV, "tests.integration.test_delivery_status:record_alert")
    callbacks.notify_failure(_context("penstat_ingest_occupancy", "report_rejections",
                                      RuntimeError("1 delivery(ies) quarantined")))
    [event] = RECEIVED
    assert (event["kind"], event["feed"]) == ("deliveries_rejected", "occupancy")


def test_a_broken_hook_does_not_swallow_the_alert(monkeypatch, caplog):
    monkeypatch.setenv(callbacks.HOOK_ENV, "tests.integration.test_delivery_status:broken_hook")
    caplog.set_level(logging.WARNING, logger="penstat.alerts")  # the hook failure: a warning
    callbacks.notify_failure(_context("penstat_publish", "gate_and_publish",
                                      RuntimeError("gate failed")))
    messages = [r.getMessage() for r in caplog.records if r.name == "penstat.alerts"]
    assert json.loads(messages[0])["kind"] == "gate_failed"
    assert "was not delivered there" in messages[1]


def test_every_penstat_task_routes_failures_and_the_check_follows_the_build(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    from penstat.core.locations import REPO_ROOT
    from penstat.orchestration.assets import WAREHOUSE_POOL

    with penstat_home(tmp_path / "home"):
        dagbag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert dagbag.import_errors == {}
    build = dagbag.dags["penstat_build"]
    check = build.get_task("check_delivery_status")
    assert check.upstream_task_ids == {"dbt_build"}
    # it judges the lateness dbt_build read: it holds no pool, so the publication of
    # the new marts never waits for the report
    assert check.pool != WAREHOUSE_POOL
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            callback = task.on_failure_callback
            callback = callback[0] if isinstance(callback, list) else callback
            assert callback is callbacks.notify_failure, (dag.dag_id, task.task_id)
