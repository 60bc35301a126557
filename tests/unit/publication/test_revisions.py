"""The revisions of a publication and the flag r, on real DuckDB tables and Parquet files.

Each case writes a previous publication's Parquet file and a draft table, runs
penstat.publication.revisions and compares with what was written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from penstat.contract.published import MART_COLUMNS
from penstat.publication.revisions import (
    add_flag_letter,
    changed_cells,
    diff_mart,
    flag_targets,
    mark_revised,
    revision_rows,
    write_revisions,
)

DAILY = "mart_facility_daily"
DAILY_ROW = ("facility_id VARCHAR, census_date DATE, facility_type VARCHAR, scale_class VARCHAR, "
             "capacity_places BIGINT, places_out_of_use BIGINT, population BIGINT, density DOUBLE, "
             "occupancy_in_use DOUBLE, overcrowding_tier VARCHAR, flag VARCHAR")


DAILY_COLUMNS = tuple(c.split()[0] for c in DAILY_ROW.split(", "))


def daily(con: duckdb.DuckDBPyConnection, name: str, rows: list[tuple]) -> str:
    con.execute(f"CREATE OR REPLACE TABLE {name} ({DAILY_ROW})")
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * 11)})", rows)
    return name


def to_parquet(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> Path:
    con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
    return path


def row(fid: str, day: str, population: int | None, density: float | None = 100.0,
        flag: str | None = None, capacity: int = 20) -> tuple:
    return (fid, day, "prison", "small", capacity, 0, population, density, density, "none", flag)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def revisions_of(con, old_rows, new_rows, tmp_path, mart=DAILY):
    to_parquet(con, daily(con, "old_t", old_rows), tmp_path / "old.parquet")
    daily(con, "new_t", new_rows)
    diff = diff_mart(con, mart, "new_t", tmp_path / "old.parquet")
    rows = con.execute(revision_rows(diff)).fetchall()
    return diff, [(change, json.loads(key)["facility_id"], json.loads(key)["census_date"],
                   col, old, new) for _, change, key, col, old, new in rows]


def test_added_removed_and_changed_keys_with_their_columns(con, tmp_path):
    old = [row("A", "2024-01-01", 10), row("B", "2024-01-01", 12), row("C", "2024-01-01", 9)]
    new = [row("A", "2024-01-01", 10), row("B", "2024-01-01", 13, density=65.0),
           row("D", "2024-01-01", 7)]
    diff, rows = revisions_of(con, old, new, tmp_path)
    assert rows == [
        ("changed", "B", "2024-01-01", "population", "12", "13"),
        ("changed", "B", "2024-01-01", "density", "100.0", "65.0"),
        ("changed", "B", "2024-01-01", "occupancy_in_use", "100.0", "65.0"),
        ("removed", "C", "2024-01-01", None, None, None),
        ("added", "D", "2024-01-01", None, None, None),
    ], "the flag gains only r (see flags): not listed as a change of its own"
    assert diff.counts == {"added": 1, "removed": 1, "changed": 1}
    assert sorted(con.execute(changed_cells(diff)).fetchall())[0][2] == "density"


def test_nulls_compare_as_values_and_floats_exactly(con, tmp_path):
    old = [row("A", "2024-01-01", None, density=None, flag="c"),
           row("B", "2024-01-01", 10, density=0.1 + 0.2),
           row("C", "2024-01-01", None, density=None, flag="c")]
    new = [row("A", "2024-01-01", None, density=None, flag="c"),  # empty both: unchanged
           row("B", "2024-01-01", 10, density=0.3),              # differs in the last bit
           row("C", "2024-01-01", 6, density=30.0)]              # no longer withheld
    _, rows = revisions_of(con, old, new, tmp_path)
    assert [(r[1], r[3]) for r in rows] == [
        ("B", "density"), ("B", "occupancy_in_use"), ("C", "population"), ("C", "density"),
        ("C", "occupancy_in_use"), ("C", "flag")]
    assert rows[0][4:] == ("0.30000000000000004", "0.3")
    assert rows[2][4:] == (None, "6") and rows[5][4:] == ("c", "r")


def test_null_keys_match_each_other(con, tmp_path):
    con.execute("CREATE TABLE s AS SELECT * FROM (VALUES ('recidivism', NULL, DATE '2024-01-01', "
                "0::BIGINT, 'r1', 'ok', DATE '2024-02-01')) t(" +
                ", ".join(MART_COLUMNS["mart_delivery_status"]) + ")")
    to_parquet(con, "s", tmp_path / "s.parquet")
    diff = diff_mart(con, "mart_delivery_status", "s", tmp_path / "s.parquet")
    assert diff.counts == {"added": 0, "removed": 0, "changed": 0}
    con.execute("UPDATE s SET status = 'late', days_late = 3")
    diff = diff_mart(con, "mart_delivery_status", "s", tmp_path / "s.parquet")
    rows = con.execute(revision_rows(diff)).fetchall()
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        ('{"feed":"recidivism","facility_id":null}', "days_late", "0", "3"),
        ('{"feed":"recidivism","facility_id":null}', "status", "ok", "late")]


def test_revised_rows_get_r_alphabetically_once_and_nothing_else_does(con, tmp_path):
    old = [row("A", "2024-01-01", 10, flag="p"), row("B", "2024-01-01", 10, flag="cp"),
           row("C", "2024-01-01", 10, flag="p"), row("E", "2024-01-01", 10, flag="pr")]
    new = [row("A", "2024-01-01", 11, flag="p"),   # value revised: p -> pr
           row("B", "2024-01-01", 11, flag="cp"),  # cp -> cpr
           row("C", "2024-01-01", 10, flag=None),  # only the flag: final now, not revised
           row("D", "2024-01-01", 10, flag="p"),   # added: not a revision
           row("E", "2024-01-01", 10, flag="p")]   # was revised last time, unchanged now
    diff, rows = revisions_of(con, old, new, tmp_path)
    assert mark_revised(con, "new_t", diff) == 2
    flags = dict(con.execute("SELECT facility_id, flag FROM new_t").fetchall())
    assert flags == {"A": "pr", "B": "cpr", "C": None, "D": "p", "E": "p"}
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
        ("changed", "A", "population", "10", "11"),
        ("changed", "B", "population", "10", "11"),
        ("changed", "C", "flag", "p", None),
        ("added", "D", None, None, None)], "E: its own r is not a change"
    # marking again is idempotent: letters stay unique
    mark_revised(con, "new_t", diff)
    assert con.execute("SELECT flag FROM new_t WHERE facility_id = 'B'").fetchone() == ("cpr",)


def test_the_flag_column_is_a_parameter_for_per_value_flags(con, tmp_path):
    con.execute("CREATE TABLE o AS SELECT 'A' AS facility_id, DATE '2024-01-01' AS census_date, "
                "10 AS population, NULL::VARCHAR AS population_flag, 50.0 AS density, "
                "'p' AS density_flag")
    to_parquet(con, "o", tmp_path / "o.parquet")
    con.execute("CREATE TABLE n AS SELECT * REPLACE (11 AS population) FROM o")
    cols = ("facility_id", "census_date", "population", "population_flag", "density",
            "density_flag")
    flags = {"population": "population_flag", "density": "density_flag"}
    assert flag_targets(DAILY, cols) == flags, "per-value flag columns are found by name"
    diff = diff_mart(con, DAILY, "n", tmp_path / "o.parquet", columns=cols, flags=flags)
    mark_revised(con, "n", diff)
    assert con.execute("SELECT population_flag, density_flag FROM n").fetchone() == ("r", "p")
    assert flag_targets(DAILY, (*cols, "flag"))["population"] \
        == "population_flag"
    assert flag_targets(DAILY, ("facility_id", "census_date", "tier", "population",
                                "population_flag", "flag")) == {
        "tier": "flag", "population": "population_flag"}


def test_flag_targets_and_the_letter():
    targets = flag_targets(DAILY)  # the interface: per-value flags where a value has one
    assert targets["population"] == "population_flag" and targets["facility_type"] == "flag"
    assert "facility_id" not in targets and "population_flag" not in targets
    assert set(flag_targets(DAILY, DAILY_COLUMNS).values()) == {"flag"}, "a row flag only"
    assert flag_targets("mart_delivery_status") == {}
    assert flag_targets("mart_national_reference") == {}, "Eurostat's own letters"
    assert [add_flag_letter(f) for f in (None, "", "p", "cp", "pr", "bcep")] == [
        "r", "r", "pr", "cpr", "pr", "bcepr"]


def test_a_column_new_in_the_interface_is_not_compared(con, tmp_path):
    con.execute("CREATE TABLE o AS SELECT 'A' AS facility_id, DATE '2024-01-01' AS census_date, "
                "10 AS population")
    to_parquet(con, "o", tmp_path / "o.parquet")
    con.execute("CREATE TABLE n AS SELECT *, 'x' AS facility_type FROM o")
    diff = diff_mart(con, DAILY, "n", tmp_path / "o.parquet",
                     columns=("facility_id", "census_date", "population", "facility_type"))
    assert diff.total == 0 and not diff.comparable


def _marts_db(con: duckdb.DuckDBPyConnection, folder: Path | None, daily_rows: list[tuple]):
    """Every mart of the interface as an empty table, the daily mart with rows, in the
    attached catalog `pub`; with `folder`, also their Parquet files there."""
    con.execute("CREATE SCHEMA IF NOT EXISTS pub.marts")
    for mart, columns in MART_COLUMNS.items():
        if mart == DAILY:
            daily(con, f"pub.marts.{mart}", daily_rows)
        else:
            con.execute(f"CREATE OR REPLACE TABLE pub.marts.{mart} AS SELECT " +
                        ", ".join(f'NULL::VARCHAR AS "{c}"' for c in columns) + " LIMIT 0")
        if folder is not None:
            to_parquet(con, f"pub.marts.{mart}", folder / f"{mart}.parquet")


def test_write_revisions_first_and_second_publication(con, tmp_path):
    con.execute(f"ATTACH '{tmp_path / 'p1.duckdb'}' AS pub")
    first = write_revisions(con, "pub", None, None, tmp_path / "r1.parquet")
    assert first.rows == 0 and first.marts == {} and not first.none, "nothing to compare"
    assert con.execute(f"SELECT count(*) FROM '{tmp_path / 'r1.parquet'}'").fetchone() == (0,)
    con.execute("DETACH pub")

    previous = tmp_path / "previous"
    previous.mkdir()
    con.execute(f"ATTACH '{tmp_path / 'p0.duckdb'}' AS pub")
    _marts_db(con, previous, [row("A", "2024-01-01", 10)])
    con.execute("DETACH pub")
    con.execute(f"ATTACH '{tmp_path / 'p2.duckdb'}' AS pub")
    _marts_db(con, None, [row("A", "2024-01-01", 10)])
    same = write_revisions(con, "pub", previous, "v1", tmp_path / "r2.parquet")
    assert same.none and same.rows == 0
    con.execute("DETACH pub")
    con.execute(f"ATTACH '{tmp_path / 'p3.duckdb'}' AS pub")
    _marts_db(con, None, [row("A", "2024-01-01", 11)])
    second = write_revisions(con, "pub", previous, "v1", tmp_path / "r3.parquet")
    assert not second.none and second.marts[DAILY] == {"added": 0, "removed": 0, "changed": 1}
    table = con.execute("SELECT * FROM pub.meta.revisions").fetchall()
    assert table == con.execute(f"SELECT * FROM '{tmp_path / 'r3.parquet'}'").fetchall()
    assert [r[3] for r in table] == ["population"]
    assert con.execute("SELECT flag FROM pub.marts.mart_facility_daily").fetchone() == ("r",)
    comments = con.execute("SELECT count(*) FROM duckdb_columns() WHERE database_name = 'pub' "
                           "AND table_name = 'revisions' AND comment <> ''").fetchone()
    assert comments == (6,)
