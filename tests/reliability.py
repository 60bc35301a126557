"""Shared helpers of the reliability tests (corpus, resend, crash, concurrency, personal data).

A small but complete PENSTAT_HOME (tests/builders.py deliveries on all four
feeds, ingested, built with dbt and published), fingerprints of the warehouse
and of a publication, and the check that a publication is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from penstat.contract.feeds import FEEDS, raw_table_name
from penstat.contract.layout import Paths
from penstat.contract.published import PIPELINE_MART_COLUMNS
from penstat.core.env import scoped_env
from penstat.senders.synthetic.periods import history_until
from tests import builders as b
from tests.conftest import TEST_KEY

V1_FEEDS = ("facility_register", "occupancy", "staffing", "recidivism")
MARTS = tuple(PIPELINE_MART_COLUMNS)  # the marts the v1 feeds fill


@dataclass(frozen=True)
class RunDay:
    """A test run's day: its generated history ends the day before (UTC), so nothing is
    late while the run day is still today. Taken when a stack starts, not when a module
    is collected (`make test` collects the e2e modules some 20 minutes before they run,
    maybe on the day before)."""

    until: date

    @classmethod
    def today(cls) -> RunDay:
        return cls(history_until())

    @property
    def day(self) -> date:
        return self.until + timedelta(days=1)

    def still_today(self) -> bool:
        """False past midnight: then the run day's feeds fall due, a true lateness."""
        return history_until() == self.until


@contextmanager
def penstat_home(home: Path) -> Iterator[Paths]:
    """PENSTAT_HOME and the throwaway key set for the body (task bodies read the env)."""
    with scoped_env(PENSTAT_HOME=str(home), PENSTAT_PSEUDONYM_KEY=TEST_KEY):
        paths = Paths.from_env()
        paths.ensure()
        yield paths


def write_baseline(paths: Paths) -> list[str]:
    """One valid delivery per feed (builders' defaults); returns feed/delivery_id."""
    b.register(paths.inbox)
    b.occupancy(paths.inbox, delivery_id="occ-base")
    b.staffing(paths.inbox)
    b.recidivism(paths.inbox)
    return ["facility_register/reg-1", "occupancy/occ-base", "staffing/stf-1",
            "recidivism/rec-1"]


def ingest_all(feeds=V1_FEEDS) -> list[dict]:
    from penstat.orchestration import tasks

    return [o for feed in feeds for o in tasks.ingest(feed)]


def build_and_publish() -> dict:
    from penstat.orchestration import tasks

    tasks.build_marts()
    return tasks.gate_and_publish()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (links as their target, files as their sha256)."""
    out = {}
    if not folder.exists() and not folder.is_symlink():
        return out
    if folder.is_symlink():
        out["."] = "link:" + os.readlink(folder)
        folder = folder.resolve()
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = sha256_file(p)
    return out


def published_fingerprint(paths: Paths) -> dict[str, str]:
    return tree_digest(paths.current_publication)


def warehouse_state(path: Path) -> dict:
    """What must converge after crashes: ledger, raw rows, builds seen, marts content.

    Load times, and the order in which deliveries of different feeds got their
    sequence numbers, are left out; everything else is compared exactly.
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        ledger = con.execute(
            "SELECT feed, delivery_id, sender, created_at, period_start, period_end, replaces, "
            "manifest_sha256, content_sha256, rows_loaded FROM meta.deliveries "
            "ORDER BY feed, delivery_id").fetchall()
        per_feed_order = con.execute(
            "SELECT feed, list(delivery_id ORDER BY delivery_seq) FROM meta.deliveries "
            "GROUP BY feed ORDER BY feed").fetchall()
        raw = {}
        for feed in V1_FEEDS:
            for spec in FEEDS[feed].files:
                table = raw_table_name(feed, spec.stem)
                cols = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall()
                        if c[0] not in ("_loaded_at", "_delivery_seq")]
                select = ", ".join(f'"{c}"' for c in cols)
                raw[table] = con.execute(
                    f"SELECT count(*), md5(string_agg(CAST(({select}) AS VARCHAR), '|' "
                    f"ORDER BY {select})) FROM {table}").fetchone()
        receipts = sorted(set(con.execute(
            "SELECT feed, delivery_id, outcome FROM meta.receipts").fetchall()))
        marts = {}
        for mart in MARTS:
            try:
                marts[mart] = con.execute(
                    f"SELECT count(*), md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY "
                    f"CAST(t AS VARCHAR))) FROM marts.{mart} t").fetchone()
            except duckdb.CatalogException:
                marts[mart] = None
        return {"ledger": ledger, "order": per_feed_order, "raw": raw, "receipts": receipts,
                "marts": marts}
    finally:
        con.close()


def check_publication(folder: Path) -> dict:
    """Assert `folder` (a version, or `current`) is one complete publication; its manifest."""
    folder = Path(os.path.realpath(folder))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["validation"]["success"] is True
    assert folder.name == manifest["version"]
    con = duckdb.connect(str(folder / "published.duckdb"), read_only=True)
    try:
        for mart, info in manifest["marts"].items():
            assert sha256_file(folder / f"{mart}.parquet") == info["sha256"], mart
            rows = con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
            assert rows == info["rows"], (mart, rows, info["rows"])
    finally:
        con.close()
    return manifest


# --- personal data -----------------------------------------------------------------

_DIGITS = re.compile(rb"[0-9]{6,}")


def _hits_in_text(data: bytes, refs: set[str]) -> set[str]:
    return {m.decode() for m in _DIGITS.findall(data)} & refs


