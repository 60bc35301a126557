"""The working warehouse's raw layer and ledger: DDL, and `connect()` to the warehouse.

Raw tables hold every accepted row of every delivery (history is never
deleted), typed per the contract, with load metadata:

    _delivery_id   the delivery the row came in
    _delivery_seq  the ledger sequence of that delivery (later wins on a key)
    _file          the data file name inside the delivery
    _row           the data row number in that file (1 = first row after the header)
    _loaded_at     when it was loaded (UTC)

The ledger (meta.deliveries) is the truth about what has been processed;
meta.receipts records every decision taken on a delivery folder except a
rejection: a rejected delivery writes nothing to the warehouse (its reason is
in quarantine). meta.builds records each dbt build: which ledger entries it
saw and whether it finished, so a publication lists exactly the deliveries its
marts were built from and never publishes the marts of an interrupted build.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from penstat.contract.feeds import FEEDS, raw_table_name, stored_column_name
from penstat.core.database import connect as open_duckdb

LOAD_METADATA_COLUMNS = (
    ("_delivery_id", "VARCHAR NOT NULL"),
    ("_delivery_seq", "BIGINT NOT NULL"),
    ("_file", "VARCHAR NOT NULL"),
    ("_row", "BIGINT NOT NULL"),
    ("_loaded_at", "TIMESTAMP NOT NULL"),
)

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SEQUENCE IF NOT EXISTS meta.delivery_seq START 1;
CREATE TABLE IF NOT EXISTS meta.deliveries (
    delivery_seq     BIGINT PRIMARY KEY,
    feed             VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    sender           VARCHAR,
    created_at       TIMESTAMP NOT NULL,   -- sender's extraction time (UTC)
    period_start     DATE,
    period_end       DATE,
    replaces         VARCHAR,
    manifest_sha256  VARCHAR NOT NULL,
    content_sha256   VARCHAR NOT NULL,     -- hash over the data files' hashes
    rows_loaded      BIGINT NOT NULL,
    loaded_at        TIMESTAMP NOT NULL,
    UNIQUE (feed, delivery_id)
);
CREATE TABLE IF NOT EXISTS meta.receipts (
    -- every decision on a delivery folder that reached the warehouse: loads and re-sends
    -- (a rejection writes nothing here: its reason is in quarantine)
    feed         VARCHAR NOT NULL,
    delivery_id  VARCHAR NOT NULL,
    outcome      VARCHAR NOT NULL,        -- loaded | resend_ignored | quarantined
    rule         VARCHAR,
    message      VARCHAR,
    decided_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS meta.builds (
    -- one row per dbt build (penstat.orchestration.tasks.build_marts)
    build_id          BIGINT PRIMARY KEY,
    max_delivery_seq  BIGINT NOT NULL,     -- the ledger as the build saw it
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP            -- null: interrupted or still running
);
-- added with incremental builds (penstat/transform/increments.py); older warehouses gain them
ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS mode VARCHAR;        -- full | incremental
ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS months VARCHAR;      -- JSON list of months
ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS project_fingerprint VARCHAR;
"""


def column_ddl(feed: str, stem: str) -> list[tuple[str, str]]:
    spec = FEEDS[feed].file(stem)
    return [(stored_column_name(c), c.duckdb_type) for c in spec.columns]


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw layer and the ledger if they do not exist (idempotent)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(LEDGER_DDL)
    for feed in FEEDS.values():
        for spec in feed.files:
            cols = [f'"{n}" {t}' for n, t in column_ddl(feed.name, spec.stem)]
            cols += [f"{n} {t}" for n, t in LOAD_METADATA_COLUMNS]
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {raw_table_name(feed.name, spec.stem)} "
                f"({', '.join(cols)})"
            )


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; writers create the schema on first use."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = open_duckdb(path, read_only=read_only)
    try:
        if not read_only:
            create_schema(con)
        yield con
    finally:
        con.close()
