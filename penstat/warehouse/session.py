"""Ingestion's view of the warehouse: checks read-only, one read-write attachment to load.

Ingestion checks a delivery against a read-only attachment of the warehouse
and attaches it read-write only to load, so a rejection never opens the
warehouse file for writing at all.

Each session has a private scratch folder (0700) inside PENSTAT_HOME, never in
$TMPDIR: it holds the checked copies of a delivery's files, transcoded copies
and DuckDB's spill files, all of which may hold clear person identifiers. It is
removed when the session closes, and by the next session if its run was killed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from penstat.core.database import connect
from penstat.core.processes import pid_alive
from penstat.warehouse.schema import create_schema, prepare_warehouse

SCRATCH_PREFIX = "ingest-"

# errno values that say the machine is in trouble, not the file being read
_MACHINE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "an input/output error of the disk",
    errno.ENOMEM: "the machine is out of memory",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files",
}


def machine_failure(exc: BaseException) -> str | None:
    """Why `exc` is the machine's fault rather than the delivery's, or None.

    A delivery is never quarantined for these: the disk is full, memory ran
    out, or another process holds the warehouse's write lock. The same
    delivery loads once the machine is fine again.
    """
    if isinstance(exc, MemoryError | duckdb.OutOfMemoryException):
        return "the machine is out of memory"
    if isinstance(exc, OSError) and exc.errno in _MACHINE_ERRNOS:
        return _MACHINE_ERRNOS[exc.errno]
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        if "Could not set lock" in text:
            return "the warehouse is locked by another writer"
        if "No space left on device" in text:
            return "the disk is full"
        if "Out of Memory" in text:
            return "the machine is out of memory"
    return None


def private_folder(path: Path) -> Path:
    """`path` as an owner-only (0700) folder, created if need be."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def remove_dead_scratch(root: Path) -> list[str]:
    """Scratch folders of ingestion runs that were killed (their pid is gone)."""
    removed = []
    if not root.is_dir():
        return removed
    for folder in root.glob(f"{SCRATCH_PREFIX}*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
        removed.append(folder.name)
    return removed


class WarehouseSession:
    """An in-memory DuckDB connection with the warehouse attached as `wh`.

    `read()` attaches the warehouse read-only (or, if it does not exist yet, an
    empty in-memory stand-in with the schema), for every check of a delivery.
    `write()` re-attaches it read-write for one load and detaches it again
    (which checkpoints). Temporary tables (the staged delivery) live in the
    in-memory catalog and survive the re-attachment. A delivery that is
    rejected is therefore decided without the warehouse ever being opened for
    writing: its file is byte-for-byte untouched.

    `scratch_root` is a folder inside PENSTAT_HOME (`$PENSTAT_HOME/work`); the
    session's scratch is `<scratch_root>/ingest-<pid>-<random>/`, owner-only.
    """

    ALIAS = "wh"

    def __init__(self, path: Path, scratch_root: Path):
        self.path = Path(path)
        root = private_folder(Path(scratch_root))
        remove_dead_scratch(root)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root))
        try:
            self.con = connect(temp_directory=self.scratch / "spill")
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        self._mode: str | None = None

    def _attach(self, mode: str) -> duckdb.DuckDBPyConnection:
        if self._mode == mode:
            return self.con
        self._detach()
        if mode == "rw":
            prepare_warehouse(self.path)  # 0700 folder, 0600 file, whatever the umask
            self.con.execute(f"ATTACH '{self.path}' AS {self.ALIAS}")
        elif self.path.exists():
            self.con.execute(f"ATTACH '{self.path}' AS {self.ALIAS} (READ_ONLY)")
        else:
            self.con.execute(f"ATTACH ':memory:' AS {self.ALIAS}")
        self._mode = mode
        self.con.execute(f"USE {self.ALIAS}")
        if mode == "rw" or not self.path.exists():
            create_schema(self.con)
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
            try:
                self.con.close()
            finally:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> WarehouseSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
