"""Hostile deliveries that used to crash ingestion: quarantined, and the feed goes on.

Once, only a broken contract rule (DeliveryRejected) quarantined a
delivery; any other exception aborted the run, left the delivery in the inbox and
crashed every later run on it, so no valid delivery of that feed was ever ingested
again. Each case here delivers the hostile case, then a valid delivery of the same
feed, and runs one ingest:

- the hostile one is quarantined with a readable reason naming its rule (or, for
  a failure of the machine, left pending and the run stopped with IngestionHalted),
- the valid one is loaded,
- nothing outside PENSTAT_HOME was created or changed (tests/hostile.py `sealed`),
- no raw person identifier is anywhere outside archive/ and quarantine/.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from penstat.contract.feeds import MANIFEST
from penstat.contract.layout import Paths
from penstat.ingestion import pipeline
from penstat.ingestion.pipeline import IngestionHalted, ingest_feed
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.hostile import oldest_first, sealed
from tests.reliability import find_identifiers

Writer = Callable[[Path], Path]  # inbox -> the hostile delivery folder
REFS = set(b.PERSON_REFS)


# --- the hostile deliveries ------------------------------------------------------

def _occupancy(inbox: Path, delivery_id: str = "bad", **kw) -> Path:
    return b.occupancy(inbox, delivery_id=delivery_id, rows=b.occupancy_rows("2024-01-02"),
                       **kw)


def _raw_manifest(text: str) -> Writer:
    """A valid occupancy delivery whose manifest.json is then replaced by `text`."""
    def write(inbox: Path) -> Path:
        folder = _occupancy(inbox)
        (folder / MANIFEST).write_text(text, encoding="utf-8")
        return folder
    return write


def _manifest_edit(**fields: object) -> Writer:
    def write(inbox: Path) -> Path:
        folder = _occupancy(inbox)
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest.update(fields)
        # ensure_ascii: a lone surrogate is written as its JSON escape \udcff
        (folder / MANIFEST).write_text(json.dumps(manifest), encoding="ascii")
        return folder
    return write


def _nested_manifest() -> str:
    depth = 200_000
    return '{"contract_version": "1", "nested": ' + "[" * depth + "]" * depth + "}"


def _huge_integer() -> str:
    return ('{"contract_version": "1", "feed": "occupancy", "files": [{"rows": '
            + "9" * 20_000 + "}]}")


def _surrogate_file_name(inbox: Path) -> Path:
    folder = _occupancy(inbox)
    with open(os.fsencode(folder) + b"/notes-\xff\xfe.csv", "wb") as fh:
        fh.write(b"an undecodable file name\n")
    return folder


def _surrogate_folder_name(inbox: Path) -> Path:
    folder = _occupancy(inbox, delivery_id="tmp", ring=False)
    hostile = Path(os.fsdecode(os.fsencode(folder.parent) + b"/occ-\xff\n2"))
    os.rename(folder, hostile)
    return hostile


def swap_file(folder: Path, name: str, data: bytes) -> None:
    """Replace a data file and declare its checksum: the sender sent these bytes."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in manifest["files"]:
        if entry["name"] == name:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _long_header_field(inbox: Path) -> Path:
    folder = _occupancy(inbox)
    header = b.OCCUPANCY_HEADER + "," + "x" * 300_000  # the csv module stops at 128 KB
    swap_file(folder, "occupancy.csv", b.csv(header, [b.occupancy_rows()[0] + ",1"]))
    return folder


def parquet_with_corrupt_page(rows: int = 2000) -> bytes:
    """A valid occupancy Parquet file (snappy pages), then bytes flipped in the middle
    of the data page of `population`: the footer and schema still read."""
    days = [date(2024, 1, 1) + timedelta(days=i % 28) for i in range(rows)]
    table = pa.table({
        "facility_id": ["TS-0001"] * rows, "census_date": days,
        **{c: pa.array([i % 50 for i in range(rows)], pa.int64())
           for c in ("places_out_of_use", "population", "population_female",
                     "population_remand", "population_under_18", "population_18_22",
                     "admissions", "releases")}})
    out = io.BytesIO()
    pq.write_table(table, out, compression="snappy", use_dictionary=False)
    data = bytearray(out.getvalue())
    chunk = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(3)
    middle = chunk.data_page_offset + chunk.total_compressed_size // 2
    for i in range(middle - 8, middle + 8):
        data[i] ^= 0xFF
    return bytes(data)


