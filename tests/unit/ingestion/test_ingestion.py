"""Ingestion through the real path: manifest, DuckDB readers, GX delivery suite, ledger."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import duckdb
import pytest

from penstat.core.secrets import MissingPseudonymKey
from penstat.ingestion.pipeline import ingest_feed
from penstat.ingestion.pseudonymise import pseudonymise
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.conftest import TEST_KEY


def rows(paths, sql):
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def reason(paths, feed, delivery_id):
    return json.loads((paths.quarantine / feed / delivery_id / "_REJECTED.json").read_text())


def file_digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_valid_deliveries_load_with_metadata_ledger_and_archive(paths):
    b.register(paths.inbox)
    b.occupancy(paths.inbox)
    [reg] = ingest_feed("facility_register", paths)
    [occ] = ingest_feed("occupancy", paths)
    assert (reg.outcome, reg.rows) == ("loaded", 4)
    assert (occ.outcome, occ.rows) == ("loaded", 3)
    loaded = rows(paths, "SELECT facility_id, population, _delivery_id, _file, _row "
                         "FROM raw.occupancy__occupancy ORDER BY _row")
    assert loaded == [("TS-0001", 310, "occ-1", "occupancy.csv", 1),
                      ("TS-0002", 18, "occ-1", "occupancy.csv", 2),
                      ("TS-0003", 100, "occ-1", "occupancy.csv", 3)]
    ledger = rows(paths, "SELECT feed, delivery_id, rows_loaded FROM meta.deliveries "
                         "ORDER BY delivery_seq")
    assert ledger == [("facility_register", "reg-1", 4), ("occupancy", "occ-1", 3)]
    assert (paths.archive / "occupancy" / "occ-1" / "occupancy.csv").is_file()
    assert not (paths.inbox / "occupancy" / "occ-1").exists()


def test_row_numbers_follow_the_file_order_on_a_large_file(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    days = [f"2023-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    body = [row for day in days for row in b.occupancy_rows(day)]
    b.occupancy(paths.inbox, rows=body, period=("2023-01-01", "2023-12-31"))
    [occ] = ingest_feed("occupancy", paths)
    assert occ.outcome == "loaded"
    got = rows(paths, "SELECT _row, facility_id, census_date::VARCHAR "
                      "FROM raw.occupancy__occupancy")
    expected = {(i + 1, r.split(",")[0], r.split(",")[1]) for i, r in enumerate(body)}
    assert set(got) == expected


def test_invalid_delivery_is_quarantined_whole_with_file_row_column_rule(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    before = file_digest(paths.warehouse)
    bad = b.occupancy_rows()
    bad[1] = "TS-0002,2024-01-01,0,18,25,0,0,3,1,0"  # female (25) > population (18)
    folder = b.occupancy(paths.inbox, delivery_id="occ-bad", rows=bad)
    original = {p.name: file_digest(p) for p in folder.iterdir()}
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined"
    why = reason(paths, "occupancy", "occ-bad")
    [problem] = why["problems"]
    assert problem["file"] == "occupancy.csv"
    assert problem["row"] == 2
    assert problem["column"] == "population_female, population"
    assert problem["rule"] == "exceeds_other_column"
    assert problem["message"] == ("population_female must not be greater than population "
                                  "(contract: population >= population_female)")
    assert problem["value"] == "population_female=25, population=18"
    quarantined = paths.quarantine / "occupancy" / "occ-bad"
    assert {p.name: file_digest(p) for p in quarantined.iterdir()
            if not p.name.startswith("_REJECTED")} == original
    assert "row 2" in (quarantined / "_REJECTED.txt").read_text()
    assert rows(paths, "SELECT count(*) FROM raw.occupancy__occupancy") == [(0,)]
    assert file_digest(paths.warehouse) == before


@pytest.mark.parametrize(
    ("row", "rule", "column"),
    [
        ("TS-0009,2024-01-01,0,18,2,0,0,3,1,0", "unknown_facility", "facility_id"),
        ("TS-0001,2024-02-30,0,18,2,0,0,3,1,0", "date_exists", "census_date"),
        ("TS-0001,2024-01-01,-1,18,2,0,0,3,1,0", "non_negative", "places_out_of_use"),
        ("TS-0001,2024-01-01,0,eighteen,2,0,0,3,1,0", "type_int", "population"),
        ("TS-0001,2024-01-01,400,18,2,0,0,3,1,0", "out_of_use_exceeds_capacity",
         "places_out_of_use"),
        ("TS-0001,2024-01-01,0,5000,2,0,0,3,1,0", "population_implausible", "population"),
        (",2024-01-01,0,18,2,0,0,3,1,0", "required", "facility_id"),
    ],
)
def test_each_broken_rule_is_named(paths, row, rule, column):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    b.occupancy(paths.inbox, delivery_id="occ-bad", rows=[b.occupancy_rows()[0], row])
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined"
    problems = reason(paths, "occupancy", "occ-bad")["problems"]
    assert (rule, column, 2) in {(p["rule"], p.get("column"), p.get("row")) for p in problems}


def test_checksum_mismatch_is_quarantined(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    folder = b.occupancy(paths.inbox, delivery_id="occ-tampered")
    with open(folder / "occupancy.csv", "ab") as fh:
        fh.write(b"TS-0001,2024-01-02,0,1,0,0,0,0,0,0\n")
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined"
    [problem] = reason(paths, "occupancy", "occ-tampered")["problems"]
    assert (problem["rule"], problem["file"]) == ("checksum_mismatch", "occupancy.csv")


def test_byte_identical_resend_is_acknowledged_and_ignored(paths):
    b.register(paths.inbox)
    b.occupancy(paths.inbox, delivery_id="occ-1")
    ingest_feed("facility_register", paths)
    ingest_feed("occupancy", paths)
    b.occupancy(paths.inbox, delivery_id="occ-1-again")
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "resend_ignored"
    assert rows(paths, "SELECT count(*) FROM raw.occupancy__occupancy") == [(3,)]
    assert rows(paths, "SELECT outcome FROM meta.receipts WHERE delivery_id = 'occ-1-again'") \
        == [("resend_ignored",)]


def test_duplicate_key_needs_replaces_and_replaces_supersedes(paths):
    b.register(paths.inbox)
    b.occupancy(paths.inbox, delivery_id="occ-1")
    ingest_feed("facility_register", paths)
    ingest_feed("occupancy", paths)
    corrected = b.occupancy_rows()
    corrected[0] = corrected[0].replace(",310,", ",305,")
    b.occupancy(paths.inbox, delivery_id="occ-dup", rows=corrected)
    [dup] = ingest_feed("occupancy", paths)
    assert dup.outcome == "quarantined"
    assert dup.problems[0].rule == "duplicate_key"
    b.occupancy(paths.inbox, delivery_id="occ-fix", rows=corrected, replaces="occ-1")
    [fix] = ingest_feed("occupancy", paths)
    assert fix.outcome == "loaded"
    history = rows(paths, "SELECT _delivery_id, population FROM raw.occupancy__occupancy "
                          "WHERE facility_id = 'TS-0001' ORDER BY _delivery_seq")
    assert history == [("occ-1", 310), ("occ-fix", 305)]


def test_replaces_naming_an_unknown_delivery_is_rejected(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    b.occupancy(paths.inbox, delivery_id="occ-x", replaces="never-sent")
    [out] = ingest_feed("occupancy", paths)
    assert out.problems[0].rule == "replaces_unknown"


def test_feed_waits_in_the_inbox_until_a_register_is_loaded(paths):
    b.occupancy(paths.inbox)
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "deferred"
    assert (paths.inbox / "occupancy" / "occ-1" / "manifest.json").is_file()
    (paths.inbox / "occupancy" / "_READY").unlink()
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    assert (paths.inbox / "occupancy" / "_READY").exists(), "register load rings waiting feeds"
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "loaded"


def test_folder_without_manifest_is_left_alone(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    half = paths.inbox / "occupancy" / "occ-being-written"
    half.mkdir(parents=True)
    (half / "occupancy.csv").write_text("partial")
    assert ingest_feed("occupancy", paths) == []
    assert half.is_dir()


def test_european_dialect_semicolon_decimal_comma_cp1252_loads(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    header = b.REGIME_HEADER.replace(",", ";")
    text = header + "\r\nTS-0001;2024-01;305,5;120;40;200;6,25;12;9\r\n"
    data = text.encode("cp1252")
    write_delivery(paths.inbox, "occupancy", "occ-eu",
                   {"occupancy.csv": b.csv(b.OCCUPANCY_HEADER, b.occupancy_rows()).decode()
                    .replace(",", ";").encode("cp1252"), "regime.csv": data},
                   sender="TEST", created_at="2024-02-01T00:00:00Z",
                   period=("2024-01-01", "2024-01-31"),
                   dialect={"delimiter": ";", "decimal": ",", "encoding": "cp1252"})
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "loaded", out.problems
    assert rows(paths, "SELECT avg_population, avg_hours_out_of_cell FROM raw.occupancy__regime") \
        == [(305.5, 6.25)]


def test_person_ref_is_pseudonymised_before_anything_is_written(paths):
    b.register(paths.inbox)
    b.recidivism(paths.inbox)
    ingest_feed("facility_register", paths)
    [out] = ingest_feed("recidivism", paths)
    assert out.outcome == "loaded", out.problems
    stored = rows(paths, "SELECT person_pseudonym FROM raw.recidivism__releases ORDER BY _row")
    key = TEST_KEY.encode()
    assert [r[0] for r in stored] == [pseudonymise(p, key) for p in b.PERSON_REFS]
    raw = paths.warehouse.read_bytes()
    for ref in b.PERSON_REFS:
        assert ref.encode() not in raw
    archived = paths.archive / "recidivism" / "rec-1"
    assert stat.S_IMODE(os.stat(archived).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(archived / "releases.csv").st_mode) == 0o600


def test_person_ref_format_error_does_not_quote_the_identifier(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    b.recidivism(paths.inbox, releases=["R1,12345,2020-01-05,TS-0001,0,M,1990,03,2,200"],
                 reconvictions=["C1,12345,2020-05-01,2020-09-01,03,true"])
    [out] = ingest_feed("recidivism", paths)
    assert out.outcome == "quarantined"
    text = (paths.quarantine / "recidivism" / "rec-1" / "_REJECTED.json").read_text()
    assert "person_ref" in text and "format" in text
    assert "12345" not in text


def test_recidivism_refuses_to_run_without_a_key(paths, monkeypatch):
    monkeypatch.delenv("PENSTAT_PSEUDONYM_KEY")
    b.register(paths.inbox)
    b.recidivism(paths.inbox)
    ingest_feed("facility_register", paths)
    with pytest.raises(MissingPseudonymKey):
        ingest_feed("recidivism", paths)
    assert (paths.inbox / "recidivism" / "rec-1" / "releases.csv").is_file()


def test_path_traversal_in_delivery_id_is_rejected(paths):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    b.occupancy(paths.inbox, delivery_id="occ-2", manifest_overrides={"delivery_id": "../x"})
    [out] = ingest_feed("occupancy", paths)
    assert out.problems[0].rule == "delivery_id"
    assert not (paths.home / "x").exists()


def test_a_link_under_the_reason_name_is_kept_and_never_written_through(paths, tmp_path):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    folder = b.occupancy(paths.inbox, delivery_id="occ-link")
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    (folder / "_REJECTED.json").symlink_to(victim)
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined"
    assert out.problems[0].rule == "symlink"
    target = paths.quarantine / "occupancy" / "occ-link"
    assert (target / "_REJECTED.json").is_symlink(), "the sender's link is kept as it was"
    assert victim.read_text() == "not yours\n"
    why = json.loads((target / "_PENSTAT_REJECTED.json").read_text())
    assert why["problems"][0]["file"] == "_REJECTED.json"


def test_a_linked_delivery_folder_is_quarantined_without_writing_into_its_target(paths,
                                                                                tmp_path):
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    real = b.occupancy(tmp_path / "elsewhere", delivery_id="occ-real", ring=False)
    (paths.inbox / "occupancy" / "occ-real").symlink_to(real, target_is_directory=True)
    before = sorted(p.name for p in real.iterdir())
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined" and out.problems[0].rule == "delivery_id"
    assert sorted(p.name for p in real.iterdir()) == before
    holder = paths.quarantine / "occupancy" / "occ-real"
    assert (holder / "occ-real").is_symlink() and (holder / "_REJECTED.json").is_file()


def test_a_crash_between_reason_and_move_is_finished_by_the_next_run(paths):
    """The reason is written into the folder before the one rename to quarantine."""
    b.register(paths.inbox)
    ingest_feed("facility_register", paths)
    bad = b.occupancy_rows()
    bad[0] = bad[0].replace(",310,", ",-310,")
    folder = b.occupancy(paths.inbox, delivery_id="occ-bad", rows=bad)
    (folder / "_REJECTED.json").write_text("{}")  # left by a killed run
    (folder / "_REJECTED.txt").write_text("stale")
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined" and out.problems[0].rule == "non_negative"
    why = reason(paths, "occupancy", "occ-bad")
    assert why["problems"][0]["column"] == "population"
    good = b.occupancy(paths.inbox, delivery_id="occ-good")
    (good / "_REJECTED.txt").write_text("stale")  # a reason from a run that then changed
    [ok] = ingest_feed("occupancy", paths)
    assert ok.outcome == "loaded"
    assert not (paths.archive / "occupancy" / "occ-good" / "_REJECTED.txt").exists()


def test_large_deliveries_are_validated_in_batches_with_the_same_verdicts(paths, monkeypatch):
    """Above penstat.validation.runner.BATCH_ROWS rows a file is validated in key-hashed batches
    (bounded memory): valid files still load, and a bad row in any batch is still
    named by file, row, column and rule."""
    import penstat.validation.runner

    monkeypatch.setattr(penstat.validation.runner, "BATCH_ROWS", 1)  # every row its own batch
    b.register(paths.inbox)
    b.recidivism(paths.inbox)  # releases and reconvictions: keys with a person_ref
    ingest_feed("facility_register", paths)
    [out] = ingest_feed("recidivism", paths)
    assert out.outcome == "loaded", out.problems
    bad = b.occupancy_rows()
    bad[2] = "TS-0003,2024-01-01,5,100,108,60,0,12,4,5"  # female (108) > population (100)
    b.occupancy(paths.inbox, delivery_id="occ-bad", rows=bad)
    [out] = ingest_feed("occupancy", paths)
    assert out.outcome == "quarantined"
    problems = reason(paths, "occupancy", "occ-bad")["problems"]
    assert [(p["row"], p["rule"]) for p in problems] == [(3, "exceeds_other_column")]
