"""What changed between two publications, end to end: ingest, dbt build, gate, publish.

The first publication holds the baseline (as of 2024-01-02). A second delivery then
corrects 2024-01-01 (TS-0001 310 -> 305; TS-0002 18 -> 3, which disclosure control
withholds) and adds 2024-01-02; the second publication (as of 2024-01-03) must list
in `revisions` exactly what an independent comparison of the two publications'
Parquet files finds, flag the revised rows `r`, and never show a withheld value.
The register has a facility that closed before the data starts (TS-0004: `closed`,
never alerted) and one that is open and never delivered (TS-0005: `late`, alerted).
"""

from __future__ import annotations

import json
import math
from datetime import date

import duckdb
import pytest

from penstat.contract.published import MART_COLUMNS, MART_KEYS
from penstat.orchestration import tasks
from penstat.publication.revisions import REVISIONS_FILE, flag_targets
from tests import builders as b
from tests.reliability import ingest_all, penstat_home

CLOSED = "TS-0004,Closed unit,TS12,prison,low,40,44,,false,2000-01-01,2023-12-31"
NEVER_SENT = "TS-0005,New unit,TS12,prison,low,40,44,,false,2000-01-01,"


def occupancy_day2() -> list[str]:
    return ["TS-0001,2024-01-02,2,311,10,50,0,20,3,2",
            "TS-0002,2024-01-02,0,17,2,0,0,3,1,0",
            "TS-0003,2024-01-02,5,101,8,60,0,12,4,5"]


def corrected_day1() -> list[str]:
    rows = b.occupancy_rows()
    rows[0] = rows[0].replace(",310,", ",305,")
    rows[1] = rows[1].replace(",18,", ",3,")  # 1..4 persons: withheld (primary)
    return rows


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    with penstat_home(tmp_path_factory.mktemp("revisions") / "home") as paths:
        b.register(paths.inbox, rows=[*b.REGISTER_ROWS, CLOSED, NEVER_SENT])
        b.occupancy(paths.inbox, delivery_id="occ-base")
        b.staffing(paths.inbox)
        b.recidivism(paths.inbox)
        ingest_all()
        tasks.build_marts(as_of_date="2024-01-02")
        first = tasks.gate_and_publish()
        b.occupancy(paths.inbox, delivery_id="occ-fix", rows=corrected_day1(),
                    replaces="occ-base")
        b.occupancy(paths.inbox, delivery_id="occ-day2", rows=occupancy_day2(),
                    period=("2024-01-02", "2024-01-02"))
        ingest_all(("occupancy",))
        tasks.build_marts(as_of_date="2024-01-03")
        second = tasks.gate_and_publish()
        again = tasks.gate_and_publish()
        yield {"paths": paths, "first": first, "second": second, "again": again,
               "v1": paths.published / first["version"],
               "v2": paths.published / second["version"]}


def rows_of(parquet, columns=None) -> list[dict]:
    con = duckdb.connect()
    try:
        rel = con.execute(f"SELECT * FROM read_parquet('{parquet}')")
        names = [d[0] for d in rel.description]
        return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    finally:
        con.close()


def text(value) -> str | None:
    return None if value is None else str(value)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and (a is None) == (b is None)


def independent_revisions(old_folder, new_folder) -> set[tuple]:
    """(mart, change, key as text, column) from the two publications' Parquet files, in
    Python, row by row: the definition of docs/published.md, not the publisher's SQL."""
    out = set()
    for mart, columns in MART_COLUMNS.items():
        keys = MART_KEYS[mart]
        carries_r = set(flag_targets(mart).values())
        old = {tuple(text(r[k]) for k in keys): r for r in rows_of(old_folder / f"{mart}.parquet")}
        new = {tuple(text(r[k]) for k in keys): r for r in rows_of(new_folder / f"{mart}.parquet")}
        out |= {(mart, "added", k, None) for k in new.keys() - old.keys()}
        out |= {(mart, "removed", k, None) for k in old.keys() - new.keys()}
        for k in new.keys() & old.keys():
            for c in columns:
                if c in keys:
                    continue
                o, n = old[k][c], new[k][c]
                if c in carries_r:
                    o, n = (o or "").replace("r", "") or None, (n or "").replace("r", "") or None
                if not same(o, n):
                    out.add((mart, "changed", k, c))
    return out


def published_revisions(folder) -> list[tuple]:
    out = []
    for r in rows_of(folder / REVISIONS_FILE):
        key = tuple(text(v) for v in json.loads(r["key"]).values())
        out.append((r["mart"], r["change"], key, r["column_name"], r["old_value"],
                    r["new_value"]))
    return out


