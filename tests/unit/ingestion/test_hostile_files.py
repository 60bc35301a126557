"""Hostile delivery folders: read once, no links, bounded reads, corrections, names, key.

Each case delivers the hostile case, then (where it applies) a valid delivery of the
same feed, runs ingestion and shows: the hostile one quarantined with the rule named,
the valid one loaded, nothing outside PENSTAT_HOME created or changed
(tests/hostile.py `sealed`), no raw person identifier outside archive/ and
quarantine/.

- read once: the bytes loaded and archived are the bytes whose sha256 was checked,
  even when the inbox file is rewritten right after the check;
- links and special files: hard links, a symlinked manifest.json, FIFOs are refused,
  never followed or opened, and a file outside PENSTAT_HOME keeps its mode;
- bounded reads: a 5 MB manifest, a Parquet file (or CSV) holding far more rows than
  declared, stop early;
- corrections: `replaces` first, content second;
- archive names: `<id>+2` for a second copy, never another delivery's id;
- the pseudonym key: sixteen spaces or one repeated character are refused;
- the private scratch: inside PENSTAT_HOME, owner-only, DuckDB spills there, removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from penstat.contract.feeds import MANIFEST
from penstat.contract.layout import Paths
from penstat.core.secrets import MissingPseudonymKey, key_weakness
from penstat.ingestion import folder_checks, pipeline, typed_tables
from penstat.ingestion.pipeline import ingest_feed
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.conftest import TEST_KEY
from tests.hostile import oldest_first, sealed
from tests.reliability import find_identifiers, person_refs_in, private_modes

REFS = set(b.PERSON_REFS)
JAN = ("2024-01-01", "2024-01-31")





def query(paths: Paths, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def reason(location: str) -> dict:
    return json.loads((Path(location) / "_REJECTED.json").read_text(encoding="utf-8"))


def rules(location: str) -> set[str]:
    return {p["rule"] for p in reason(location)["problems"]}


def declare(folder: Path, name: str, **fields: object) -> None:
    """Change what manifest.json says of file `name` (the sender declared it so)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in manifest["files"]:
        if entry["name"] == name:
            entry.update(fields)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def no_identifier_outside_copies(paths: Paths) -> None:
    skip = (paths.archive, paths.quarantine, paths.inbox)
    assert find_identifiers(paths.home, REFS, skip=skip) == []


def then_valid(paths: Paths, feed: str, hostile: Path) -> list[pipeline.DeliveryOutcome]:
    """The hostile delivery, then a valid one of the same feed, in one run."""
    if feed == "recidivism":
        good = b.recidivism(paths.inbox, delivery_id="good")
    else:
        good = b.occupancy(paths.inbox, delivery_id="good", rows=b.occupancy_rows("2024-01-05"))
    oldest_first(hostile, good)
    outcomes = ingest_feed(feed, paths)
    assert [o.outcome for o in outcomes][1:] == ["loaded"], [o.summary() for o in outcomes]
    assert outcomes[1].delivery_id == "good"
    return outcomes


# --- read once --------------------------------------------------------------------

