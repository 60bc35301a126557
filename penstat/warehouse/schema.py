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

File modes: the raw layer holds person-level rows (pseudonymised, but rows about
people), so the warehouse is owner-only whatever the process umask. Its folder is
0700, set explicitly on every writer's open. A new warehouse file is created in a
private (0700) staging folder beside it, set to 0600 there, and linked into place:
it never exists under its name with wider permissions. DuckDB creates the
write-ahead log (`warehouse.duckdb.wal`) itself, with the process umask; it lives
only inside the 0700 folder, and it is set to 0600 whenever a writer creates the
schema (`create_schema`, right after every read-write open or attachment) and when
`connect` closes. A file left with wider permissions (by an older penstat, a
restore, or another tool) is narrowed by the next writer.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
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
    """Create the raw layer and the ledger if they do not exist (idempotent).

    Then the current database's file, if it is one opened for writing, is made
    owner-only (`protect`): every writer calls this right after it opens or
    attaches the warehouse, before any row is written."""
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
    found = con.execute("SELECT path, readonly FROM duckdb_databases() "
                        "WHERE database_name = current_database()").fetchone()
    if found and found[0] and not found[1]:
        protect(Path(found[0]))


WAREHOUSE_FOLDER_MODE = 0o700
WAREHOUSE_FILE_MODE = 0o600


def wal_path(path: Path) -> Path:
    """DuckDB's write-ahead log of the database file `path`."""
    return path.with_name(path.name + ".wal")


def protect(path: Path) -> None:
    """Owner-only modes on the warehouse's folder, file and write-ahead log (those that
    exist). Links are never followed: only regular files are changed."""
    if stat.S_IMODE(os.stat(path.parent).st_mode) != WAREHOUSE_FOLDER_MODE:
        os.chmod(path.parent, WAREHOUSE_FOLDER_MODE)
    for file in (path, wal_path(path)):
        try:
            st = os.lstat(file)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != WAREHOUSE_FILE_MODE:
            os.chmod(file, WAREHOUSE_FILE_MODE)


def prepare_warehouse(path: Path) -> bool:
    """The warehouse's folder (0700) and, if it does not exist yet, the file itself
    (0600, with the schema), both independent of the umask; True if it was created.

    The file is made in a private staging folder and hard-linked into place, so it
    never appears under its name with other permissions, and a warehouse another
    writer created meanwhile is never replaced."""
    folder = path.parent
    folder.mkdir(mode=WAREHOUSE_FOLDER_MODE, parents=True, exist_ok=True)
    protect(path)
    if os.path.lexists(path):
        return False
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=folder))  # 0700
    try:
        new = staging / path.name
        con = open_duckdb(new)
        try:
            os.chmod(new, WAREHOUSE_FILE_MODE)
            create_schema(con)
        finally:
            con.close()
        os.chmod(new, WAREHOUSE_FILE_MODE)
        try:
            os.link(new, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: rename, if still free
            if os.path.lexists(path):
                return False
            os.rename(new, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; writers create it owner-only, with the schema, on first use."""
    if not read_only:
        prepare_warehouse(path)
    con = open_duckdb(path, read_only=read_only)
    try:
        if not read_only:
            create_schema(con)  # and protect(path): the log its first write may have made
        yield con
    finally:
        con.close()
        if not read_only:
            protect(path)
