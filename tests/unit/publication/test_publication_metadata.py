"""published.duckdb explains itself: comments on the marts and their columns (from the
dbt YAML, with units), a schema `meta` from the manifest, and the manifest names the
previous publication."""

from __future__ import annotations

import dataclasses
import json

import duckdb
import pytest

from penstat.contract.published import INTERFACE_VERSION, MART_COLUMNS, MART_KEYS
from penstat.contract.published_docs import column_comment, column_unit, dbt_model_docs
from penstat.publication.metadata import (
    MIN_COLUMN_COVERAGE,
    column_coverage,
    comment_problems,
    write_comments,
    write_meta,
)
from penstat.publication.publish import publish
from tests.unit.publication.test_publication import build_marts


@pytest.fixture(scope="module")
def docs():
    return dbt_model_docs()


def _open(folder):
    return duckdb.connect(str(folder / "published.duckdb"), read_only=True)


def _comments(con) -> dict[tuple[str, str], str | None]:
    return {(t, c): comment for t, c, comment in con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE schema_name = 'marts'").fetchall()}


def test_a_publication_comments_its_marts_and_columns_with_units_and_has_meta(paths, docs):
    build_marts(paths)
    first = publish(paths)
    build_marts(paths, density=104.0)
    second = publish(paths)
    manifest = json.loads((second.folder / "manifest.json").read_text())
    first_manifest = json.loads((first.folder / "manifest.json").read_text())
    assert first_manifest["previous_version"] is None
    assert manifest["previous_version"] == first.version

    con = _open(second.folder)
    try:
        catalog = con.execute("SELECT current_database()").fetchone()[0]
        assert comment_problems(con, catalog) == []
        total, commented, missing = column_coverage(con, catalog)
        assert total == sum(len(c) for c in MART_COLUMNS.values())
        assert commented / total >= MIN_COLUMN_COVERAGE, missing
        comments = _comments(con)
        for mart, columns in MART_COLUMNS.items():
            for column in columns:
                unit = column_unit(docs[mart].columns[column][1])
                if unit:
                    assert unit in comments[mart, column].lower(), (mart, column, unit)
        assert "share 0..1" in comments["mart_facility_monthly", "vacancy_rate"].lower()
        assert "per 100 places" in comments["mart_facility_daily", "density"]
        tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() "
                                  "WHERE schema_name = 'marts'").fetchall())
        assert set(tables) == set(MART_COLUMNS) and all(tables.values())
        assert tables["mart_facility_daily"].startswith("Conditions per facility and day.")

        publication = con.execute("SELECT interface_version, version, previous_version, "
                                  "strftime(published_at, '%Y-%m-%dT%H:%M:%SZ'), deliveries "
                                  "FROM meta.publication").fetchall()
        assert publication == [(INTERFACE_VERSION, second.version, first.version,
                                manifest["published_at"], len(manifest["deliveries"]))]
        marts = con.execute("SELECT mart, key_columns, rows, sha256, description "
                            "FROM meta.marts ORDER BY position").fetchall()
        assert [m for m, *_ in marts] == list(MART_COLUMNS)
        for mart, keys, rows, sha, description in marts:
            assert tuple(keys) == MART_KEYS[mart]
            assert {"rows": rows, "sha256": sha} == manifest["marts"][mart]
            assert description == tables[mart]
        assert con.execute("SELECT feed || '/' || delivery_id FROM meta.deliveries "
                           "ORDER BY position").fetchall() == [
            (d,) for d in manifest["deliveries"]]
        meta_uncommented = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'meta' "
            "AND coalesce(comment, '') = ''").fetchall()
        assert meta_uncommented == []
    finally:
        con.close()


def test_the_metadata_does_not_change_the_parquet_checksums_nor_unchanged(paths):
    build_marts(paths)
    first = publish(paths)
    again = publish(paths)
    assert again.unchanged and again.version == first.version and again.marts == first.marts


