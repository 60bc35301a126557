"""The ledger of what was published keeps one row per cell key, the newest value."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

import duckdb

from penstat.contract.layout import Paths
from penstat.publication.disclosure import ledger


def ledger_tables(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple] = (),
                  vintage: int = 1) -> None:
    """The ledger's temporary tables as ledger.read makes them (no ledger file, no
    publication yet), holding `rows`: (key, value published or None[, the value
    withheld then[, its protection interval then]]), current since `vintage`."""
    ledger.read(con, Paths(Path("/nonexistent-penstat-home")))
    if rows:
        con.executemany("INSERT INTO ledger (key, value, withheld_value, withheld_need, "
                        "since, staged) VALUES (?, ?, ?, ?, ?, ?)",
                        [(*(*row, None, None)[:4], vintage, vintage) for row in rows])


def published_ledger(home: Path, *vintages: Sequence[tuple]) -> Paths:
    """A home whose ledger merged `vintages`, one publication after the other, each of
    (key, value published or None[, the value withheld then]) rows."""
    paths = Paths(home)
    con = duckdb.connect()
    for rows in vintages:
        con.execute("CREATE OR REPLACE TABLE v (key VARCHAR, value DOUBLE, "
                    "withheld_value DOUBLE)")
        con.executemany("INSERT INTO v VALUES (?, ?, ?)", [(*r, None)[:3] for r in rows])
        ledger.write(con, paths, "v")
    return paths


def test_the_ledger_keeps_the_newest_value_of_each_key_and_does_not_grow_by_vintage(tmp_path):
    paths = Paths(tmp_path)
    con = duckdb.connect()
    ledger.read(con, paths)
    assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0  # none yet
    con.execute("CREATE TABLE v1 AS SELECT * FROM (VALUES ('day|F|1', 5.0), "
                "('month|F|m|1', 5.0)) t(key, value)")
    assert ledger.write(con, paths, "v1") == 2
    for _ in range(3):  # the same cells published again: no growth
        assert ledger.write(con, paths, "v1") == 2
    con.execute("CREATE TABLE v2 AS SELECT * FROM (VALUES ('day|F|1', 4.0), "
                "('month|F|m|2', 9.0)) t(key, value)")
    assert ledger.write(con, paths, "v2") == 3
    ledger.read(con, paths)
    assert dict(con.execute("SELECT key, value FROM ledger").fetchall()) == {
        "day|F|1": 4.0, "month|F|m|1": 5.0, "month|F|m|2": 9.0}


def test_pending_cells_reach_the_ledger_only_when_committed(tmp_path):
    paths = Paths(tmp_path)
    con = duckdb.connect()
    con.execute("CREATE TABLE cells AS SELECT 'day|F|1' AS key, 7.0 AS value")
    ledger.stage(con, paths, "cells")
    ledger.discard(paths)  # a failed gate
    assert ledger.commit(paths) is None and not ledger.ledger_path(paths).exists()
    ledger.stage(con, paths, "cells")
    assert ledger.commit(paths) == 1
    assert not ledger.pending(paths).exists()


def test_without_a_pseudonym_key_the_secret_is_made_once_for_the_owner_only(tmp_path,
                                                                          monkeypatch):
    for name in ("PENSTAT_PSEUDONYM_KEY", "AIRFLOW_CONN_PENSTAT_PSEUDONYM_KEY",
                 "AIRFLOW_VAR_PENSTAT_PSEUDONYM_KEY", "AIRFLOW__SECRETS__BACKEND"):
        monkeypatch.delenv(name, raising=False)
    paths = Paths(tmp_path)
    key = ledger.secret(paths)
    assert len(key) == 32 and ledger.secret(paths) == key
    assert stat.S_IMODE((ledger.folder(paths) / ledger.SECRET).stat().st_mode) == 0o600
    assert ledger.secret(Paths(tmp_path / "other")) != key, "another home, another key"


def test_with_a_pseudonym_key_every_home_makes_the_same_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("PENSTAT_PSEUDONYM_KEY", "organisation-key-0123456789")
    one, two = ledger.secret(Paths(tmp_path / "a")), ledger.secret(Paths(tmp_path / "b"))
    assert one == two and len(one) == 32
    assert b"organisation-key" not in one  # derived, not the key itself
    assert not (ledger.folder(Paths(tmp_path / "a")) / ledger.SECRET).exists()
    monkeypatch.setenv("PENSTAT_PSEUDONYM_KEY", "another-organisation-key-987")
    assert ledger.secret(Paths(tmp_path / "a")) != one


def _dead_pid() -> int:
    import subprocess
    import sys

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)


def test_a_dead_publishers_cells_are_merged_only_if_their_version_became_current(tmp_path):
    import os

    paths = Paths(tmp_path)
    con = duckdb.connect()
    folder = ledger.folder(paths)
    folder.mkdir(parents=True)
    dead = _dead_pid()
    for version, key in (("v1", "day|F|1"), ("v0", "day|F|2")):
        con.execute(f"COPY (SELECT '{key}' AS key, 7.0 AS value) TO "
                    f"'{folder / f'pending-{dead}.{version}.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT 'day|F|3' AS key, 1.0 AS value) TO "
                f"'{folder / f'pending-{dead}.parquet'}' (FORMAT parquet)")  # never promised
    live = os.getppid()  # alive: another publisher at work
    con.execute(f"COPY (SELECT 'day|F|4' AS key, 1.0 AS value) TO "
                f"'{folder / f'pending-{live}.v1.parquet'}' (FORMAT parquet)")
    handled = ledger.recover(paths, "v1")
    assert sorted(handled) == sorted([f"pending-{dead}.v1.parquet", f"pending-{dead}.v0.parquet",
                                      f"pending-{dead}.parquet"])
    ledger.read(con, paths)
    assert dict(con.execute("SELECT key, value FROM ledger").fetchall()) == {"day|F|1": 7.0}
    assert [p.name for p in folder.glob("pending-*")] == [f"pending-{live}.v1.parquet"]


def test_promised_cells_are_committed_by_their_own_publisher(tmp_path):
    paths = Paths(tmp_path)
    con = duckdb.connect()
    con.execute("CREATE TABLE cells AS SELECT 'day|F|1' AS key, 7.0 AS value")
    ledger.stage(con, paths, "cells")
    ledger.promise(paths, "2026-11-30T00:00:00Z-abcd")
    assert not ledger.pending(paths).exists()
    assert ledger.commit(paths) == 1
    assert not list(ledger.folder(paths).glob("pending-*"))


def test_a_withheld_cell_keeps_its_value_then_readable_by_its_owner_only(tmp_path):
    """A withheld cell's value then is kept (the facts published beside it name it), so
    the ledger, its folder and the pending cells are the owner's alone."""
    paths = Paths(tmp_path)
    con = duckdb.connect()
    con.execute("CREATE TABLE cells AS SELECT * FROM (VALUES ('day|F|1', NULL, 3.0), "
                "('day|F|2', 20.0, NULL)) t(key, value, withheld_value)")
    ledger.stage(con, paths, "cells")
    assert stat.S_IMODE(ledger.pending(paths).stat().st_mode) == 0o600
    assert ledger.commit(paths) == 2
    assert stat.S_IMODE(ledger.ledger_path(paths).stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger.folder(paths).stat().st_mode) == 0o700
    ledger.read(con, paths)
    assert sorted(con.execute("SELECT key, value, withheld_value FROM ledger").fetchall()) == [
        ("day|F|1", None, 3.0), ("day|F|2", 20.0, None)]
    # published the next time: the value withheld then goes with the row it was on
    con.execute("CREATE TABLE v2 AS SELECT 'day|F|1' AS key, 4.0 AS value")
    ledger.write(con, paths, "v2")
    ledger.read(con, paths)
    assert con.execute("SELECT value, withheld_value FROM ledger WHERE key = 'day|F|1'"
                       ).fetchall() == [(4.0, None)]


