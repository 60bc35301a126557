"""The working warehouse's raw layer and ledger: DDL and connections.

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

Ingestion checks a delivery against a read-only attachment of the warehouse
and attaches it read-write only to load (WarehouseSession), so a rejection
never opens the warehouse file for writing at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ingestion.contract import FEEDS, raw_table_name, stored_column_name
from ingestion.settings import Config

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
CREATE TABLE IF NOT EXISTS meta.builds (
    -- one row per dbt build (operations.tasks.build_marts)
    build_id          BIGINT PRIMARY KEY,
    max_delivery_seq  BIGINT NOT NULL,     -- the ledger as the build saw it
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP            -- null: interrupted or still running
);
-- added with incremental builds (transform/increments.py); older warehouses gain them
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
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            create_schema(con)
        yield con
    finally:
        con.close()


def _remove_dead_scratch(prefix: str) -> None:
    """Scratch folders of ingestion runs that were killed (their pid is gone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = folder.name.removeprefix(prefix).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass


class WarehouseSession:
    """An in-memory DuckDB connection with the warehouse attached as `wh`.

    `read()` attaches the warehouse read-only (or, if it does not exist yet, an
    empty in-memory stand-in with the schema), for every check of a delivery.
    `write()` re-attaches it read-write for one load and detaches it again
    (which checkpoints). Temporary tables (the staged delivery) live in the
    in-memory catalog and survive the re-attachment. A delivery that is
    rejected is therefore decided without the warehouse ever being opened for
    writing: its file is byte-for-byte untouched.
    """

    ALIAS = "wh"

    SCRATCH_PREFIX = "penstat-ingest-"

    def __init__(self, path: Path):
        self.path = Path(path)
        _remove_dead_scratch(self.SCRATCH_PREFIX)
        # private (0700) scratch of this run: DuckDB's spill files and transcoded copies
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{self.SCRATCH_PREFIX}{os.getpid()}-"))
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET temp_directory = '{self.scratch / 'spill'}'")
        self.con.execute(f"SET memory_limit = '{Config.load().duckdb_memory_limit}'")
        self._mode: str | None = None

    def _attach(self, mode: str) -> duckdb.DuckDBPyConnection:
        if self._mode == mode:
            return self.con
        self._detach()
        if mode == "rw":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con.execute(f"ATTACH '{self.path}' AS {self.ALIAS}")
        elif self.path.exists():
            self.con.execute(f"ATTACH '{self.path}' AS {self.ALIAS} (READ_ONLY)")
        else:
            self.con.execute(f"ATTACH ':memory:' AS {self.ALIAS}")
        self.con.execute(f"USE {self.ALIAS}")
        if mode == "rw" or not self.path.exists():
            create_schema(self.con)
        self._mode = mode
        return self.con

    def _detach(self) -> None:
        if self._mode is not None:
            self.con.execute("USE memory")
            self.con.execute(f"DETACH {self.ALIAS}")
            self._mode = None

    def read(self) -> duckdb.DuckDBPyConnection:
        return self._attach("ro")

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._attach("rw")
        try:
            yield con
        finally:
            self._detach()

    def close(self) -> None:
        try:
            self._detach()
        finally:
            self.con.close()
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> WarehouseSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
