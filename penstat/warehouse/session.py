"""Ingestion's view of the warehouse: checks read-only, one read-write attachment to load.

Ingestion checks a delivery against a read-only attachment of the warehouse
and attaches it read-write only to load, so a rejection never opens the
warehouse file for writing at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from penstat.core.database import connect
from penstat.core.processes import pid_alive
from penstat.warehouse.schema import create_schema


def _remove_dead_scratch(prefix: str) -> None:
    """Scratch folders of ingestion runs that were killed (their pid is gone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = folder.name.removeprefix(prefix).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        if not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


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
        self.con = connect(temp_directory=self.scratch / "spill")
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
