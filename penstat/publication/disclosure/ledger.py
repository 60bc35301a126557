"""What earlier publications made public: one compact ledger, not every vintage.

The ledger (`$PENSTAT_HOME/disclosure/ledger.parquet`) holds, for every cell key ever
published, its current state: the last value published (a facility-day's population, a
facility-month's or national class's person-days up to a given day, a cohort group's
counts), or NULL if it was withheld last time (so withheld again) with, in
`withheld_value` and `withheld_need`, the value and the protection interval it had. Each
merge of a publication is a vintage: a row carries the vintage its state began at
(`since`) and the last that published the key (`staged`); a key published with another
state keeps its old one, superseded (`until` the vintage before). So a sum published
then is a fact about the values of then, even after they were revised, withheld or
revised while withheld (linked.py). The file grows with the cells and their revisions,
not with the number of publications. A provisional month's sums have keys carrying their
last day, so yesterday's sum of days 1..9 stays in the ledger beside today's sum of days
1..10: their difference is today's day 10, which the audit therefore protects. The
values withheld make the ledger as confidential as the warehouse: its folder is the
owner's only (0700), its files 0600. A ledger written before these columns existed reads
as one vintage (0) with no value withheld known.

The secondary cost's jitter is keyed (see `secret`): by the pseudonym key, or a random
key beside the ledger (`secret`, 0600) where there is none.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
from pathlib import Path

import duckdb

from penstat.contract.layout import Paths
from penstat.core.database import connect
from penstat.core.processes import pid_alive

LEDGER = "ledger.parquet"
SECRET = "secret"
WITHHELD_VALUE = "withheld_value"  # the value of a withheld cell then (owner-only)
WITHHELD_NEED = "withheld_need"  # and the protection interval it had then
FILE_MODE, FOLDER_MODE = 0o600, 0o700


def folder(paths: Paths) -> Path:
    return paths.home / "disclosure"


def _made_folder(paths: Paths) -> Path:
    """The ledger's folder, made if missing, entered by its owner only (0700): the files
    in it are owner-only as well, and a file being written is not readable meanwhile."""
    path = folder(paths)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(FOLDER_MODE)
    return path


def secret(paths: Paths) -> bytes:
    """The key of the secondary cost's jitter.

    Derived from the pseudonym key when one is configured (HMAC-SHA256 with a label of
    its own, so it says nothing about the key): every home of the same organisation
    then makes the same choices from the same data and history (a rebuild, a second
    home, a crash and its rerun publish the same cells), while an outsider, without
    the key, still cannot replay the choice. Without a pseudonym key (a warehouse with
    no person-level feed), a random key made on first use and kept beside the ledger
    (readable by its owner only)."""
    from penstat.core.secrets import MissingPseudonymKey, pseudonym_key

    try:
        return hmac.new(pseudonym_key(), b"penstat disclosure jitter v1", hashlib.sha256
                        ).digest()
    except MissingPseudonymKey:
        pass
    path = folder(paths) / SECRET
    if not path.is_file():
        _made_folder(paths)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


def ledger_path(paths: Paths) -> Path:
    return folder(paths) / LEDGER


# The facility-months of the last publication with the class it gave them, a temporary
# table (facility_id, m 'YYYY-MM', scale_class): the classes of its national sums.
PUBLISHED_CLASSES = "published_classes"
# The facility-days of the last publication with the class it gave them (facility_id,
# census_date, scale_class): the classes of its national population sums.
PUBLISHED_DAY_CLASSES = "published_day_classes"


# Beside each row: the vintage (the ledger's count of publications merged) its state
# began at, the last vintage that published the key, and, for a superseded state, the
# last vintage it held (NULL: the key's current state).
VINTAGE_COLUMNS = {"since": "INTEGER", "staged": "INTEGER", "until": "INTEGER"}
HISTORY = "ledger_history"  # temp table: the superseded states


def _columns(con: duckdb.DuckDBPyConnection, relation: str, *, vintages: bool = False
             ) -> str:
    """The ledger's columns selected from `relation`: key, value, withheld_value (and
    with `vintages` the vintage columns), NULL where the relation has none (cells
    staged without them, or a ledger or pending file of an earlier version: its
    vintages read as 0, its states as current)."""
    names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    columns = "key, value" + "".join(
        f", {c}" if c in names else f", NULL::DOUBLE AS {c}"
        for c in (WITHHELD_VALUE, WITHHELD_NEED))
    if vintages:
        columns += "".join(
            f", {c}" if c in names else
            f", {'NULL' if c == 'until' else '0'}::{t} AS {c}"
            for c, t in VINTAGE_COLUMNS.items())
    return columns


def read(con: duckdb.DuckDBPyConnection, paths: Paths) -> None:
    """Load what earlier publications made public: the ledger's current states as the
    temporary table `ledger(key, value, withheld_value, since, staged)`, its superseded
    states as HISTORY (the same and `until`), and the last publication's facility-month
    classes as PUBLISHED_CLASSES and facility-day classes as PUBLISHED_DAY_CLASSES (each
    empty if there is none)."""
    path = ledger_path(paths)
    source = f"read_parquet('{path}')" if path.is_file() else _EMPTY
    columns = _columns(con, source, vintages=True)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {HISTORY} AS
        SELECT * FROM (SELECT {columns} FROM {source}) WHERE until IS NOT NULL;
        CREATE OR REPLACE TEMP TABLE ledger AS
        SELECT * EXCLUDE (until) FROM (SELECT {columns} FROM {source})
        WHERE until IS NULL""")
    _last_publication(con, paths, PUBLISHED_CLASSES, "mart_facility_monthly",
                      "facility_id VARCHAR, m VARCHAR, scale_class VARCHAR",
                      "facility_id, strftime(month, '%Y-%m'), scale_class")
    _last_publication(con, paths, PUBLISHED_DAY_CLASSES, "mart_facility_daily",
                      "facility_id VARCHAR, census_date DATE, scale_class VARCHAR",
                      "facility_id, census_date, coalesce(scale_class, 'unknown')")