def test_a_ledger_written_before_the_values_withheld_reads_them_as_unknown(tmp_path):
    """A ledger (or a dead publisher's pending cells) of an earlier version has no
    withheld_value: it reads, merges and recovers with NULL there."""
    paths = Paths(tmp_path)
    con = duckdb.connect()
    folder = ledger.folder(paths)
    folder.mkdir(parents=True)
    con.execute(f"COPY (SELECT * FROM (VALUES ('day|F|1', NULL::DOUBLE), ('day|F|2', 7.0)) "
                f"t(key, value)) TO '{ledger.ledger_path(paths)}' (FORMAT parquet)")
    ledger.read(con, paths)
    assert sorted(con.execute("SELECT key, value, withheld_value FROM ledger").fetchall()) == [
        ("day|F|1", None, None), ("day|F|2", 7.0, None)]
    dead = _dead_pid()
    con.execute(f"COPY (SELECT 'day|F|3' AS key, 1.0 AS value) TO "
                f"'{folder / f'pending-{dead}.v1.parquet'}' (FORMAT parquet)")
    ledger.recover(paths, "v1")
    con.execute("CREATE TABLE v2 AS SELECT 'day|F|4' AS key, NULL::DOUBLE AS value, "
                "2.0 AS withheld_value")
    assert ledger.write(con, paths, "v2") == 4
    ledger.read(con, paths)
    assert sorted(con.execute("SELECT key, value, withheld_value FROM ledger").fetchall()) == [
        ("day|F|1", None, None), ("day|F|2", 7.0, None), ("day|F|3", 1.0, None),
        ("day|F|4", None, 2.0)]


