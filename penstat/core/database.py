"""The one way penstat opens DuckDB: every connection gets the configured memory limit.

DuckDB allows one writer or many readers per file. Readers pass `read_only=True`.
`path=None` is an in-memory database (for attaching files and scratch work).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from penstat.core.config import Config


def connect(path: Path | str | None = None, *, read_only: bool = False,
            memory_limit: str | None = None,
            temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the memory limit of [resources] (or `memory_limit`).

    Beyond the limit DuckDB spills to `temp_directory` (default: next to the file)."""
    config = {"memory_limit": memory_limit or Config.load().duckdb_memory_limit}
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    return duckdb.connect(":memory:" if path is None else str(path), read_only=read_only,
                          config=config)
