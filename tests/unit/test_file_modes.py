"""File modes do not depend on the umask: the warehouse (person-level rows) is owner-only,
a publication is world-readable and read-only.

Every test runs under a permissive umask (0o022, the usual default) and under none at
all (0o000, where every file a library creates is world-writable)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from penstat.contract.layout import Paths
from penstat.ingestion.pipeline import ingest_feed
from penstat.publication.publish import publish
from penstat.warehouse.schema import connect, prepare_warehouse, wal_path
from tests import builders as b
from tests.unit.publication.test_publication import build_marts


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def assert_owner_only(warehouse: Path) -> None:
    assert mode(warehouse.parent) == 0o700
    assert mode(warehouse) == 0o600
    wal = wal_path(warehouse)
    if wal.exists():
        assert mode(wal) == 0o600


def test_a_new_warehouse_is_owner_only_from_its_creation(paths: Paths, umask):
    with connect(paths.warehouse) as con:
        assert_owner_only(paths.warehouse)  # before anything is written
        con.execute("INSERT INTO meta.receipts VALUES ('f', 'd', 'loaded', NULL, 'm', now())")
        assert mode(paths.warehouse.parent) == 0o700  # guards the log DuckDB makes now
    assert_owner_only(paths.warehouse)
    assert sorted(p.name for p in paths.warehouse.parent.iterdir()) == [paths.warehouse.name]


def test_an_older_warehouse_with_wider_modes_is_narrowed_by_the_next_writer(paths, umask):
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(paths.warehouse)).close()
    os.chmod(paths.warehouse, 0o666)
    os.chmod(paths.warehouse.parent, 0o777)
    with connect(paths.warehouse):
        assert_owner_only(paths.warehouse)
    assert_owner_only(paths.warehouse)


def test_a_readers_connection_changes_no_mode(paths, umask):
    with connect(paths.warehouse):
        pass
    os.chmod(paths.warehouse, 0o640)  # the operator's choice, e.g. a group of auditors
    with connect(paths.warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.deliveries").fetchone() == (0,)
    assert mode(paths.warehouse) == 0o640


def test_prepare_warehouse_never_replaces_an_existing_warehouse(paths, umask):
    assert prepare_warehouse(paths.warehouse) is True
    with connect(paths.warehouse) as con:
        con.execute("INSERT INTO meta.receipts VALUES ('f', 'd', 'loaded', NULL, 'm', now())")
    assert prepare_warehouse(paths.warehouse) is False
    with connect(paths.warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.receipts").fetchone() == (1,)
    assert_owner_only(paths.warehouse)
    assert [p.name for p in paths.warehouse.parent.iterdir()] == [paths.warehouse.name]


def test_ingestion_leaves_the_warehouse_owner_only(paths, umask):
    """The first delivery creates the warehouse through ingestion's attachment."""
    b.register(paths.inbox)
    [out] = ingest_feed("facility_register", paths)
    assert out.outcome == "loaded"
    assert_owner_only(paths.warehouse)


def test_a_publication_is_world_readable_and_read_only(paths, umask):
    build_marts(paths)
    publication = publish(paths)
    assert mode(paths.published) == 0o755
    assert mode(publication.folder) == 0o555
    entries = list(publication.folder.rglob("*"))
    assert entries
    for entry in entries:
        expected = 0o555 if entry.is_dir() else 0o444
        assert mode(entry) == expected, (entry, oct(mode(entry)))
    assert_owner_only(paths.warehouse)