def _hits_in_duckdb(path: Path, refs: set[str], parquet: bool = False) -> list[str]:
    """Every value of every table (or of the Parquet file), compressed or not."""
    found = []
    con = duckdb.connect(":memory:")
    try:
        if parquet:
            sources = [(path.name, f"read_parquet('{path}')")]
        else:
            con.execute(f"ATTACH '{path}' AS scanned (READ_ONLY)")
            sources = [(f"{s}.{t}", f'scanned."{s}"."{t}"') for s, t in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = 'scanned'").fetchall()]
        for name, source in sources:
            digits = {r[0] for r in con.execute(
                f"SELECT DISTINCT unnest(regexp_extract_all(CAST(t AS VARCHAR), '[0-9]{{6,}}')) "
                f"FROM {source} t").fetchall()}
            found += [f"{name}: {ref}" for ref in sorted(digits & refs)]
    finally:
        con.close()
    return found


def find_identifiers(root: Path, refs: set[str], skip: tuple[Path, ...] = ()) -> list[str]:
    """Places under `root` holding any of `refs` (raw person identifiers).

    Text and binary files are scanned byte for byte; DuckDB and Parquet files are
    also read value by value, because they compress what they store.
    """
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or any(path.is_relative_to(s) for s in skip):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits += [f"{path}: {ref}" for ref in sorted(_hits_in_text(data, refs))]
            if name.endswith(".duckdb"):
                hits += [f"{path} {h}" for h in _hits_in_duckdb(path, refs)]
            elif name.endswith(".parquet"):
                hits += [f"{path} {h}" for h in _hits_in_duckdb(path, refs, parquet=True)]
    return hits


def person_refs_in(folder: Path) -> set[str]:
    """The raw person_ref values of the person-level files under `folder` (archive copies)."""
    import csv as _csv

    refs = set()
    for path in folder.rglob("*.csv"):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for row in _csv.DictReader(fh):
                if row.get("person_ref"):
                    refs.add(row["person_ref"])
    return refs


def private_modes(folder: Path) -> list[str]:
    """Entries under `folder` (included) that are not owner-only (0700 / 0600)."""
    wrong = []
    for dirpath, dirs, files in os.walk(folder):
        for p in [Path(dirpath)] + [Path(dirpath) / d for d in dirs]:
            if not p.is_symlink() and (p.stat().st_mode & 0o777) != 0o700:
                wrong.append(f"{p} {oct(p.stat().st_mode & 0o777)}")
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink() and (p.stat().st_mode & 0o777) != 0o600:
                wrong.append(f"{p} {oct(p.stat().st_mode & 0o777)}")
    return sorted(set(wrong))


# --- readers -----------------------------------------------------------------------

class PublicationReader(threading.Thread):
    """A dashboard in a loop: resolve `current` once, read that version, check it whole."""

    def __init__(self, paths: Paths, pause: float = 0.1):
        super().__init__(daemon=True)
        self.paths, self.pause = paths, pause
        self.reads, self.failures, self.versions = 0, [], set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            if os.path.lexists(self.paths.current_publication):
                version = os.path.realpath(self.paths.current_publication)
                try:
                    manifest = check_publication(Path(version))
                    self.reads += 1
                    self.versions.add(manifest["version"])
                except Exception as exc:  # every failure is reported
                    self.failures.append(f"{version}: {type(exc).__name__}: {exc}")
            self._halt.wait(self.pause)

    def stop(self) -> PublicationReader:
        self._halt.set()
        self.join(timeout=60)
        return self


def publication_differences(a: Path, b: Path) -> list[str]:
    """Where two publications of the same deliveries disagree, beyond disclosure control.

    Which cells disclosure control withholds depends on what a home published before
    (vintages: a value withheld once stays withheld) and on the home's keyed choice of
    secondary cells, so two homes may withhold different cells of the same data. They
    must hold the same keys in every mart, and every value published in both must be
    equal; a value published in one only must be withheld (flag `c`) in the other.
    """
    from penstat.contract.published import MART_COLUMNS, MART_KEYS

    problems = []
    con = duckdb.connect()
    try:
        for mart, columns in MART_COLUMNS.items():
            keys = MART_KEYS[mart]
            on = " AND ".join(f'x."{k}" IS NOT DISTINCT FROM y."{k}"' for k in keys)
            pa, pb = a / f"{mart}.parquet", b / f"{mart}.parquet"
            unmatched = con.execute(
                f"SELECT (SELECT count(*) FROM '{pa}' x ANTI JOIN '{pb}' y ON {on}), "
                f"(SELECT count(*) FROM '{pb}' x ANTI JOIN '{pa}' y ON {on})").fetchone()
            if unmatched != (0, 0):
                problems.append(f"{mart}: keys only in one publication {unmatched}")
            flags = {c for c in columns if c == "flag" or c.endswith("_flag")}
            for c in columns:
                if c in keys or c in flags:
                    continue
                f = f"{c}_flag" if f"{c}_flag" in columns else ("flag" if "flag" in columns
                                                                 else None)

                def withheld(side: str, c=c, f=f) -> str:
                    if f is None:
                        return "false"
                    return f"({side}.\"{c}\" IS NULL AND coalesce({side}.\"{f}\", '') LIKE '%c%')"
                n = con.execute(
                    f"SELECT count(*) FROM '{pa}' x JOIN '{pb}' y ON {on} "
                    f'WHERE x."{c}" IS DISTINCT FROM y."{c}" '
                    f"AND NOT {withheld('x')} AND NOT {withheld('y')}").fetchone()[0]
                if n:
                    problems.append(f"{mart}.{c}: {n} published values differ")
    finally:
        con.close()
    return problems