def test_the_second_publication_lists_exactly_what_changed(story):
    listed = published_revisions(story["v2"])
    assert {r[:4] for r in listed} == independent_revisions(story["v1"], story["v2"])
    assert len({r[:4] for r in listed}) == len(listed), "each change once"
    daily = {(r[1], r[2], r[3]) for r in listed if r[0] == "mart_facility_daily"}
    assert ("changed", ("TS-0001", "2024-01-01"), "population") in daily
    assert {("added", (f, "2024-01-02"), None) for f in ("TS-0001", "TS-0002", "TS-0003")} \
        <= daily
    assert ("changed", ("TS-0003", "2024-01-01"), "population") not in daily
    manifest = json.loads((story["v2"] / "manifest.json").read_text())
    assert manifest["previous_version"] == story["first"]["version"]
    assert manifest["revisions"]["rows"] == len(listed)
    assert manifest["revisions"]["marts"]["mart_facility_daily"] == {
        "added": 3, "removed": 0,
        "changed": len({r[2] for r in listed if r[0] == "mart_facility_daily"
                        and r[1] == "changed"})}
    con = duckdb.connect(str(story["v2"] / "published.duckdb"), read_only=True)
    try:
        in_db = con.execute("SELECT * FROM meta.revisions").fetchall()
    finally:
        con.close()
    assert in_db == [tuple(r.values()) for r in rows_of(story["v2"] / REVISIONS_FILE)]


def test_old_and_new_values_are_the_published_ones_and_a_withheld_value_never_shows(story):
    old = {tuple(text(r[k]) for k in MART_KEYS["mart_facility_daily"]): r
           for r in rows_of(story["v1"] / "mart_facility_daily.parquet")}
    new = {tuple(text(r[k]) for k in MART_KEYS["mart_facility_daily"]): r
           for r in rows_of(story["v2"] / "mart_facility_daily.parquet")}
    withheld = new[("TS-0002", "2024-01-01")]
    assert withheld["population"] is None and "c" in withheld["flag"]
    # the warehouse knows the value (3): the publication and its revisions must not
    con = duckdb.connect(str(story["paths"].warehouse), read_only=True)
    try:
        assert con.execute("SELECT population FROM intermediate.int_facility_days WHERE "
                           "facility_id = 'TS-0002' AND census_date = DATE '2024-01-01'"
                           ).fetchone() == (3,)
    finally:
        con.close()
    for mart, change, key, column, old_value, new_value in published_revisions(story["v2"]):
        if mart != "mart_facility_daily" or change != "changed":
            continue
        assert (old_value is None) == (old[key][column] is None), (key, column)
        assert (new_value is None) == (new[key][column] is None), (key, column)
        if column == "population":
            assert old_value == text(old[key][column]) and new_value == text(new[key][column])
    daily = [r for r in published_revisions(story["v2"]) if r[0] == "mart_facility_daily"]
    cell = [r for r in daily if r[2] == ("TS-0002", "2024-01-01") and r[3] == "population"]
    assert cell == [("mart_facility_daily", "changed", ("TS-0002", "2024-01-01"),
                     "population", "18", None)]
    values = {v for r in daily if r[2] == ("TS-0002", "2024-01-01") for v in r[4:]}
    assert "3" not in values and "15.0" not in values, "withheld count and density"


def test_revised_rows_are_flagged_r_and_no_others(story):
    first = rows_of(story["v1"] / "mart_facility_daily.parquet")
    assert not any("r" in (r["flag"] or "") for r in first), "a first publication revises nothing"
    revised = {r[2] for r in published_revisions(story["v2"])
               if r[0] == "mart_facility_daily" and r[1] == "changed" and r[3] != "flag"}
    flagged = {(r["facility_id"], str(r["census_date"]))
               for r in rows_of(story["v2"] / "mart_facility_daily.parquet")
               if "r" in (r["flag"] or "")}
    assert flagged == revised and ("TS-0001", "2024-01-01") in flagged
    national = rows_of(story["v2"] / "mart_national_monthly.parquet")
    assert all(r["flag"] is None or r["flag"] == "".join(sorted(set(r["flag"])))
               for r in national), "letters alphabetical, each once"


def test_publishing_again_without_a_change_publishes_nothing(story):
    assert story["again"]["unchanged"] is True
    assert story["again"]["version"] == story["second"]["version"]
    assert story["again"]["marts"] == story["second"]["marts"]


def test_a_closed_facility_is_closed_not_ok_and_never_alerted(story):
    status = {(r["feed"], r["facility_id"]): r
              for r in rows_of(story["v2"] / "mart_delivery_status.parquet")}
    for feed in ("occupancy", "staffing"):
        assert status[(feed, "TS-0004")]["status"] == "closed"
        assert status[(feed, "TS-0004")]["days_late"] == 0
    assert status[("occupancy", "TS-0005")]["status"] == "late"
    assert status[("occupancy", "TS-0001")]["status"] == "ok"
    assert {r["as_of_date"] for r in status.values()} == {date(2024, 1, 3)}
    first = rows_of(story["v1"] / "mart_delivery_status.parquet")
    assert {r["as_of_date"] for r in first} == {date(2024, 1, 2)}
    with penstat_home(story["paths"].home):
        late = [(r["feed"], r["facility_id"]) for r in tasks.late_feeds(min_days_late=1)]
    assert ("occupancy", "TS-0005") in late
    assert not any(f == "TS-0004" for _, f in late)
