"""What a publication's `published.duckdb` says about itself.

Any DuckDB client (1.1 and later; the file is written in storage version
STORAGE_VERSION) that opens a publication finds, besides the schema `marts`:

- a comment on every mart and on its columns (`duckdb_tables()`, `duckdb_columns()`),
  taken from the dbt YAML of the marts through penstat.contract.published_docs (the one
  source of docs/published.md too), with the column's unit (share 0..1, per 100 places,
  per 100 detainees) where it has one;
- a schema `meta`: `meta.publication` (one row: interface version, version, previous
  version, published_at, number of deliveries), `meta.deliveries` (the deliveries the
  published build saw, in ledger order) and `meta.marts` (each mart's key, rows, the
  sha256 of its Parquet file and its description), all copied from the manifest; and
  `meta.revisions`, what changed since the previous publication, written with the marts
  by penstat.publication.revisions.

The marts' rows, and so the Parquet files and their checksums, do not depend on any of
this: comments and `meta` change only the bytes of `published.duckdb`, which nothing
compares (a publication is "unchanged" when its mart checksums and deliveries are).
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from penstat.contract.published import MART_COLUMNS, MART_KEYS
from penstat.contract.published_docs import ModelDoc, column_comment, dbt_model_docs, table_comment

# The oldest DuckDB storage format that holds what a publication needs; DuckDB 1.1 and
# every later version read it (DuckDB 1.4 writes a newer one by default that 1.1 refuses).
STORAGE_VERSION = "v1.1.0"
# At least this share of the marts' columns must carry a comment (comment_problems).
MIN_COLUMN_COVERAGE = 0.95

_META_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "publication": ("This publication: one row.", {
        "interface_version": "Version of the published interface (docs/published.md); "
                             "adding marts or columns keeps it, renaming or removing bumps it.",
        "version": "Version of this publication: the name of its folder under published/.",
        "previous_version": "The publication that was current when this one was made; "
                            "null for the first.",
        "published_at": "When this publication was made, UTC.",
        "deliveries": "Count of deliveries the published build saw (meta.deliveries).",
    }),
    "deliveries": ("The deliveries the published build saw, in ledger order.", {
        "position": "Position in the ledger order, from 1.",
        "feed": "Feed of the delivery contract (docs/contract/feeds.md).",
        "delivery_id": "The sender's delivery id, unique within its feed.",
    }),
    "marts": ("The marts of this publication (schema marts), in publication order.", {
        "position": "Position in publication order, from 1.",
        "mart": "Table name in schema marts (and <mart>.parquet beside this file).",
        "key_columns": "The columns that identify a row; rows are ordered by them.",
        "rows": "Count of rows.",
        "sha256": "sha256 of <mart>.parquet (as in manifest.json).",
        "description": "What the mart holds (its table comment).",
    }),
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_comments(con: duckdb.DuckDBPyConnection, catalog: str,
                   docs: Mapping[str, ModelDoc] | None = None) -> None:
    """COMMENT ON every mart of `catalog`.marts and its columns that the dbt YAML describes."""
    docs = dbt_model_docs() if docs is None else docs
    for mart, columns in MART_COLUMNS.items():
        doc = docs.get(mart)
        if doc is None:
            continue
        if doc.description.strip():
            con.execute(f"COMMENT ON TABLE {catalog}.marts.{mart} IS "
                        f"{_quote(table_comment(doc.description))}")
        for column in columns:
            text = doc.columns.get(column, ("", ""))[1]
            if text.strip():
                con.execute(f'COMMENT ON COLUMN {catalog}.marts.{mart}."{column}" IS '
                            f"{_quote(column_comment(text))}")


def write_meta(con: duckdb.DuckDBPyConnection, catalog: str, manifest: Mapping,
               docs: Mapping[str, ModelDoc] | None = None) -> None:
    """The schema `catalog`.meta, from the publication's manifest."""
    docs = dbt_model_docs() if docs is None else docs
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {catalog}.meta")
    con.execute(f"CREATE TABLE {catalog}.meta.publication (interface_version VARCHAR, "
                "version VARCHAR, previous_version VARCHAR, published_at TIMESTAMP, "
                "deliveries BIGINT)")
    con.execute(f"INSERT INTO {catalog}.meta.publication VALUES "
                "(?, ?, ?, strptime(?, '%Y-%m-%dT%H:%M:%SZ'), ?)",
                [manifest["interface_version"], manifest["version"],
                 manifest.get("previous_version"), manifest["published_at"],
                 len(manifest["deliveries"])])
    con.execute(f"CREATE TABLE {catalog}.meta.deliveries (position INTEGER, feed VARCHAR, "
                "delivery_id VARCHAR)")
    rows = [(i, *d.split("/", 1)) for i, d in enumerate(manifest["deliveries"], 1)]
    if rows:
        con.executemany(f"INSERT INTO {catalog}.meta.deliveries VALUES (?, ?, ?)", rows)
    con.execute(f"CREATE TABLE {catalog}.meta.marts (position INTEGER, mart VARCHAR, "
                "key_columns VARCHAR[], rows BIGINT, sha256 VARCHAR, description VARCHAR)")
    rows = [(i, mart, list(MART_KEYS.get(mart, ())), info["rows"], info["sha256"],
             table_comment(docs[mart].description) if mart in docs else None)
            for i, (mart, info) in enumerate(manifest["marts"].items(), 1)]
    con.executemany(f"INSERT INTO {catalog}.meta.marts VALUES (?, ?, ?, ?, ?, ?)", rows)
    for table, (comment, columns) in _META_TABLES.items():
        con.execute(f"COMMENT ON TABLE {catalog}.meta.{table} IS {_quote(comment)}")
        for column, text in columns.items():
            con.execute(f'COMMENT ON COLUMN {catalog}.meta.{table}."{column}" IS '
                        f"{_quote(text)}")


def column_coverage(con: duckdb.DuckDBPyConnection, catalog: str,
                    schema: str = "marts") -> tuple[int, int, list[str]]:
    """(columns, commented columns, the uncommented as table.column) of a schema."""
    rows = con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? ORDER BY table_name, column_index",
        [catalog, schema]).fetchall()
    missing = [f"{t}.{c}" for t, c, comment in rows if not (comment or "").strip()]
    return len(rows), len(rows) - len(missing), missing


def comment_problems(con: duckdb.DuckDBPyConnection, catalog: str,
                     minimum: float = MIN_COLUMN_COVERAGE) -> list[str]:
    """What keeps `catalog` from explaining itself: marts without a comment, and a share
    of commented mart columns below `minimum`. Empty when all is well."""
    problems = [f"marts.{t}: no table comment" for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = "
        "'marts' AND coalesce(trim(comment), '') = '' ORDER BY table_name",
        [catalog]).fetchall()]
    total, commented, missing = column_coverage(con, catalog)
    if total == 0:
        problems.append("marts: no columns")
    elif commented / total < minimum:
        problems.append(f"marts: {commented} of {total} columns commented "
                        f"({commented / total:.1%} < {minimum:.0%}); without a comment: "
                        + ", ".join(missing))
    return problems