def _last_publication(con: duckdb.DuckDBPyConnection, paths: Paths, table: str,
                      mart: str, columns: str, select: str) -> None:
    """The temporary table `table` (`columns`): `select` from the current publication's
    `mart`, empty before a first publication."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({columns})")
    path = paths.current_publication / f"{mart}.parquet"
    if path.is_file():
        con.execute(f"INSERT INTO {table} SELECT {select} FROM read_parquet('{path}')")

_EMPTY = (f"(SELECT NULL::VARCHAR AS key, NULL::DOUBLE AS value, "
          f"NULL::DOUBLE AS {WITHHELD_VALUE}, NULL::DOUBLE AS {WITHHELD_NEED}, "
          + ", ".join(f"NULL::{t} AS {c}" for c, t in VINTAGE_COLUMNS.items())
          + " WHERE false)")


def write(con: duckdb.DuckDBPyConnection, paths: Paths, published: str) -> int:
    """Merge the relation `published(key, value[, withheld_value])` into the ledger as
    its next vintage: a key published with the state it had keeps it (its `since`),
    one published with another state starts a new one and its old state is kept,
    superseded (`until` the vintage before), so a sum published back then is still a
    fact about the values of then. Atomically replace the file (owner-only); the
    number of keys it holds. The rows are in no order (sorting them would double the
    merge's time): the readers that make cells order what they read."""
    path = _made_folder(paths) / LEDGER
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    old = f"read_parquet('{path}')" if path.is_file() else _EMPTY
    w, need = WITHHELD_VALUE, WITHHELD_NEED
    con.execute(f"""
        COPY (
            WITH _old AS MATERIALIZED (
                    SELECT {_columns(con, old, vintages=True)} FROM {old}),
                 _next AS (SELECT coalesce(max(staged), 0) + 1 AS v FROM _old),
                 _new AS (SELECT {_columns(con, published)} FROM {published}),
                 _both AS MATERIALIZED (
                    SELECT coalesce(n.key, o.key) AS key, n.key IS NOT NULL AS published,
                           n.value, n.{w}, n.{need}, o.key IS NOT NULL AS known,
                           o.value AS o_value, o.{w} AS o_{w}, o.{need} AS o_{need},
                           o.since AS o_since, o.staged AS o_staged,
                           n.value IS NOT DISTINCT FROM o.value
                             AND n.{w} IS NOT DISTINCT FROM o.{w} AS same
                    FROM _new n FULL JOIN (SELECT * FROM _old WHERE until IS NULL) o
                      USING (key))
            -- the same state keeps the widest protection it ever had (a count's base
            -- may have grown over the minimum since, not what it was withheld for)
            SELECT key, value, {w},
                   CASE WHEN known AND same THEN greatest({need}, o_{need}) ELSE {need}
                   END AS {need},
                   CASE WHEN known AND same THEN o_since ELSE v END AS since,
                   v AS staged, NULL::INTEGER AS until
            FROM _both, _next WHERE published
            UNION ALL  -- not published this time: as it was
            SELECT key, o_value, o_{w}, o_{need}, o_since, o_staged, NULL
            FROM _both WHERE NOT published
            UNION ALL  -- published with another state: the old one, superseded
            SELECT key, o_value, o_{w}, o_{need}, o_since, o_staged, v - 1
            FROM _both, _next WHERE published AND known AND NOT same
            UNION ALL
            SELECT * FROM _old WHERE until IS NOT NULL
        ) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)""")
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{path}') "
                           f"WHERE until IS NULL").fetchone()[0])