def _empty_marts(con) -> None:
    con.execute("CREATE SCHEMA marts")
    for mart, columns in MART_COLUMNS.items():
        con.execute(f"CREATE TABLE marts.{mart} ("
                    + ", ".join(f'"{c}" VARCHAR' for c in columns) + ")")


def _without_descriptions(docs, mart: str, columns) -> dict:
    doc = docs[mart]
    changed = {c: (t, "" if c in columns else text) for c, (t, text) in doc.columns.items()}
    return {**docs, mart: dataclasses.replace(doc, columns=changed)}


def test_fully_described_marts_pass_the_check(docs):
    con = duckdb.connect()
    try:
        _empty_marts(con)
        write_comments(con, "memory", docs)
        assert comment_problems(con, "memory") == []
    finally:
        con.close()


def test_one_column_without_a_description_is_listed_but_stays_above_the_minimum(docs):
    con = duckdb.connect()
    try:
        _empty_marts(con)
        write_comments(con, "memory", _without_descriptions(docs, "mart_facility_daily",
                                                            {"density"}))
        total, commented, missing = column_coverage(con, "memory")
        assert missing == ["mart_facility_daily.density"] and commented == total - 1
        assert comment_problems(con, "memory") == []
    finally:
        con.close()


def test_columns_without_descriptions_below_the_minimum_are_reported(docs):
    con = duckdb.connect()
    try:
        _empty_marts(con)
        monthly = set(MART_COLUMNS["mart_facility_monthly"])  # 20 of 138 columns: 85.5 %
        undocumented = _without_descriptions(docs, "mart_facility_monthly", monthly)
        undocumented["mart_delivery_status"] = dataclasses.replace(
            undocumented["mart_delivery_status"], description="")
        write_comments(con, "memory", undocumented)
        problems = comment_problems(con, "memory")
        assert problems[0] == "marts.mart_delivery_status: no table comment"
        assert len(problems) == 2 and "columns commented" in problems[1]
        assert "< 95%" in problems[1] and "mart_facility_monthly.vacancy_rate" in problems[1]
    finally:
        con.close()


def test_write_meta_copies_the_manifest(docs):
    manifest = {"interface_version": "1", "version": "v2", "previous_version": "v1",
                "published_at": "2026-11-28T02:14:09Z",
                "deliveries": ["occupancy/occ-1", "facility_register/reg-1"],
                "marts": {m: {"rows": i, "sha256": f"{i:064x}"}
                          for i, m in enumerate(MART_COLUMNS)}}
    con = duckdb.connect()
    try:
        write_meta(con, "memory", manifest, docs)
        assert con.execute("SELECT * FROM meta.deliveries ORDER BY position").fetchall() == [
            (1, "occupancy", "occ-1"), (2, "facility_register", "reg-1")]
        assert con.execute("SELECT previous_version, deliveries, CAST(published_at AS VARCHAR) "
                           "FROM meta.publication").fetchall() == [
            ("v1", 2, "2026-11-28 02:14:09")]
        assert con.execute("SELECT count(*), sum(rows) FROM meta.marts").fetchone() == (
            len(MART_COLUMNS), sum(range(len(MART_COLUMNS))))
    finally:
        con.close()


def test_column_comments_carry_the_unit():
    assert column_unit("Share 0..1: a / b.") == "share 0..1"
    assert column_unit("Population per 100 places in use, x.") == "per 100 places in use"
    assert column_unit("Inmates per 100 places: p / c x 100.") == "per 100 places"
    assert column_unit("FTE per 100 detainees.") == "per 100 detainees"
    assert column_unit("Persons held at midnight.") is None
    assert column_comment("Added. Share 0..1 of x.") == "Share 0..1 of x."
    assert column_comment("Ratio of a to b. Share 0..1, capped.") == (
        "Unit: share 0..1 (0.25 = 25 %). Ratio of a to b. Share 0..1, capped.")
    assert column_comment("It's  a\n count.") == "It's a count."
