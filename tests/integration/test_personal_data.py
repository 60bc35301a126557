"""Personal data: raw person_ref values are nowhere but in the owner-only delivery copies.

A run with valid and rejected recidivism deliveries (a malformed person_ref, a
file sent without its header so its first record lands where the header
should be, a duplicate key, an unclosed quote, a resend), every log line of
the process written to a file under PENSTAT_HOME, then the dbt build and a
publication. Every file under PENSTAT_HOME is scanned (byte for byte, and value
by value for DuckDB and Parquet files, which compress) for the raw identifiers:
the warehouse, its WAL, the logs, dbt's target and logs, Great Expectations'
validation results and Data Docs, the publications, and the quarantine reasons.
The one exception, by design and documented in docs/operations.md, are the
archived and quarantined copies of the deliveries themselves, which must be
owner-only (folders 0700, files 0600).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import duckdb
import pytest

from penstat.core.secrets import MissingPseudonymKey
from penstat.ingestion.pipeline import ingest_feed
from penstat.ingestion.pseudonymise import pseudonymise
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.conftest import TEST_KEY
from tests.reliability import (
    build_and_publish,
    find_identifiers,
    ingest_all,
    penstat_home,
    person_refs_in,
    private_modes,
    write_baseline,
)

A, B_, C = b.PERSON_REFS
MALFORMED = "98765432"  # 8 digits: rejected, and never quoted back
HEADERLESS = ("911111111", "922222222")
UNCLOSED = "933333333"
ALL_REFS = {*b.PERSON_REFS, MALFORMED, *HEADERLESS, UNCLOSED}


def bad_deliveries(inbox):
    b.recidivism(inbox, delivery_id="rec-malformed",
                 releases=[f"R5,{MALFORMED},2021-01-05,TS-0001,0,M,1990,03,2,200"],
                 reconvictions=[f"C5,{A},2021-05-01,2021-09-01,03,true"])
    h1, h2 = HEADERLESS
    write_delivery(inbox, "recidivism", "rec-headerless", {
        "releases.csv": (f"R6,{h1},2021-01-05,TS-0001,0,M,1990,03,2,200\n"
                         f"R7,{h2},2021-02-05,TS-0001,0,F,1992,03,0,100\n").encode(),
        "reconvictions.csv": b.csv(b.RECONVICTIONS_HEADER,
                                   [f"C6,{h1},2021-05-01,2021-09-01,03,true"])},
        sender="TEST", created_at="2024-06-30T00:00:00Z", period=None)
    b.recidivism(inbox, delivery_id="rec-duplicate",
                 releases=[f"R1,{C},2020-01-05,TS-0001,0,M,1990,03,2,200"],
                 reconvictions=[f"C8,{C},2021-05-01,2021-09-01,03,true"])
    folder = b.recidivism(inbox, delivery_id="rec-unclosed",
                          releases=[f"R9,{B_},2021-01-05,TS-0001,0,M,1990,03,2,200"],
                          reconvictions=[f"C9,{B_},2021-05-01,2021-09-01,03,true"])
    # a quote that is never closed, in the row holding the identifier (sha256 updated)
    data = (folder / "releases.csv").read_bytes().replace(f"R9,{B_}".encode(),
                                                          f'R9,"{UNCLOSED}'.encode())
    (folder / "releases.csv").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    b.recidivism(inbox, delivery_id="rec-resent")  # byte-identical to rec-1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("personal") / "home"
    with penstat_home(home) as paths:
        log_file = paths.logs / "everything.log"
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        root = logging.getLogger()
        previous = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            write_baseline(paths)
            ingest_all()
            bad_deliveries(paths.inbox)
            outcomes = {o.delivery_id: o for o in ingest_feed("recidivism", paths)}
            publication = build_and_publish()
        finally:
            root.removeHandler(handler)
            root.setLevel(previous)
            handler.close()
        yield paths, outcomes, publication, log_file


def test_the_run_did_what_the_scan_relies_on(run):
    paths, outcomes, publication, log_file = run
    assert {k: o.outcome for k, o in outcomes.items()} == {
        "rec-malformed": "quarantined", "rec-headerless": "quarantined",
        "rec-duplicate": "quarantined", "rec-unclosed": "quarantined",
        "rec-resent": "resend_ignored"}
    assert publication["marts"]["mart_recidivism_cohort"]["rows"] > 0
    text = log_file.read_text()
    assert "quarantined recidivism/rec-unclosed" in text and "dbt build" in text, \
        "the log captured the whole run"
    assert person_refs_in(paths.archive) >= set(b.PERSON_REFS)
    assert person_refs_in(paths.quarantine) >= {MALFORMED, B_, C}


def test_no_raw_identifier_anywhere_under_penstat_home(run):
    paths, *_ = run
    copies = tuple(p for p in (paths.archive / "recidivism").iterdir()) + \
        tuple(p for p in (paths.quarantine / "recidivism").iterdir())
    # the delivery copies are the documented exception; their _REJECTED reasons are not
    reasons = [p / name for p in copies for name in ("_REJECTED.json", "_REJECTED.txt")
               if (p / name).is_file()]
    assert len(reasons) == 8
    skip = tuple(p / f for p in copies for f in os.listdir(p)
                 if not f.startswith("_REJECTED"))
    scanned = [p for p in paths.home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in scanned)
    assert any("data_docs" in str(p) for p in scanned)
    assert any(p.suffix == ".parquet" for p in scanned)
    assert find_identifiers(paths.home, ALL_REFS, skip=skip) == []


def test_the_warehouse_holds_the_keyed_hash_only(run):
    paths, *_ = run
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        stored = {r[0] for r in con.execute(
            "SELECT person_pseudonym FROM raw.recidivism__releases UNION "
            "SELECT person_pseudonym FROM raw.recidivism__reconvictions").fetchall()}
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw' "
            "AND table_name LIKE 'recidivism%'").fetchall()}
    finally:
        con.close()
    assert stored == {pseudonymise(r, TEST_KEY.encode()) for r in b.PERSON_REFS}
    assert "person_ref" not in columns


def test_delivery_copies_of_person_level_feeds_are_owner_only(run):
    paths, *_ = run
    for root in (paths.archive / "recidivism", paths.quarantine / "recidivism"):
        assert private_modes(root) == []
    # other feeds are not personal: the operator's group may read them
    assert (paths.archive / "facility_register" / "reg-1").stat().st_mode & 0o077


def test_no_key_no_ingestion_of_person_level_data(tmp_path):
    with penstat_home(tmp_path / "home") as paths:  # restores the environment afterwards
        del os.environ["PENSTAT_PSEUDONYM_KEY"]
        b.register(paths.inbox)
        ingest_feed("facility_register", paths)
        b.recidivism(paths.inbox)
        before = paths.warehouse.read_bytes()
        with pytest.raises(MissingPseudonymKey):
            ingest_feed("recidivism", paths)
        os.environ["PENSTAT_PSEUDONYM_KEY"] = "too-short"
        with pytest.raises(MissingPseudonymKey):
            ingest_feed("recidivism", paths)
        assert paths.warehouse.read_bytes() == before
        assert (paths.inbox / "recidivism" / "rec-1" / "releases.csv").is_file()


def test_the_scan_finds_identifiers_where_they_are(run, tmp_path):
    """The scanner is not vacuous: plain, DuckDB-compressed and Parquet copies are found."""
    paths, *_ = run
    assert find_identifiers(paths.archive / "recidivism", ALL_REFS)
    con = duckdb.connect(str(tmp_path / "probe.duckdb"))
    con.execute(f"CREATE TABLE t AS SELECT '{A}' || '' AS ref FROM range(100000)")
    con.execute(f"COPY t TO '{tmp_path / 'probe.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    con.close()
    hits = find_identifiers(tmp_path, ALL_REFS)
    assert any("probe.duckdb main.t" in h for h in hits)
    assert any("probe.parquet" in h for h in hits)
