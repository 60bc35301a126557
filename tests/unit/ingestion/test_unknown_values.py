"""Contract v3: an empty census cell is "unknown", never 0 (docs/contract/feeds-v3.md).

v1 and v2 deliveries behave exactly as before: an empty cell of the same columns is
rejected with file, row, column and rule `required`.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from penstat.contract.feeds import CONTRACT_VERSIONS, FEEDS, UNKNOWN_VERSION
from penstat.ingestion.pipeline import ingest_feed
from tests import builders as b

UNKNOWABLE = ("places_out_of_use", "population_female", "population_remand",
              "population_under_18", "population_18_22", "admissions", "releases")
# TS-0001 on 2024-01-02 with every unknowable column empty
UNKNOWN_ROW = "TS-0001,2024-01-02,,310,,,,,,"


def _rows(paths, sql):
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _problems(paths, delivery_id):
    path = paths.quarantine / "occupancy" / delivery_id / "_REJECTED.json"
    return json.loads(path.read_text())["problems"]


def test_the_contract_names_the_columns_that_may_be_unknown_from_v3():
    spec = FEEDS["occupancy"].file("occupancy")
    assert UNKNOWN_VERSION == "3" and "3" in CONTRACT_VERSIONS
    assert spec.unknown_columns == UNKNOWABLE
    for name in UNKNOWABLE:
        col = spec.column(name)
        assert col.required_in("1") and col.required_in("2") and not col.required_in("3")
    # nothing else may be empty in v3 that was required in v1
    for feed in FEEDS.values():
        for file in feed.files:
            for col in file.columns:
                if col.name not in UNKNOWABLE or file is not spec:
                    assert col.required_in("3") == col.required, (feed.name, col.name)


def test_a_v3_delivery_keeps_empty_cells_as_null(home):
    b.occupancy(home.inbox, delivery_id="occ-v3", rows=[*b.occupancy_rows(), UNKNOWN_ROW],
                contract_version="3")
    [out] = ingest_feed("occupancy", home)
    assert out.outcome == "loaded", out
    stored = _rows(home, f"SELECT {', '.join(UNKNOWABLE)} FROM raw.occupancy__occupancy "
                         "WHERE facility_id = 'TS-0001' AND census_date = DATE '2024-01-02'")
    assert stored == [(None,) * len(UNKNOWABLE)]
    # a known value next to unknown ones is kept as given (0 stays 0)
    assert _rows(home, "SELECT places_out_of_use, releases FROM raw.occupancy__occupancy "
                       "WHERE facility_id = 'TS-0002'") == [(0, 0)]


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_empty_cell_before_v3_is_rejected_with_file_row_column_and_rule(home, version):
    """Row 2 + i leaves column i empty: each is named, with its row and rule `required`."""
    header = b.OCCUPANCY_HEADER.split(",")
    rows = [b.occupancy_rows()[0]]
    for day, column in enumerate(UNKNOWABLE, start=2):
        values = dict(zip(header, f"TS-0001,2024-01-{day:02d},2,310,10,50,0,20,3,2".split(","),
                          strict=True))
        values[column] = ""
        rows.append(",".join(values.values()))
    b.occupancy(home.inbox, delivery_id="occ-empty", rows=rows, contract_version=version)
    [out] = ingest_feed("occupancy", home)
    assert out.outcome == "quarantined"
    problems = _problems(home, "occ-empty")
    assert sorted((p["file"], p["row"], p["column"], p["rule"]) for p in problems) == \
        [("occupancy.csv", row, column, "required")
         for row, column in enumerate(UNKNOWABLE, start=2)]
    assert all("contract_version 3" in p["message"] for p in problems)
    assert _rows(home, "SELECT count(*) FROM raw.occupancy__occupancy") == [(0,)]


def test_v3_does_not_make_population_or_keys_optional(home):
    b.occupancy(home.inbox, delivery_id="occ-v3-bad",
                rows=[b.occupancy_rows()[0], "TS-0001,2024-01-02,,,,,,,,"],
                contract_version="3")
    [out] = ingest_feed("occupancy", home)
    assert out.outcome == "quarantined"
    assert {(p["row"], p["column"], p["rule"]) for p in _problems(home, "occ-v3-bad")} == \
        {(2, "population", "required")}


def test_v3_still_checks_the_values_that_are_given(home):
    # a known breakdown above the population is still wrong under v3
    b.occupancy(home.inbox, delivery_id="occ-v3-over",
                rows=["TS-0001,2024-01-02,,310,400,,,,,"], contract_version="3")
    [out] = ingest_feed("occupancy", home)
    assert out.outcome == "quarantined"
    assert {(p["row"], p["rule"]) for p in _problems(home, "occ-v3-over")} == \
        {(1, "exceeds_other_column")}


def test_v3_keeps_columns_in_the_header(home):
    header = b.OCCUPANCY_HEADER.replace(",admissions", "")
    rows = ["TS-0001,2024-01-02,2,310,10,50,0,20,2"]
    b.occupancy(home.inbox, delivery_id="occ-v3-nohdr",
                files={"occupancy.csv": b.csv(header, rows)}, contract_version="3")
    [out] = ingest_feed("occupancy", home)
    assert out.outcome == "quarantined"
    assert {(p["column"], p["rule"]) for p in _problems(home, "occ-v3-nohdr")} == \
        {("admissions", "missing_column")}


def test_the_v3_suite_is_chosen_for_v3_only():
    from penstat.validation.suites import delivery_suite, delivery_suite_name

    spec = FEEDS["occupancy"].file("occupancy")
    assert delivery_suite_name("occupancy", "occupancy", "1") == "delivery.occupancy.occupancy"
    assert delivery_suite_name("occupancy", "occupancy", "2") == "delivery.occupancy.occupancy"
    assert delivery_suite_name("occupancy", "occupancy", "3") == \
        "delivery.occupancy.occupancy.v3"
    # files without unknowable columns have one suite for every version
    assert delivery_suite_name("staffing", "staffing", "3") == "delivery.staffing.staffing"

    def not_null(suite):
        return {e.column for e in suite.expectations
                if type(e).__name__ == "ExpectColumnValuesToNotBeNull"}

    v1, v3 = delivery_suite("occupancy", spec, "1"), delivery_suite("occupancy", spec, "3")
    assert set(UNKNOWABLE) <= not_null(v1)
    assert not_null(v1) - not_null(v3) == set(UNKNOWABLE)
