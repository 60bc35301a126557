"""The working warehouse's raw layer and ledger: DDL and connections.

Raw tables hold every accepted row of every delivery (history is never
deleted), typed per the contract, with load metadata:

    _delivery_id   the delivery the row came in
    _delivery_seq  the ledger sequence of that delivery (later wins on a key)
    _file          the data file name inside the delivery
    _row           the data row number in that file (1 = first row after the header)
    _loaded_at     when it was loaded (UTC)

The ledger (meta.deliveries) is the truth about what has been processed;
meta.rejections records every quarantined delivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ingestion.contract import FEEDS, raw_table_name, stored_column_name

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
    -- every decision taken on a delivery folder, including re-sends and rejections
    feed         VARCHAR NOT NULL,
    delivery_id  VARCHAR NOT NULL,
    outcome      VARCHAR NOT NULL,        -- loaded | resend_ignored | quarantined
    rule         VARCHAR,
    message      VARCHAR,
    decided_at   TIMESTAMP NOT NULL
);
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
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            create_schema(con)
        yield con
    finally:
        con.close()