def _corrupt_parquet(inbox: Path) -> Path:
    return write_delivery(inbox, "occupancy", "bad",
                          {"occupancy.parquet": parquet_with_corrupt_page()},
                          sender="TEST", created_at="2024-02-01T00:00:00Z",
                          period=("2024-01-01", "2024-01-31"))


CASES: dict[str, tuple[Writer, str]] = {
    "nested_manifest": (_raw_manifest(_nested_manifest()), "manifest_json"),
    "huge_integer_in_manifest": (_raw_manifest(_huge_integer()), "manifest_json"),
    "created_at_year_9999_with_offset": (
        _manifest_edit(created_at="9999-12-31T23:30:00-05:00"), "manifest_timestamp"),
    "lone_surrogate_in_manifest_field": (_manifest_edit(sender="TEST \udcff"),
                                         "manifest_text"),
    "lone_surrogate_in_file_name": (_surrogate_file_name, "unlisted_file"),
    "lone_surrogate_and_newline_in_folder_name": (_surrogate_folder_name, "delivery_id"),
    "csv_header_field_over_the_csv_limit": (_long_header_field, "header"),
    "corrupt_parquet_page": (_corrupt_parquet, "parquet"),
}


# --- helpers ---------------------------------------------------------------------




def reason_of(location: str) -> tuple[dict, str]:
    target = Path(location)
    return (json.loads((target / "_REJECTED.json").read_text(encoding="utf-8")),
            (target / "_REJECTED.txt").read_text(encoding="utf-8"))


def assert_readable(reason: dict, text: str, rule: str) -> None:
    """The reason names the rule, is valid UTF-8, printable and short."""
    assert any(p["rule"] == rule for p in reason["problems"]), reason["problems"]
    assert f"[{rule}]" in text
    for line in text.splitlines():
        assert line.isprintable(), line
    assert len(text) < 5000 and len(json.dumps(reason)) < 10_000


def no_identifier_outside_copies(paths: Paths) -> None:
    """No raw person identifier under PENSTAT_HOME except the delivery copies."""
    skip = (paths.archive, paths.quarantine, paths.inbox)
    assert find_identifiers(paths.home, REFS, skip=skip) == []


def assert_scratch_gone(paths: Paths) -> None:
    work = paths.work
    assert not work.exists() or list(work.iterdir()) == [], list(work.iterdir())


# --- every hostile case: quarantined, and the next valid delivery loads ----------

@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_delivery_is_quarantined_and_the_next_one_loads(case, home, tmp_path,
                                                                  monkeypatch):
    write, rule = CASES[case]
    with sealed(tmp_path, monkeypatch):
        bad = write(home.inbox)
        good = b.occupancy(home.inbox, delivery_id="good", rows=b.occupancy_rows("2024-01-05"))
        oldest_first(bad, good)

        outcomes = ingest_feed("occupancy", home)

        assert [o.outcome for o in outcomes] == ["quarantined", "loaded"], \
            [o.summary() for o in outcomes]
        reason, text = reason_of(outcomes[0].location)
        assert_readable(reason, text, rule)
        assert outcomes[1].delivery_id == "good" and outcomes[1].rows == 3
        assert not bad.exists()
        assert [p.name for p in home.feed_inbox("occupancy").iterdir()] in ([], ["_READY"])
        assert_scratch_gone(home)


def test_a_failure_no_rule_foresaw_quarantines_with_unexpected_error(home, tmp_path,
                                                                    monkeypatch):
    """A bug of ours on one delivery (here: a ZeroDivisionError in a warehouse rule)
    sets that delivery aside with the exception's class; the feed goes on."""
    real = pipeline.warehouse_rule_problems
    calls = []

    def broken_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("division by zero in a rule")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "warehouse_rule_problems", broken_once)
    with sealed(tmp_path, monkeypatch):
        bad = _occupancy(home.inbox)
        good = b.occupancy(home.inbox, delivery_id="good", rows=b.occupancy_rows("2024-01-05"))
        oldest_first(bad, good)
        outcomes = ingest_feed("occupancy", home)
    assert [o.outcome for o in outcomes] == ["quarantined", "loaded"]
    reason, text = reason_of(outcomes[0].location)
    assert_readable(reason, text, "unexpected_error")
    assert "ZeroDivisionError: division by zero in a rule" in text