def test_a_file_rewritten_after_its_check_changes_nothing_loaded_or_archived(
        home, tmp_path, monkeypatch):
    """The sender (or anyone) rewrites the inbox file right after the checksum step:
    the rows loaded are the checked ones and the archive matches its manifest."""
    real = pipeline.take_checked_copies

    def check_then_rewrite(folder, manifest, copies):
        real(folder, manifest, copies)
        data = (folder / "occupancy.csv").read_bytes().replace(b",310,", b",999,")
        (folder / "occupancy.csv").write_bytes(data)  # same rows, other values

    monkeypatch.setattr(pipeline, "take_checked_copies", check_then_rewrite)
    with sealed(tmp_path, monkeypatch):
        folder = b.occupancy(home.inbox, delivery_id="occ-1")
        checked = (folder / "occupancy.csv").read_bytes()
        [out] = ingest_feed("occupancy", home)
    assert out.outcome == "loaded"
    assert query(home, "SELECT population FROM raw.occupancy__occupancy "
                       "WHERE facility_id = 'TS-0001'") == [(310,)]
    archived = Path(out.location)
    manifest = json.loads((archived / MANIFEST).read_text())
    for entry in manifest["files"]:
        data = (archived / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert (archived / "occupancy.csv").read_bytes() == checked


def test_the_checked_copies_and_spill_files_live_in_a_private_scratch_inside_home(
        home, tmp_path, monkeypatch):
    """Decoded copies of a cp1252 recidivism file (raw identifiers) are written inside
    PENSTAT_HOME/work, owner-only, never in $TMPDIR, and are gone after the run; DuckDB's
    temp_directory is there too."""
    seen: dict[str, object] = {}
    real = typed_tables._scan_encoding

    def spy(path, codec, out):
        scratch = Path(out).parents[2] if out else None
        con_dir = seen.setdefault("scratch", scratch)
        assert con_dir is not None
        for folder in (home.home / "work", scratch, Path(out).parent):
            seen.setdefault("modes", []).append(stat.S_IMODE(folder.stat().st_mode))
        return real(path, codec, out)

    monkeypatch.setattr(typed_tables, "_scan_encoding", spy)
    real_stage = pipeline.FeedIngestor._stage_and_check

    def record_temp_directory(self, con, copies, manifest):
        seen["temp_directory"] = con.execute(
            "SELECT current_setting('temp_directory')").fetchone()[0]
        return real_stage(self, con, copies, manifest)

    monkeypatch.setattr(pipeline.FeedIngestor, "_stage_and_check", record_temp_directory)
    dialect = {"delimiter": ";", "decimal": ",", "encoding": "cp1252"}
    a, bb, _ = b.PERSON_REFS
    releases = (b.RELEASES_HEADER.replace(",", ";") + "\r\n"
                + f"R1;{a};2020-01-05;TS-0001;0;M;1990;03;2;200\r\n").encode("cp1252")
    reconvictions = (b.RECONVICTIONS_HEADER.replace(",", ";") + "\r\n"
                     + f"C1;{bb};2020-05-01;2020-09-01;03;true\r\n").encode("cp1252")
    with sealed(tmp_path, monkeypatch):
        write_delivery(home.inbox, "recidivism", "rec-cp1252",
                       {"releases.csv": releases, "reconvictions.csv": reconvictions},
                       sender="TEST", created_at="2024-06-30T00:00:00Z", period=None,
                       dialect=dialect)
        [out] = ingest_feed("recidivism", home)
    assert out.outcome == "loaded", out.summary()
    scratch = seen["scratch"]
    assert scratch.parent == home.home / "work"
    assert set(seen["modes"]) == {0o700}
    assert str(seen["temp_directory"]).startswith(str(scratch))
    assert list((home.home / "work").iterdir()) == [], "removed after the run"
    no_identifier_outside_copies(home)
    assert private_modes(home.archive / "recidivism") == []


# --- links and special files ---------------------------------------------------------

def test_a_hard_link_to_a_file_outside_home_is_refused_and_its_mode_unchanged(
        home, tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with sealed(tmp_path, monkeypatch):
        folder = b.recidivism(home.inbox, delivery_id="rec-linked")
        victim = outside / "someone-elses.csv"
        os.replace(folder / "releases.csv", victim)
        os.chmod(victim, 0o644)
        os.link(victim, folder / "releases.csv")
        before = (victim.stat().st_mode, victim.read_bytes())
        outcomes = then_valid(home, "recidivism", folder)
    assert outcomes[0].outcome == "quarantined"
    assert "hard_link" in rules(outcomes[0].location)
    assert (victim.stat().st_mode, victim.read_bytes()) == before, \
        "quarantine did not chmod the shared inode"
    no_identifier_outside_copies(home)


def test_a_symlinked_manifest_is_refused_without_being_followed(home, tmp_path, monkeypatch):
    """The link points at a FIFO: following it would block the run forever."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.mkfifo(outside / "manifest.json")
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("manifest.json followed"))
    signal.alarm(60)
    try:
        with sealed(tmp_path, monkeypatch):
            folder = b.occupancy(home.inbox, delivery_id="occ-link")
            (folder / MANIFEST).unlink()
            (folder / MANIFEST).symlink_to(outside / "manifest.json")
            outcomes = then_valid(home, "occupancy", folder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert outcomes[0].outcome == "quarantined"
    assert any(p["rule"] == "symlink" and p["file"] == MANIFEST
               for p in reason(outcomes[0].location)["problems"])


@pytest.mark.parametrize("name", ["regime.csv", MANIFEST])
def test_a_fifo_in_a_delivery_is_refused_without_being_opened(name, home, tmp_path,
                                                              monkeypatch):
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("a FIFO was opened"))
    signal.alarm(60)
    try:
        with sealed(tmp_path, monkeypatch):
            folder = b.occupancy(home.inbox, delivery_id="occ-fifo")
            (folder / name).unlink(missing_ok=True)
            os.mkfifo(folder / name)
            outcomes = then_valid(home, "occupancy", folder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert outcomes[0].outcome == "quarantined"
    assert "special_file" in rules(outcomes[0].location)


# --- bounded reads ---------------------------------------------------------------------

def test_a_manifest_of_5_mb_is_refused_without_reading_it_whole(home, tmp_path, monkeypatch):
    with sealed(tmp_path, monkeypatch):
        folder = b.occupancy(home.inbox, delivery_id="occ-big",
                             manifest_overrides={"padding": "x" * (5 << 20)})
        outcomes = then_valid(home, "occupancy", folder)
    assert outcomes[0].outcome == "quarantined"
    assert rules(outcomes[0].location) == {"manifest_too_large"}


def _parquet_of(rows: int) -> bytes:
    """Occupancy rows, all alike: dictionary and run-length encoding make it tiny."""
    table = pa.table({
        "facility_id": pa.array(["TS-0001"] * rows).dictionary_encode(),
        "census_date": pa.array([pa.scalar(0, pa.date32()).as_py()] * rows, pa.date32()),
        **{c: pa.array([1] * rows, pa.int64())
           for c in ("places_out_of_use", "population", "population_female",
                     "population_remand", "population_under_18", "population_18_22",
                     "admissions", "releases")}})
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def test_a_small_parquet_file_holding_millions_of_rows_is_refused_from_its_metadata(
        home, tmp_path, monkeypatch):
    data = _parquet_of(3_000_000)
    assert len(data) < 200_000
    read_rows = []
    real = typed_tables._select_list

    def spy(spec, present, source_types):
        read_rows.append(spec.stem)
        return real(spec, present, source_types)

    monkeypatch.setattr(typed_tables, "_select_list", spy)
    with sealed(tmp_path, monkeypatch):
        folder = write_delivery(home.inbox, "occupancy", "occ-bomb",
                                {"occupancy.parquet": data}, sender="TEST",
                                created_at="2024-02-01T00:00:00Z", period=JAN)
        declare(folder, "occupancy.parquet", rows=1)
        started = time.monotonic()
        outcomes = then_valid(home, "occupancy", folder)
    assert outcomes[0].outcome == "quarantined"
    assert rules(outcomes[0].location) == {"row_count_mismatch"}
    assert read_rows == ["occupancy"], "only the valid delivery's rows were read"
    assert time.monotonic() - started < 60


def test_a_csv_file_with_more_rows_than_declared_stops_one_row_past_them(
        home, tmp_path, monkeypatch):
    created = []
    real = typed_tables._stage_csv

    def count_rows(con, path, entry, spec, dialect, work_dir, table):
        present = real(con, path, entry, spec, dialect, work_dir, table)
        created.append(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return present

    monkeypatch.setattr(typed_tables, "_stage_csv", count_rows)
    with sealed(tmp_path, monkeypatch):
        rows = [b.occupancy_rows("2024-01-02")[0]] * 200_000
        folder = b.occupancy(home.inbox, delivery_id="occ-long", rows=rows)
        declare(folder, "occupancy.csv", rows=2)
        outcomes = then_valid(home, "occupancy", folder)
    assert rules(outcomes[0].location) == {"row_count_mismatch"}
    assert "more than 2 data rows" in reason(outcomes[0].location)["message"]
    assert created[0] == 3, "reading stopped one row past the declared count"


# --- corrections: replaces first, content second -------------------------------------

def _with_population(value: int) -> list[str]:
    rows = b.occupancy_rows()
    rows[0] = rows[0].replace(",310,", f",{value},")
    return rows


def test_a_correction_with_the_bytes_of_an_earlier_delivery_is_loaded(home, tmp_path,
                                                                     monkeypatch):
    """A (310), B replaces A (305), C replaces B with A's bytes: C is a correction, so
    310 is in force again; sending C again is a re-send of C."""
    with sealed(tmp_path, monkeypatch):
        b.occupancy(home.inbox, delivery_id="occ-a")
        assert [o.outcome for o in ingest_feed("occupancy", home)] == ["loaded"]
        b.occupancy(home.inbox, delivery_id="occ-b", rows=_with_population(305),
                    replaces="occ-a")
        assert [o.outcome for o in ingest_feed("occupancy", home)] == ["loaded"]
        b.occupancy(home.inbox, delivery_id="occ-c", replaces="occ-b")
        assert [o.outcome for o in ingest_feed("occupancy", home)] == ["loaded"]
        b.occupancy(home.inbox, delivery_id="occ-c-again", replaces="occ-b")
        b.occupancy(home.inbox, delivery_id="occ-a-again")
        again = ingest_feed("occupancy", home)
    assert sorted((o.delivery_id, o.outcome) for o in again) == [
        ("occ-a-again", "resend_ignored"), ("occ-c-again", "resend_ignored")]
    in_force = query(home, """
        SELECT population, _delivery_id FROM raw.occupancy__occupancy
        WHERE facility_id = 'TS-0001'
        QUALIFY row_number() OVER (PARTITION BY facility_id, census_date
                                   ORDER BY _delivery_seq DESC) = 1""")
    assert in_force == [(310, "occ-c")]


# --- archive names -----------------------------------------------------------------

def test_archive_names_of_copies_never_collide_with_delivery_ids(home, tmp_path, monkeypatch):
    """`x`, a re-send of `x` (filed as `x+2`), then real deliveries `x.2` and `x-2`: each
    has its own folder; a folder named `x+2` in the inbox is not a delivery id."""
    with sealed(tmp_path, monkeypatch):
        b.occupancy(home.inbox, delivery_id="x")
        ingest_feed("occupancy", home)
        b.occupancy(home.inbox, delivery_id="x")  # the same delivery again
        [resent] = ingest_feed("occupancy", home)
        b.occupancy(home.inbox, delivery_id="x.2", rows=b.occupancy_rows("2024-01-02"))
        b.occupancy(home.inbox, delivery_id="x-2", rows=b.occupancy_rows("2024-01-03"))
        later = ingest_feed("occupancy", home)
        b.occupancy(home.inbox, delivery_id="x+2", rows=b.occupancy_rows("2024-01-04"))
        [fake] = ingest_feed("occupancy", home)
    assert (resent.outcome, Path(resent.location).name) == ("resend_ignored", "x+2")
    assert sorted((o.delivery_id, o.outcome, Path(o.location).name) for o in later) == [
        ("x-2", "loaded", "x-2"), ("x.2", "loaded", "x.2")]
    archive = home.archive / "occupancy"
    assert sorted(p.name for p in archive.iterdir()) == ["x", "x+2", "x-2", "x.2"]
    for folder in archive.iterdir():
        expected = folder.name.split("+")[0]
        assert json.loads((folder / MANIFEST).read_text())["delivery_id"] == expected
    assert fake.outcome == "quarantined" and rules(fake.location) == {"delivery_id"}
    assert Path(fake.location).parent == home.quarantine / "occupancy"


# --- the pseudonym key ---------------------------------------------------------------

@pytest.mark.parametrize("key", [" " * 16, "\t \n" * 8, "a" * 32, "short-key", ""])
def test_a_weak_pseudonym_key_is_refused_and_the_delivery_waits(key, home, tmp_path,
                                                               monkeypatch):
    with sealed(tmp_path, monkeypatch):
        folder = b.recidivism(home.inbox)
        monkeypatch.setenv("PENSTAT_PSEUDONYM_KEY", key)
        with pytest.raises(MissingPseudonymKey, match="PENSTAT_PSEUDONYM_KEY is not usable"):
            ingest_feed("recidivism", home)
        assert (folder / "releases.csv").is_file()
        assert not any(home.quarantine.glob("*/*"))
        monkeypatch.setenv("PENSTAT_PSEUDONYM_KEY", TEST_KEY)
        assert [o.outcome for o in ingest_feed("recidivism", home)] == ["loaded"]
    assert person_refs_in(home.archive) == REFS
    no_identifier_outside_copies(home)


def test_key_weakness_names_the_reason():
    assert "16" in key_weakness(" " * 16)
    assert "repeated" in key_weakness("x" * 20)
    assert key_weakness(" " * 4 + TEST_KEY) is None
    assert key_weakness(TEST_KEY) is None


def test_the_private_scratch_of_a_dead_run_is_removed_and_a_live_ones_kept(home):
    from penstat.core.processes import pid_alive
    from penstat.warehouse.session import SCRATCH_PREFIX, remove_dead_scratch

    work = home.work
    work.mkdir(mode=0o700, exist_ok=True)
    dead = next(p for p in range(2**22 - 1, 2**21, -1) if not pid_alive(p))
    (work / f"{SCRATCH_PREFIX}{dead}-abc").mkdir()
    (work / f"{SCRATCH_PREFIX}{dead}-abc" / "releases.csv").write_text("912345678\n")
    alive = work / f"{SCRATCH_PREFIX}{os.getppid()}-abc"
    alive.mkdir()
    assert remove_dead_scratch(work) == [f"{SCRATCH_PREFIX}{dead}-abc"]
    assert alive.is_dir()


def test_folder_checks_copy_through_a_descriptor_of_the_checked_file(home, tmp_path):
    """The copy is made from the opened file, checked with fstat: a regular file with
    one name. (A swap after the listing finds a link or a second name and is refused.)"""
    folder = b.occupancy(home.inbox, delivery_id="occ-1")
    os.link(folder / "occupancy.csv", tmp_path / "second-name.csv")
    manifest = pipeline.parse_manifest((folder / MANIFEST).read_bytes(), "occ-1", "occupancy")
    copies = tmp_path / "copies"
    copies.mkdir()
    with pytest.raises(folder_checks.DeliveryRejected) as rejected:
        folder_checks.take_checked_copies(folder, manifest, copies)
    assert rejected.value.problems[0].rule == "hard_link"
    assert list(copies.iterdir()) == []