def test_a_superseded_state_is_kept_with_the_vintages_it_held(tmp_path):
    """Each merge is a vintage. A key published with its state keeps the vintage that
    state began at; one published with another state starts a new one, and the old
    state stays in the history (the sums published then are facts about it)."""
    paths = Paths(tmp_path)
    con = duckdb.connect()
    states = [("v1", [("day|F|1", None, 3.0), ("month|F|m|1", 48.0, None)]),
              ("v2", [("day|F|1", None, 3.0), ("month|F|m|2", 70.0, None)]),
              ("v3", [("day|F|1", None, 4.0)]),
              ("v4", [("day|F|1", 6.0, None)])]
    keys = []
    for name, rows in states:
        con.execute(f"CREATE TABLE {name} (key VARCHAR, value DOUBLE, withheld_value DOUBLE)")
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?)", rows)
        keys.append(ledger.write(con, paths, name))
    assert keys == [2, 3, 3, 3]
    ledger.read(con, paths)
    assert sorted(con.execute("SELECT key, value, withheld_value, since, staged FROM ledger"
                              ).fetchall()) == [
        ("day|F|1", 6.0, None, 4, 4), ("month|F|m|1", 48.0, None, 1, 1),
        ("month|F|m|2", 70.0, None, 2, 2)]
    assert sorted(con.execute(f"SELECT key, value, withheld_value, since, staged, until "
                              f"FROM {ledger.HISTORY}").fetchall()) == [
        ("day|F|1", None, 3.0, 1, 2, 2), ("day|F|1", None, 4.0, 3, 3, 3)]
    # the file grows by the states superseded, not by the vintages: the same cells again
    ledger.write(con, paths, "v4")
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{ledger.ledger_path(paths)}')"
                      ).fetchall() == [(5,)]


def test_a_withheld_state_keeps_the_widest_protection_it_had(tmp_path):
    """The same value withheld again with a smaller protection interval (its base grew
    over the minimum) keeps the interval it was withheld for."""
    paths = Paths(tmp_path)
    con = duckdb.connect()
    for need in (5.0, 0.0):
        con.execute(f"CREATE OR REPLACE TABLE v AS SELECT 'regime|work|F|m' AS key, "
                    f"NULL::DOUBLE AS value, 3.0 AS withheld_value, {need} AS withheld_need")
        ledger.write(con, paths, "v")
    ledger.read(con, paths)
    assert con.execute("SELECT withheld_need, since FROM ledger").fetchall() == [(5.0, 1)]


def test_a_dead_mergers_spill_folder_is_removed(tmp_path):
    paths = Paths(tmp_path)
    folder = ledger.folder(paths)
    dead = _dead_pid()
    (folder / f"spill-{dead}").mkdir(parents=True)
    (folder / f"spill-{dead}" / "x.tmp").write_bytes(b"3")
    ledger.recover(paths, None)
    assert not (folder / f"spill-{dead}").exists()