def test_an_unexpected_error_on_a_person_level_feed_quotes_no_value(home, tmp_path,
                                                                   monkeypatch):
    """The exception's message may quote a value: for a person-level feed only its class
    is given, and no identifier reaches the reason, the log or any file outside the
    delivery copies."""
    from penstat.ingestion import typed_tables

    real = typed_tables.stage_typed
    calls = []

    def leaking_once(con, staged, decimal):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError(f"could not convert {b.PERSON_REFS[0]}")
        return real(con, staged, decimal)

    monkeypatch.setattr(pipeline, "stage_typed", leaking_once)
    with sealed(tmp_path, monkeypatch):
        bad = b.recidivism(home.inbox, delivery_id="rec-bad")
        good = b.recidivism(home.inbox, delivery_id="rec-good")
        oldest_first(bad, good)
        outcomes = ingest_feed("recidivism", home)
    assert [o.outcome for o in outcomes] == ["quarantined", "loaded"]
    reason, text = reason_of(outcomes[0].location)
    assert_readable(reason, text, "unexpected_error")
    assert "ValueError" in text and b.PERSON_REFS[0] not in text + json.dumps(reason)
    no_identifier_outside_copies(home)


# --- failures of the machine: the delivery stays pending, the run stops ----------

def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from penstat.ingestion import folder_checks

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(folder_checks, "_copy_hashing", no_space)


def _out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*_args, **_kwargs):
        raise MemoryError
    monkeypatch.setattr(pipeline, "stage_text", exhausted)


MACHINE_FAILURES = {"disk_full": (_disk_full, "the disk is full"),
                    "out_of_memory": (_out_of_memory, "out of memory")}


@pytest.mark.parametrize("failure", sorted(MACHINE_FAILURES))
def test_a_failure_of_the_machine_leaves_the_delivery_pending(failure, home, tmp_path,
                                                              monkeypatch):
    make_it_fail, said = MACHINE_FAILURES[failure]
    with sealed(tmp_path, monkeypatch):
        folder = b.recidivism(home.inbox, delivery_id="rec-1")
        with monkeypatch.context() as broken:
            make_it_fail(broken)
            with pytest.raises(IngestionHalted, match=said):
                ingest_feed("recidivism", home)
        assert (folder / "releases.csv").is_file(), "left in the inbox"
        assert not any(home.quarantine.glob("*/*")), "not blamed on the delivery"
        assert_scratch_gone(home)
        no_identifier_outside_copies(home)
        [again] = ingest_feed("recidivism", home)  # the machine is fine again
        assert again.outcome == "loaded"


LOCK_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_warehouse_locked_by_another_writer_leaves_the_delivery_pending(home, tmp_path,
                                                                         monkeypatch):
    with sealed(tmp_path, monkeypatch):
        folder = _occupancy(home.inbox, delivery_id="occ-1")
        holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(home.warehouse)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            with pytest.raises(IngestionHalted, match="locked by another writer"):
                ingest_feed("occupancy", home)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        assert (folder / MANIFEST).is_file() and not any(home.quarantine.glob("*/*"))
        assert [o.outcome for o in ingest_feed("occupancy", home)] == ["loaded"]


def test_an_interrupt_is_never_swallowed_and_the_scratch_is_removed(home, tmp_path,
                                                                   monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt
    with sealed(tmp_path, monkeypatch):
        folder = b.recidivism(home.inbox, delivery_id="rec-1")
        with monkeypatch.context() as broken:
            broken.setattr(pipeline, "stage_text", interrupted)
            with pytest.raises(KeyboardInterrupt):
                ingest_feed("recidivism", home)
        assert (folder / MANIFEST).is_file() and not any(home.quarantine.glob("*/*"))
        assert_scratch_gone(home)
        assert [o.outcome for o in ingest_feed("recidivism", home)] == ["loaded"]


def test_a_failure_after_the_commit_is_completed_by_the_next_run(home, tmp_path, monkeypatch):
    """A committed delivery is never quarantined: a machine failure while archiving it
    stops the run, and the next run archives it from the ledger (no second load)."""
    from penstat.ingestion import folder_moves

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    with sealed(tmp_path, monkeypatch):
        folder = _occupancy(home.inbox, delivery_id="occ-1")
        with monkeypatch.context() as broken:
            broken.setattr(folder_moves, "archive", no_space)
            with pytest.raises(IngestionHalted):
                ingest_feed("occupancy", home)
        assert (folder / MANIFEST).is_file()
        [done] = ingest_feed("occupancy", home)
        assert (done.outcome, done.rows) == ("loaded", 3)
        con = duckdb.connect(str(home.warehouse), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM raw.occupancy__occupancy "
                               "WHERE _delivery_id = 'occ-1'").fetchone()[0] == 3
        finally:
            con.close()