def pending(paths: Paths) -> Path:
    """The cells of the publication being made, until it is current."""
    return folder(paths) / f"pending-{os.getpid()}.parquet"


def _promised(paths: Paths, pid: int, version: str) -> Path:
    return folder(paths) / f"pending-{pid}.{version}.parquet"


def stage(con: duckdb.DuckDBPyConnection, paths: Paths, relation: str) -> None:
    _made_folder(paths)
    path = pending(paths)
    con.execute(f"COPY (SELECT {_columns(con, relation)} FROM {relation}) TO '{path}' "
                f"(FORMAT parquet)")
    os.chmod(path, FILE_MODE)


def promise(paths: Paths, version: str) -> None:
    """Name this process's pending cells after the version about to become current, just
    before `current` switches: if the publisher dies between the switch and `commit`,
    the next publisher finds them (`recover`) and merges them, since they were
    published."""
    path = pending(paths)
    if path.is_file():
        os.replace(path, _promised(paths, os.getpid(), version))


def commit(paths: Paths) -> int | None:
    """Merge this process's pending cells into the ledger (after `current` switched)."""
    mine = [p for p in (pending(paths), *folder(paths).glob(f"pending-{os.getpid()}.*.parquet"))
            if p.is_file()]
    if not mine:
        return None
    n = _merge(paths, mine[-1])
    for path in mine:
        path.unlink(missing_ok=True)
    return n


def _merge(paths: Paths, path: Path) -> int:
    # a merge too large for memory spills inside the owner-only folder, not the cwd
    spill = _made_folder(paths) / f"spill-{os.getpid()}"
    con = connect(temp_directory=spill)
    try:
        return write(con, paths, f"read_parquet('{path}')")
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def recover(paths: Paths, current_version: str | None) -> list[str]:
    """The pending cells of publishers that died: merged into the ledger when they were
    promised to the version that is current (it was published; the ledger must know),
    removed otherwise (a draft that never became current published nothing). A live
    publisher's files are left alone. The names of the files handled."""
    handled = []
    if not folder(paths).is_dir():
        return handled
    for spill in folder(paths).glob("spill-*"):  # a merge's spill of a dead process
        pid = spill.name[len("spill-"):]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            if spill.is_dir():
                shutil.rmtree(spill, ignore_errors=True)
            else:
                spill.unlink(missing_ok=True)
    for path in sorted(folder(paths).glob("pending-*.parquet")):
        pid, _, version = path.name[len("pending-"):-len(".parquet")].partition(".")
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        if version and version == current_version:
            _merge(paths, path)
        path.unlink(missing_ok=True)
        handled.append(path.name)
    return handled


def discard(paths: Paths) -> None:
    pending(paths).unlink(missing_ok=True)
    for path in folder(paths).glob(f"pending-{os.getpid()}.*.parquet"):
        path.unlink(missing_ok=True)
