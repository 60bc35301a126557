"""Incremental builds: a delivery rebuilds the months it touches, and equals a full rebuild.

The scenario test runs the real pipeline (ingestion, dbt-duckdb, the GX gate,
publication) on a small synthetic system: a full first build, a new day in a
new month, a correction (`replaces`) of one day two years back, and then
`make rebuild`'s full refresh, whose publication must be byte-identical (the
publisher finds nothing to publish). The planner's decisions are unit-tested on
a bare ledger.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from penstat.contract.feeds import FEEDS
from penstat.contract.layout import Paths
from penstat.senders.delivery import write_delivery
from penstat.transform.increments import (
    ALWAYS_SELECTED,
    FULL_REFRESH_FEEDS,
    PERIOD_FEEDS,
    plan_build,
    project_fingerprint,
)
from penstat.warehouse.schema import create_schema

# ---------------------------------------------------------------- the planner


def _ledger() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    create_schema(con)
    return con


def _deliver(con, seq: int, feed: str, table: str | None = None, periods=()) -> None:
    con.execute("INSERT INTO meta.deliveries VALUES (?, ?, ?, 'T', now(), NULL, NULL, NULL, "
                "'m', 'c', ?, now())", [seq, feed, f"{feed}-{seq}", len(periods)])
    for period in periods:
        if table == "raw.occupancy__occupancy":
            con.execute(f"INSERT INTO {table} (facility_id, census_date, population, "
                        "_delivery_id, _delivery_seq, _file, _row, _loaded_at) "
                        "VALUES ('F1', ?, 1, 'd', ?, 'f', 1, now())", [period, seq])
        else:
            con.execute(f"INSERT INTO {table} (facility_id, month, staff_category, fte, "
                        "_delivery_id, _delivery_seq, _file, _row, _loaded_at) "
                        "VALUES ('F1', ?, 'custodial', 1, 'd', ?, 'f', 1, now())",
                        [period, seq])


def _finish_build(con, build_id: int, seq: int, fingerprint: str = "fp",
                  finished: bool = True) -> None:
    con.execute("INSERT INTO meta.builds (build_id, max_delivery_seq, started_at, finished_at, "
                "project_fingerprint) VALUES (?, ?, now(), ?, ?)",
                [build_id, seq, "2026-01-01" if finished else None, fingerprint])


def test_first_build_is_full():
    con = _ledger()
    _deliver(con, 1, "occupancy", "raw.occupancy__occupancy", ["2024-01-05"])
    plan = plan_build(con, 1, "fp")
    assert (plan.mode, plan.reason) == ("full", "no finished build yet")
    assert plan.select == []


def test_new_day_rebuilds_only_its_month_and_the_feeds_downstream_models():
    con = _ledger()
    _deliver(con, 1, "occupancy", "raw.occupancy__occupancy", ["2024-01-05"])
    _finish_build(con, 1, 1)
    _deliver(con, 2, "occupancy", "raw.occupancy__occupancy", ["2024-03-31"])
    plan = plan_build(con, 2, "fp")
    assert plan.mode == "incremental"
    assert plan.months == (date(2024, 3, 1),)
    assert plan.select == ["source:occupancy+", *ALWAYS_SELECTED]
    assert plan.dbt_vars == {"months_from_ledger": True}


def test_months_of_a_monthly_feed_and_of_several_deliveries_are_merged():
    con = _ledger()
    _finish_build(con, 1, 0)
    _deliver(con, 1, "occupancy", "raw.occupancy__occupancy", ["2024-02-29", "2023-12-01"])
    _deliver(con, 2, "staffing", "raw.staffing__staffing", ["2024-02", "2024-05"])
    plan = plan_build(con, 2, "fp")
    assert plan.months == (date(2023, 12, 1), date(2024, 2, 1), date(2024, 5, 1))
    assert plan.feeds == ("occupancy", "staffing")


def test_rows_already_built_are_not_rebuilt():
    con = _ledger()
    _deliver(con, 1, "occupancy", "raw.occupancy__occupancy", ["2024-01-05"])
    _finish_build(con, 1, 1)
    plan = plan_build(con, 1, "fp")  # the doorbell rang, nothing new arrived
    assert plan.mode == "incremental"
    assert plan.months == () and plan.feeds == ()
    assert plan.select == list(ALWAYS_SELECTED)


def test_a_killed_build_is_redone_from_the_last_finished_one():
    con = _ledger()
    _deliver(con, 1, "occupancy", "raw.occupancy__occupancy", ["2024-01-05"])
    _finish_build(con, 1, 1)
    _deliver(con, 2, "occupancy", "raw.occupancy__occupancy", ["2024-02-05"])
    _finish_build(con, 2, 2, finished=False)  # killed half-way
    _deliver(con, 3, "occupancy", "raw.occupancy__occupancy", ["2024-03-05"])
    plan = plan_build(con, 3, "fp")
    assert plan.since_delivery_seq == 1
    assert plan.months == (date(2024, 2, 1), date(2024, 3, 1))


@pytest.mark.parametrize("feed", FULL_REFRESH_FEEDS)
def test_a_register_delivery_forces_a_full_rebuild(feed):
    con = _ledger()
    _finish_build(con, 1, 0)
    _deliver(con, 1, feed)
    plan = plan_build(con, 1, "fp")
    assert plan.mode == "full" and feed in plan.reason


def test_a_changed_project_or_threshold_forces_a_full_rebuild(tmp_path: Path):
    con = _ledger()
    _finish_build(con, 1, 0, fingerprint="old")
    assert plan_build(con, 0, "new").mode == "full"
    assert plan_build(con, 0, "old", full_refresh=True).reason == "requested"

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "m.sql").write_text("select 1")
    base = project_fingerprint({"disclosure_min_person_count": 5}, project)
    # the run's date and months do not change what a model means
    assert project_fingerprint({"disclosure_min_person_count": 5, "as_of_date": "2026-01-01",
                                "months_from_ledger": True}, project) == base
    assert project_fingerprint({"disclosure_min_person_count": 6}, project) != base
    (project / "models" / "m.sql").write_text("select 2")
    assert project_fingerprint({"disclosure_min_person_count": 5}, project) != base


def test_period_feeds_are_exactly_the_sources_upstream_of_the_incremental_models(tmp_path):
    """If a model starts reading another feed, the planner must learn its months."""
    from penstat.transform.dbt_runner import run_dbt, target_path

    result = run_dbt(["parse"], home=tmp_path)
    assert result.success, result.exception
    manifest = json.loads((target_path(tmp_path) / "manifest.json").read_text())
    nodes = {**manifest["nodes"], **manifest["sources"]}

    def upstream_sources(uid: str, seen: set[str]) -> set[str]:
        found = set()
        for parent in nodes[uid].get("depends_on", {}).get("nodes", []):
            if parent in seen:
                continue
            seen.add(parent)
            if parent.startswith("source."):
                found.add(nodes[parent]["source_name"])
            else:
                found |= upstream_sources(parent, seen)
        return found

    incremental = [uid for uid, n in manifest["nodes"].items()
                   if n["resource_type"] == "model"
                   and n["config"]["materialized"] == "incremental"]
    assert {manifest["nodes"][u]["name"] for u in incremental} >= {
        "int_facility_days", "int_disclosure_days", "int_facility_months",
        "mart_facility_daily"}
    sources = set().union(*(upstream_sources(u, set()) for u in incremental))
    assert sources == set(PERIOD_FEEDS) | set(FULL_REFRESH_FEEDS)
    for feed in PERIOD_FEEDS:
        assert any(spec.period_column for spec in FEEDS[feed].files), feed


# ----------------------------------------------------- the real pipeline, end to end

SCALE = 0.1


def _run_pipeline(full_refresh: bool = False) -> tuple[dict, dict]:
    from penstat.orchestration import tasks

    for feed in FEEDS:
        outcomes = tasks.ingest(feed)
        assert tasks.rejection_report(outcomes) is None, tasks.rejection_report(outcomes)
    build = tasks.build_marts(full_refresh=full_refresh)
    return build, tasks.gate_and_publish()


def _correction(paths: Paths, census_date: str) -> tuple[str, int, int]:
    """Correct one facility's population on `census_date` (replaces the year's delivery)."""
    year = census_date[:4]
    original = paths.archive / "occupancy" / f"syn-occ-{year}" / "occupancy.csv"
    rows = [r for r in csv.DictReader(io.StringIO(original.read_text()))
            if r["census_date"] == census_date and int(r["population"]) >= 10]
    row = dict(rows[0])
    old = int(row["population"])
    row["population"] = str(old + 3)
    text = ",".join(row) + "\n" + ",".join(row.values()) + "\n"
    write_delivery(paths.inbox, "occupancy", f"syn-occ-fix-{census_date}",
                   {"occupancy.csv": text.encode()}, sender="TEST",
                   created_at="2026-01-02T02:00:00Z", period=(census_date, census_date),
                   replaces=f"syn-occ-{year}", ring=False)
    return row["facility_id"], old, old + 3


def _published(paths: Paths, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(paths.current_publication / "published.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _rows_validated(paths: Paths) -> dict[str, int]:
    from penstat.publication.publish import current_manifest

    return current_manifest(paths)["validation"]["rows_validated"]


def test_incremental_builds_touch_only_their_months_and_equal_a_full_rebuild(paths: Paths):
    from penstat.senders.synthetic import generate, next_day

    generate(paths.inbox, scale=SCALE, seed=7, split="year")
    build, first = _run_pipeline()
    assert build["mode"] == "full"
    daily_rows = first["marts"]["mart_facility_daily"]["rows"]

    # a new day that opens a new month: one month rebuilt, recidivism left alone
    next_day(paths.inbox, scale=SCALE, seed=7, day=date(2026, 1, 1), ring=False)
    build, second = _run_pipeline()
    assert (build["mode"], build["months"]) == ("incremental", ["2026-01-01"])
    assert not any("recidivism" in node for node in build["nodes"])
    new_day = _published(paths, "SELECT count(*) FROM marts.mart_facility_daily "
                                "WHERE census_date = DATE '2026-01-01'")[0][0]
    assert new_day > 0
    assert second["marts"]["mart_facility_daily"]["rows"] == daily_rows + new_day
    assert second["marts"]["mart_recidivism_cohort"] == first["marts"]["mart_recidivism_cohort"]
    # the gate saw the new rows only; marts equal to the last publication not at all
    validated = _rows_validated(paths)
    assert validated["mart_facility_daily"] == new_day
    assert validated["mart_recidivism_cohort"] == 0

    # the doorbell rung again for the same day (the DAG's build): nothing to build
    from penstat.orchestration import tasks

    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        builds = con.execute("SELECT count(*) FROM meta.builds").fetchone()[0]
    assert tasks.build_marts(skip_when_current=True)["mode"] == "current"
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.builds").fetchone()[0] == builds

    # a correction of one day in an old month: exactly that month is rebuilt
    facility, old, new = _correction(paths, "2024-03-14")
    assert new == old + 3
    build, third = _run_pipeline()
    assert (build["mode"], build["months"]) == ("incremental", ["2024-03-01"])
    assert _published(paths, "SELECT population FROM marts.mart_facility_daily "
                             "WHERE facility_id = ? AND census_date = DATE '2024-03-14'",
                      [facility]) == [(new,)]
    monthly = _published(paths, "SELECT average_daily_population FROM "
                                "marts.mart_facility_monthly WHERE facility_id = ? "
                                "AND month = DATE '2024-03-01'", [facility])[0][0]
    assert monthly is not None
    assert third["marts"]["mart_facility_daily"]["rows"] == second["marts"][
        "mart_facility_daily"]["rows"]
    assert _rows_validated(paths)["mart_facility_daily"] == 1  # the corrected day
    assert third["marts"]["mart_facility_monthly"] != second["marts"]["mart_facility_monthly"]

    # make rebuild (no Airflow stack up: it runs here): a full refresh from the raw
    # layer gives byte-identical marts
    from penstat.orchestration.rebuild import rebuild

    result = rebuild(paths)
    build, rebuilt = result["build"], result["publication"]
    assert (result["via"], build["mode"]) == ("direct", "full")
    assert rebuilt["unchanged"] is True, "a full rebuild changed the published marts"
    assert rebuilt["marts"] == third["marts"]
    assert rebuilt["version"] == third["version"]


def test_the_gate_sees_new_changed_and_duplicated_keys_but_not_unchanged_rows(tmp_path):
    from penstat.publication.publish import _changed_rows

    con = duckdb.connect()
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    con.execute(f"COPY (SELECT * FROM (VALUES ('F1', DATE '2024-01-01', 10), "
                f"('F1', DATE '2024-01-02', 11), ('F2', DATE '2024-01-01', 12)) "
                f"t(facility_id, census_date, population)) TO '{old}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM (VALUES ('F1', DATE '2024-01-01', 10), "
                f"('F1', DATE '2024-01-02', 99), ('F2', DATE '2024-01-01', 12), "
                f"('F2', DATE '2024-01-01', 13), ('F3', DATE '2024-01-01', 1)) "
                f"t(facility_id, census_date, population)) TO '{new}' (FORMAT parquet)")
    sql = _changed_rows(con, "mart_facility_daily", new, old)
    rows = sorted(con.execute(sql).fetchall())
    assert [(r[0], r[2]) for r in rows] == [("F1", 99), ("F2", 12), ("F2", 13), ("F3", 1)]
    # a first publication (nothing current) is validated whole
    assert len(con.execute(_changed_rows(con, "mart_facility_daily", new, None)).fetchall()) == 5


def _parquet(con, path, rows: str, columns: str = "facility_id, census_date, population"):
    con.execute(f"COPY (SELECT * FROM (VALUES {rows}) t({columns})) TO '{path}' "
                "(FORMAT parquet)")


def test_the_gate_sees_what_the_key_join_could_hide(tmp_path):
    """The hostile cases of a join on the key: a row duplicated exactly (equal to the
    current row of its key), a NULL in the key, a NULL value that became a number, a
    file whose columns changed, and rows only removed."""
    from penstat.publication.publish import _changed_rows

    con = duckdb.connect()
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    _parquet(con, old, "('F1', DATE '2024-01-01', 10), ('F2', DATE '2024-01-01', NULL), "
                       "(NULL, DATE '2024-01-01', 5), ('F3', DATE '2024-01-01', 7)")
    _parquet(con, new, "('F1', DATE '2024-01-01', 10), ('F1', DATE '2024-01-01', 10), "
                       "('F2', DATE '2024-01-01', 0), (NULL, DATE '2024-01-01', 5), "
                       "('F3', DATE '2024-01-01', 7)")
    rows = sorted(con.execute(_changed_rows(con, "mart_facility_daily", new, old)).fetchall(),
                  key=str)
    # both copies of the duplicated F1 row; F2's NULL -> 0; the NULL-keyed row is
    # unchanged (NULL keys match NULL keys), and so is F3
    assert [(r[0], r[2]) for r in rows] == [("F1", 10), ("F1", 10), ("F2", 0)]

    # another column set than the current file: the staged rows are judged whole
    _parquet(con, old, "('F1', DATE '2024-01-01', 10, 'x')",
             "facility_id, census_date, population, flag")
    assert len(con.execute(_changed_rows(con, "mart_facility_daily", new, old)).fetchall()) == 5

    # a column of another type (an INTEGER that became text): whole, no failed cast
    _parquet(con, old, "('F1', DATE '2024-01-01', 10)")
    _parquet(con, new, "('F1', DATE '2024-01-01', 'abc'), ('F3', DATE '2024-01-01', '7')")
    assert len(con.execute(_changed_rows(con, "mart_facility_daily", new, old)).fetchall()) == 2

    # nothing new or changed, one row removed: whole
    _parquet(con, old, "('F1', DATE '2024-01-01', 10), ('F3', DATE '2024-01-01', 7), "
                       "('F4', DATE '2024-01-01', 1)")
    _parquet(con, new, "('F1', DATE '2024-01-01', 10), ('F3', DATE '2024-01-01', 7)")
    assert len(con.execute(_changed_rows(con, "mart_facility_daily", new, old)).fetchall()) == 2


def test_large_gate_batches_keep_every_row_of_a_key_together():
    from penstat.validation.runner import batches

    con = duckdb.connect()
    con.execute("CREATE TABLE m AS SELECT 'F' || (i % 97) AS facility_id, "
                "DATE '2024-01-01' + CAST(i // 97 AS INTEGER) AS census_date, i AS population "
                "FROM range(5000) t(i)")
    con.execute("INSERT INTO m SELECT * FROM m WHERE population IN (7, 4242)")  # duplicates
    parts = list(batches(con, "SELECT * FROM m", ("facility_id", "census_date"),
                            batch_rows=1000))
    assert 1 < len(parts) <= 6  # a hash part may be empty: it is not yielded
    assert sum(len(b) for b in parts) == 5002
    for b in parts:
        assert len(b) < 1500
    duplicated = [b for b in parts if b.duplicated(["facility_id", "census_date"]).any()]
    assert sum(int(b.duplicated(["facility_id", "census_date"]).sum()) for b in duplicated) == 2
