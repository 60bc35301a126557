"""mart_facility_recidivism in the disclosure step (linked.cohorts): a facility's
releases and reoffenders pooled over a window of cohort years add up, year by year, to
the cohort mart's facility-type and scale-class groups. Built from tiny warehouse
tables in DuckDB (one row per released person), audited as the attacker."""

from __future__ import annotations

import duckdb

from penstat.publication.disclosure import audit, linked, secondary
from penstat.publication.disclosure.cells import LinkedCells
from tests.unit.publication.test_disclosure_ledger import ledger_tables

T = linked.Thresholds(min_person_count=5, min_rate_denominator=30,
                      min_recidivism_cohort=60, protection_interval=5.0, min_interval=1.0)
SECRET = b"f" * 32
TYPES = {"D": ("detention_house", "small", "all"), "P": ("prison", "large", "none")}


def warehouse(releases: dict[tuple[int, str], tuple[int, int]],
              windows: dict[int, tuple[int, int]]) -> duckdb.DuckDBPyConnection:
    """(cohort year, facility) -> (released persons, of whom reoffended in 2 years);
    the facility's type and class from its first letter (TYPES); `windows`: last cohort
    year -> (first cohort year, last). The cohort groups and the facility windows are
    computed from the persons, as dbt does."""
    persons = []
    for (year, facility), (n, reoffended) in releases.items():
        ftype, sclass, days = TYPES[facility[0]]
        persons += [(year, facility, ftype, sclass, days, i < reoffended) for i in range(n)]
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS wh")
    con.execute("CREATE SCHEMA wh.intermediate")
    con.execute("""CREATE TABLE wh.intermediate.int_release_outcomes (
        cohort_year INTEGER, facility_id VARCHAR, facility_type VARCHAR,
        scale_class VARCHAR, small_scale_days_group VARCHAR, recid_2y_general BOOLEAN,
        recid_2y_custodial BOOLEAN, proven_reoffending_1y BOOLEAN,
        is_cohort_mature BOOLEAN, is_cohort_member BOOLEAN)""")
    con.executemany("INSERT INTO wh.intermediate.int_release_outcomes VALUES "
                    "(?, ?, ?, ?, ?, ?, false, false, true, true)", persons)
    parts = " UNION ALL ".join(f"""
        SELECT cohort_year, '{gt}' AS group_type, {col} AS group_value, count(*) AS n,
               count(*) FILTER (WHERE recid_2y_general) AS r
        FROM wh.intermediate.int_release_outcomes GROUP BY ALL"""
        for gt, col in linked.GROUP_ATTRIBUTIONS.items())
    con.execute(f"""CREATE TABLE wh.intermediate.int_recidivism_groups AS
        SELECT cohort_year, group_type, group_value, n AS cohort_size,
               r AS reoffenders_2y_general, 0 AS reoffenders_2y_custodial,
               0 AS proven_reoffenders_1y, true AS is_proven_mature FROM ({parts})""")
    window_rows = ", ".join(f"({last}, {first})" for last, (first, _) in windows.items())
    con.execute(f"""CREATE TABLE wh.intermediate.int_facility_recidivism_funnel AS
        SELECT facility_id, w.last_cohort_year, w.first_cohort_year,
               count(*) AS releases,
               count(*) FILTER (WHERE recid_2y_general) AS reoffenders
        FROM wh.intermediate.int_release_outcomes o
        JOIN (VALUES {window_rows}) w(last_cohort_year, first_cohort_year)
          ON o.cohort_year BETWEEN w.first_cohort_year AND w.last_cohort_year
        GROUP BY ALL""")
    ledger_tables(con)
    return con


def build(con: duckdb.DuckDBPyConnection) -> LinkedCells:
    cells = LinkedCells()
    linked.cohorts(cells, con, T)
    return cells


def exposed(cells: LinkedCells) -> list[str]:
    return sorted(cells.keys[iv.cell] for iv in audit.exposed(cells, audit.intervals(cells)))


ONE_YEAR = {(2020, "D1"): (3, 1), (2020, "D2"): (80, 30),
            (2020, "P1"): (400, 200), (2020, "P2"): (300, 120)}


def test_a_small_facility_is_given_back_by_its_type_and_then_protected():
    cells = build(warehouse(ONE_YEAR, {2020: (2020, 2020)}))
    assert cells.rejected_relations == 0  # the facility windows add up to the cohorts
    for unit in cells.units:
        unit.withheld = unit.primary or unit.key == linked.HIDDEN
    cells.close_requirements()
    # 3 released from D1 = 83 detention-house releases (cohort mart) minus D2's 80
    assert "frec|2020|D1|cohort_size" in exposed(cells)
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []
    size = cells.units[cells.unit_index[("mart_facility_recidivism", ("D1", "2020"), "size")]]
    assert size.withheld
    iv = audit.intervals(cells)[cells.index["frec|2020|D1|cohort_size"]]
    assert iv.low <= 3 <= iv.high and iv.width >= T.protection_interval


def test_a_window_pools_its_years_and_the_relations_hold():
    releases = {(y, f): v for y in (2019, 2020) for f, v in (
        ("D1", (40, 10)), ("D2", (45, 20)), ("P1", (300, 150)))}
    cells = build(warehouse(releases, {2020: (2019, 2020)}))
    assert cells.rejected_relations == 0
    assert cells.values[cells.index["frec|2020|D1|cohort_size"]] == 80
    rates = cells.units[cells.unit_index[("mart_facility_recidivism", ("D1", "2020"),
                                          "rates")]]
    assert not rates.primary  # 80 releases, 20 reoffenders: publishable on its own
    for unit in cells.units:
        unit.withheld = unit.primary or unit.key == linked.HIDDEN
    cells.close_requirements()
    assert exposed(cells) == []


def test_the_rates_of_few_releases_are_primary_with_the_rate_rules():
    cells = build(warehouse({(2020, "D1"): (50, 20), (2020, "D2"): (70, 68),
                             (2020, "P1"): (300, 150)}, {2020: (2020, 2020)}))
    primary = {f: cells.units[cells.unit_index[
        ("mart_facility_recidivism", (f, "2020"), "rates")]].primary for f in ("D1", "D2", "P1")}
    # 50 < the cohort minimum of 60; 70 - 68 = 2 non-reoffenders (1..4)
    assert primary == {"D1": True, "D2": True, "P1": False}
    assert cells.needs[cells.index["frec|2020|D2|reoffenders_2y_general"]] == 5.0


def test_a_window_with_a_cohort_year_too_small_to_protect_is_withheld_whole():
    cells = build(warehouse({(2020, "D1"): (2, 1), (2020, "P1"): (1, 0)},
                            {2020: (2020, 2020)}))
    for part in ("size", "rates"):
        unit = cells.unit_index[("mart_facility_recidivism", ("P1", "2020"), part)]
        assert cells.units[unit].primary
    assert not any(k.startswith("frec|") for k in cells.keys)
