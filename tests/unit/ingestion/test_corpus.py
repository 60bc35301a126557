"""The bad-delivery corpus: every case through the real ingestion path (ingest_feed).

Each case starts from the same small but complete PENSTAT_HOME (one valid
delivery per feed, ingested, built with dbt and published once per module),
writes one unusual delivery into the inbox and runs ingestion on it.

- A valid-but-unusual delivery (BOM, CRLF, quoted newlines, Parquet, a
  declared European dialect, a reconviction before the release) loads.
- An invalid one is quarantined whole and byte-identical, with a reason that
  names the file, row, column (where they apply) and rule in the contract's
  own words; the warehouse file and `published/current` are byte-for-byte
  unchanged (a rejection never opens the warehouse for writing), and nothing
  of a person-level file (no person_ref, no value) is quoted back.

CASES below is the corpus; README "Reliability" quotes its size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from penstat.contract.feeds import FEEDS
from penstat.contract.layout import Paths
from penstat.core.config import Config
from penstat.ingestion.pipeline import ingest_feed
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.reliability import (
    build_and_publish,
    ingest_all,
    penstat_home,
    published_fingerprint,
    sha256_file,
    tree_digest,
    write_baseline,
)

Writer = Callable[[Path, Path], Path]  # (inbox, scratch) -> delivery folder

CREATED = "2024-02-01T00:00:00Z"
JAN = ("2024-01-01", "2024-01-31")
# Words a sender holding only the contract would not understand.
JARGON = ("expect_", "great expectations", "gx", "duckdb", "stage_", "select ", "traceback",
          "exception", "_row", "temp table", "sql", "catalog", "binder", "none")


@dataclass(frozen=True)
class Case:
    name: str
    feed: str
    write: Writer
    # (rule, file, row, column) that must be among the problems; None: the delivery loads.
    expect: tuple[str, str | None, int | None, str | None] | None
    config: dict | None = None  # overrides of config/penstat.toml sections


def _occ(rows: list[str], **kw) -> Writer:
    def write(inbox: Path, _scratch: Path) -> Path:
        return b.occupancy(inbox, delivery_id="case", rows=rows, **kw)
    return write


def occ_row(facility="TS-0001", day="2024-01-02", out_of_use="2", population="310",
            female="10", remand="50", u18="0", y18="20", adm="3", rel="2") -> str:
    return ",".join([facility, day, out_of_use, population, female, remand, u18, y18, adm, rel])


def _files(feed: str, files: dict[str, bytes], period=JAN, **kw) -> Writer:
    def write(inbox: Path, _scratch: Path) -> Path:
        return write_delivery(inbox, feed, "case", files, sender="TEST", created_at=CREATED,
                              period=period, **kw)
    return write


def _occ_csv(*rows: str, header: str = b.OCCUPANCY_HEADER, newline: str = "\n") -> bytes:
    return b.csv(header, list(rows), newline=newline)


def _then(write: Writer, change: Callable[[Path, Path], None]) -> Writer:
    """Write a valid delivery, then break it on disk (after the manifest was written)."""
    def wrapped(inbox: Path, scratch: Path) -> Path:
        folder = write(inbox, scratch)
        change(folder, scratch)
        return folder
    return wrapped


def _edit_manifest(edit: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def change(folder: Path, _scratch: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        edit(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return change


def _raw_manifest(text: bytes) -> Callable[[Path, Path], None]:
    def change(folder: Path, _scratch: Path) -> None:
        (folder / "manifest.json").write_bytes(text)
    return change


def _reg(rows: list[str], **kw) -> Writer:
    def write(inbox: Path, _scratch: Path) -> Path:
        return b.register(inbox, delivery_id="case", rows=rows, **kw)
    return write


def _stf(rows: list[str], **kw) -> Writer:
    def write(inbox: Path, _scratch: Path) -> Path:
        return b.staffing(inbox, delivery_id="case", rows=rows, **kw)
    return write


A, B_, C = b.PERSON_REFS
NEW_RELEASE = "R9,{ref},2022-03-01,TS-0001,0,M,1988,03,1,120"
NEW_RECONVICTION = "C9,{ref},2022-06-01,2022-09-01,03,true"


def _rec(releases: list[str] | None = None, reconvictions: list[str] | None = None,
         **kw) -> Writer:
    def write(inbox: Path, _scratch: Path) -> Path:
        return b.recidivism(inbox, delivery_id="case",
                            releases=releases or [NEW_RELEASE.format(ref=A)],
                            reconvictions=reconvictions or [NEW_RECONVICTION.format(ref=A)],
                            **kw)
    return write


def _symlink_file(folder: Path, scratch: Path) -> None:
    outside = scratch / "elsewhere.csv"
    shutil.copyfile(folder / "occupancy.csv", outside)
    (folder / "occupancy.csv").unlink()
    (folder / "occupancy.csv").symlink_to(outside)


def _linked_folder(inbox: Path, scratch: Path) -> Path:
    real = b.occupancy(scratch / "outside", delivery_id="case-link",
                       rows=[occ_row(day="2024-01-05")], ring=False)
    link = inbox / "occupancy" / "case-link"
    link.symlink_to(real, target_is_directory=True)
    return link


def _parquet(inbox: Path, scratch: Path) -> Path:
    path = scratch / "occ.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT 'TS-0003' AS facility_id, DATE '2024-01-06' AS census_date, "
        "1::BIGINT AS places_out_of_use, 99::BIGINT AS population, 7::BIGINT AS "
        "population_female, 50::BIGINT AS population_remand, 0::BIGINT AS "
        "population_under_18, 10::BIGINT AS population_18_22, 2::BIGINT AS admissions, "
        f"1::BIGINT AS releases) TO '{path}' (FORMAT parquet)")
    con.close()
    return _files("occupancy", {"occupancy.parquet": path.read_bytes()})(inbox, scratch)


EUROPEAN = {"delimiter": ";", "decimal": ",", "encoding": "cp1252"}
REGIME_ROW = "TS-0001,2024-01,305.5,120,40,200,6.25,12,9"


def _european(inbox: Path, scratch: Path) -> Path:
    occ = _occ_csv(occ_row(day="2024-01-07")).decode().replace(",", ";").encode("cp1252")
    regime = ("facility_id;month;avg_population;in_paid_work;in_education;with_digital_contact;"
              "avg_hours_out_of_cell;releases_total;releases_with_plan\r\n"
              "TS-0001;2024-01;305,5;120;40;200;6,25;12;9\r\n").encode("cp1252")
    return _files("occupancy", {"occupancy.csv": occ, "regime.csv": regime},
                  dialect=EUROPEAN)(inbox, scratch)


QUOTED_NEWLINE_REGISTER = [*b.REGISTER_ROWS[:3],
                           'TS-0003,"Remand centre\n""De Singel"", wing B",TS12,remand_centre,'
                           'medium,120,130,,false,2000-01-01,']


CP1252_ROW = "TS-0003,Gevangenis Tilburg,TS12,remand_centre,medium,120,130,,false,2000-01-01,"


def _replace_file(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    """Change a data file and declare its new checksum: the sender wrote these bytes."""
    def edit(folder: Path, _scratch: Path) -> None:
        data = change((folder / name).read_bytes())
        (folder / name).write_bytes(data)
        manifest = json.loads((folder / "manifest.json").read_text())
        for f in manifest["files"]:
            if f["name"] == name:
                f["sha256"] = hashlib.sha256(data).hexdigest()
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return edit


def _bad_parquet(inbox: Path, scratch: Path) -> Path:
    folder = _parquet(inbox, scratch)
    _replace_file("occupancy.parquet", lambda data: b"PAR1" + data[4:40] + b"PAR1")(
        folder, scratch)
    return folder


CASES: list[Case] = [
    # --- manifest -----------------------------------------------------------------
    Case("missing_manifest_field", "occupancy",
         _then(_occ([occ_row()]), _edit_manifest(lambda m: m.pop("sender"))),
         ("manifest_missing_field", "manifest.json", None, "sender")),
    Case("unknown_contract_version", "occupancy",
         _occ([occ_row()], manifest_overrides={"contract_version": "99"}),
         ("contract_version", "manifest.json", None, "contract_version")),
    Case("manifest_not_json", "occupancy",
         _then(_occ([occ_row()]), _raw_manifest(b'{"feed": "occupancy",')),
         ("manifest_json", "manifest.json", None, None)),
    Case("manifest_names_another_feed", "occupancy",
         _occ([occ_row()], manifest_overrides={"feed": "staffing"}),
         ("manifest_feed", "manifest.json", None, "feed")),
    Case("delivery_id_differs_from_folder", "occupancy",
         _occ([occ_row()], manifest_overrides={"delivery_id": "something-else"}),
         ("delivery_id", "manifest.json", None, "delivery_id")),
    Case("path_traversal_in_delivery_id", "occupancy",
         _occ([occ_row()], manifest_overrides={"delivery_id": "../../warehouse"}),
         ("delivery_id", "manifest.json", None, "delivery_id")),
    Case("path_traversal_in_file_name", "occupancy",
         _then(_occ([occ_row()]), _edit_manifest(
             lambda m: m["files"][0].update(name="../../warehouse/occupancy.csv"))),
         ("file_name", "manifest.json", None, "files[0].name")),
    Case("manifest_declares_a_billion_rows", "occupancy",
         _then(_occ([occ_row()]), _edit_manifest(
             lambda m: m["files"][0].update(rows=1_000_000_000))),
         ("declared_rows_implausible", "manifest.json", None, "files[0].rows")),
    Case("replaces_unknown_delivery", "occupancy",
         _occ([occ_row()], replaces="never-sent"),
         ("replaces_unknown", "manifest.json", None, "replaces")),
    Case("delivery_id_reused_with_other_data", "occupancy",
         lambda inbox, _s: b.occupancy(inbox, delivery_id="occ-base",
                                       rows=[occ_row(day="2024-01-09")]),
         ("delivery_id_reused", "manifest.json", None, "delivery_id")),
    Case("required_file_not_listed", "recidivism",
         _files("recidivism", {"releases.csv": b.csv(b.RELEASES_HEADER,
                                                     [NEW_RELEASE.format(ref=A)])}, period=None),
         ("missing_file", "manifest.json", None, "files")),
    # --- folder -------------------------------------------------------------------
    Case("checksum_mismatch", "occupancy",
         _then(_occ([occ_row()]), lambda f, _s: f.joinpath("occupancy.csv").write_bytes(
             f.joinpath("occupancy.csv").read_bytes().replace(b",310,", b",311,"))),
         ("checksum_mismatch", "occupancy.csv", None, None)),
    Case("row_count_mismatch", "occupancy",
         _then(_occ([occ_row()]), _edit_manifest(lambda m: m["files"][0].update(rows=2))),
         ("row_count_mismatch", "occupancy.csv", None, None)),
    Case("file_listed_but_absent", "occupancy",
         _then(_files("occupancy", {"occupancy.csv": _occ_csv(occ_row()),
                                    "regime.csv": b.csv(b.REGIME_HEADER, [REGIME_ROW])}),
               lambda f, _s: f.joinpath("regime.csv").unlink()),
         ("missing_file", "regime.csv", None, None)),
    Case("extra_unlisted_file", "occupancy",
         _then(_occ([occ_row()]), lambda f, _s: f.joinpath("notes.txt").write_text("hi\n")),
         ("unlisted_file", "notes.txt", None, None)),
    Case("sub_folder_in_delivery", "occupancy",
         _then(_occ([occ_row()]), lambda f, _s: f.joinpath("more").mkdir()),
         ("unexpected_folder", "more", None, None)),
    Case("symlink_in_delivery", "occupancy", _then(_occ([occ_row()]), _symlink_file),
         ("symlink", "occupancy.csv", None, None)),
    Case("delivery_folder_is_a_symlink", "occupancy", _linked_folder,
         ("delivery_id", None, None, "delivery_id")),
    # --- file structure -----------------------------------------------------------
    Case("empty_file", "occupancy", _files("occupancy", {"occupancy.csv": b""}),
         ("empty_file", "occupancy.csv", None, None)),
    Case("header_only", "occupancy",
         _files("occupancy", {"occupancy.csv": (b.OCCUPANCY_HEADER + "\n").encode()}),
         ("no_data_rows", "occupancy.csv", None, None)),
    Case("missing_required_column", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(
             "TS-0001,2024-01-02,2,310,10,50,0,20,2",
             header=b.OCCUPANCY_HEADER.replace(",admissions", ""))}),
         ("missing_column", "occupancy.csv", 0, "admissions")),
    Case("renamed_column", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(
             occ_row(), header=b.OCCUPANCY_HEADER.replace(",population,", ",pop,"))}),
         ("unexpected_column", "occupancy.csv", 0, "pop")),
    Case("extra_column", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(
             occ_row() + ",fine", header=b.OCCUPANCY_HEADER + ",comment")}),
         ("unexpected_column", "occupancy.csv", 0, "comment")),
    Case("duplicate_column", "staffing",
         _files("staffing", {"staffing.csv": b.csv(
             b.STAFFING_HEADER + ",fte", ["TS-0001,2024-02,custodial,1,1,0,1,1"])},
             period=("2024-02-01", "2024-02-29")),
         ("duplicate_column", "staffing.csv", 0, "fte")),
    Case("wrong_delimiter_for_declared_dialect", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(occ_row()).replace(b",", b";")}),
         ("delimiter", "occupancy.csv", 0, None)),
    Case("too_many_fields_in_a_row", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(occ_row(), occ_row(day="2024-01-03")
                                                         + ",7")}),
         ("csv_structure", "occupancy.csv", 2, None)),
    Case("unclosed_quote", "recidivism",
         _rec(releases=[NEW_RELEASE.format(ref=A),
                        f'"R8,{B_},2022-03-01,TS-0001,0,M,1988,03,1,120']),
         ("csv_structure", "releases.csv", 2, None)),
    Case("cp1252_bytes_in_a_utf8_file", "facility_register",
         _then(_reg([*b.REGISTER_ROWS[:3], CP1252_ROW]), _replace_file(
             "facilities.csv", lambda data: data.replace(b"Tilburg",
                                                         "Tülburg".encode("cp1252")))),
         ("encoding", "facilities.csv", 4, None)),
    Case("nul_byte", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(
             occ_row(), occ_row(day="2024-01-03").replace("310", "3\x0010"))}),
         ("nul_byte", "occupancy.csv", 2, None)),
    Case("not_parquet", "occupancy", _bad_parquet, ("parquet", "occupancy.parquet", None, None)),
    # --- values and types ---------------------------------------------------------
    Case("required_value_missing", "occupancy", _occ([occ_row(facility="")]),
         ("required", "occupancy.csv", 1, "facility_id")),
    Case("wrong_type", "occupancy", _occ([occ_row(population="310.0")]),
         ("type_int", "occupancy.csv", 1, "population")),
    Case("unparseable_date", "occupancy", _occ([occ_row(day="02/01/2024")]),
         ("type_date", "occupancy.csv", 1, "census_date")),
    Case("impossible_date", "occupancy", _occ([occ_row(day="2026-02-30")]),
         ("date_exists", "occupancy.csv", 1, "census_date")),
    Case("negative_count", "occupancy", _occ([occ_row(), occ_row(day="2024-01-03",
                                                                  adm="-3")]),
         ("non_negative", "occupancy.csv", 2, "admissions")),
    Case("month_out_of_range", "staffing", _stf(["TS-0001,2024-13,custodial,1,1,0,1"]),
         ("type_month", "staffing.csv", 1, "month")),
    Case("bool_not_true_false", "facility_register",
         _reg([*b.REGISTER_ROWS[:3], b.REGISTER_ROWS[3].replace(",false,", ",no,")]),
         ("type_bool", "facilities.csv", 4, "community_integrated")),
    Case("value_not_allowed", "facility_register",
         _reg([b.REGISTER_ROWS[0].replace(",prison,", ",jail,"), *b.REGISTER_ROWS[1:]]),
         ("allowed_values", "facilities.csv", 1, "facility_type")),
    Case("region_not_nuts", "facility_register",
         _reg([*b.REGISTER_ROWS[:2], b.REGISTER_ROWS[2].replace(",TS11,", ",ts 11,"),
               b.REGISTER_ROWS[3]]),
         ("format", "facilities.csv", 3, "region")),
    Case("staff_category_not_allowed", "staffing", _stf(["TS-0001,2024-01,cook,1,1,0,1"]),
         ("allowed_values", "staffing.csv", 1, "staff_category")),
    Case("negative_fte", "staffing", _stf(["TS-0001,2024-01,education,-1.5,2,0,1"]),
         ("out_of_range", "staffing.csv", 1, "fte")),
    Case("hours_out_of_cell_above_24", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(occ_row(day="2024-01-04")),
                              "regime.csv": b.csv(b.REGIME_HEADER,
                                                  [REGIME_ROW.replace(",6.25,", ",25,")])}),
         ("out_of_range", "regime.csv", 1, "avg_hours_out_of_cell")),
    Case("decimal_comma_undeclared", "occupancy",
         _files("occupancy", {
             "occupancy.csv": _occ_csv(occ_row(day="2024-01-04")).replace(b",", b";"),
             "regime.csv": b.csv(b.REGIME_HEADER, [REGIME_ROW]).replace(b",", b";")
             .replace(b"305.5", b"305,5")}, dialect={"delimiter": ";"}),
         ("decimal_separator", "regime.csv", 1, "avg_population")),
    Case("sex_not_allowed", "recidivism",
         _rec(releases=[NEW_RELEASE.format(ref=A).replace(",M,", ",Q,")]),
         ("allowed_values", "releases.csv", 1, "sex")),
    Case("person_ref_not_9_digits", "recidivism",
         _rec(releases=[NEW_RELEASE.format(ref=A), NEW_RELEASE.format(ref="12345678")
                        .replace("R9", "R8")]),
         ("format", "releases.csv", 2, "person_ref")),
    Case("person_level_file_without_header", "recidivism",
         _files("recidivism", {
             "releases.csv": (NEW_RELEASE.format(ref=A) + "\n" + NEW_RELEASE.format(ref=B_)
                              .replace("R9", "R8") + "\n").encode(),
             "reconvictions.csv": b.csv(b.RECONVICTIONS_HEADER,
                                        [NEW_RECONVICTION.format(ref=A)])}, period=None),
         ("missing_column", "releases.csv", 0, "person_ref")),
    # --- rules across columns, rows and the warehouse ------------------------------
    Case("female_above_population", "occupancy", _occ([occ_row(female="311")]),
         ("exceeds_other_column", "occupancy.csv", 1, "population_female, population")),
    Case("trained_above_headcount", "staffing", _stf(["TS-0001,2024-01,education,2,2,0,3"]),
         ("exceeds_other_column", "staffing.csv", 1, "trained_last_24m, headcount")),
    Case("capacity_above_operational_capacity", "facility_register",
         _reg([b.REGISTER_ROWS[0].replace(",300,330,", ",300,290,"), *b.REGISTER_ROWS[1:]]),
         ("exceeds_other_column", "facilities.csv", 1,
          "capacity_places, operational_capacity")),
    Case("valid_to_before_valid_from", "facility_register",
         _reg([*b.REGISTER_ROWS[:3], b.REGISTER_ROWS[3] + "1999-12-31"]),
         ("date_order", "facilities.csv", 4, "valid_from, valid_to")),
    Case("conviction_before_offence", "recidivism",
         _rec(reconvictions=[NEW_RECONVICTION.format(ref=A).replace("2022-09-01",
                                                                    "2022-05-01")]),
         ("date_order", "reconvictions.csv", 1, "offence_date, conviction_date")),
    Case("release_after_extraction", "recidivism",
         _rec(releases=[NEW_RELEASE.format(ref=A).replace("2022-03-01", "2025-01-01")]),
         ("after_extraction", "releases.csv", 1, "release_date")),
    Case("future_census_date", "occupancy",
         _occ([occ_row(day="2099-01-01")], period=("2099-01-01", "2099-01-01")),
         ("future_date", "occupancy.csv", 1, "census_date")),
    Case("census_date_outside_manifest_period", "occupancy", _occ([occ_row(day="2024-03-01")]),
         ("outside_period", "occupancy.csv", 1, "census_date")),
    Case("out_of_use_above_capacity", "occupancy", _occ([occ_row(out_of_use="301")]),
         ("out_of_use_exceeds_capacity", "occupancy.csv", 1, "places_out_of_use")),
    Case("population_absurdly_above_capacity", "occupancy", _occ([occ_row(population="661")]),
         ("population_implausible", "occupancy.csv", 1, "population")),
    Case("population_above_configured_bound", "occupancy", _occ([occ_row(population="350")]),
         ("population_implausible", "occupancy.csv", 1, "population"),
         config={"validation": {"max_population_over_operational": 1.05}}),
    Case("unknown_facility", "occupancy", _occ([occ_row(facility="TS-0404")]),
         ("unknown_facility", "occupancy.csv", 1, "facility_id")),
    Case("facility_not_valid_on_that_date", "occupancy",
         _occ([occ_row(day="1999-12-31")], period=("1999-12-01", "1999-12-31")),
         ("facility_not_valid_on_date", "occupancy.csv", 1, "census_date")),
    Case("facility_not_valid_in_month", "staffing",
         _files("staffing", {"staffing.csv": b.csv(
             b.STAFFING_HEADER, ["TS-0002,1999-11,custodial,9.0,10,0,10"])},
             period=("1999-11-01", "1999-11-30")),
         ("facility_not_valid_in_month", "staffing.csv", 1, "month")),
    Case("overlapping_register_intervals", "facility_register",
         _reg([*b.REGISTER_ROWS[:2],
               b.REGISTER_ROWS[2].replace("2024-01-11", "2024-01-05"), b.REGISTER_ROWS[3]]),
         ("overlapping_interval", "facilities.csv", 2, "valid_from")),
    Case("duplicate_key_within_a_file", "occupancy",
         _occ([occ_row(), occ_row(facility="TS-0002", population="18", female="2",
                                  remand="0", y18="3"), occ_row(population="309")]),
         ("duplicate_key_in_file", "occupancy.csv", 3, "facility_id, census_date")),
    Case("duplicate_release_id_within_a_file", "recidivism",
         _rec(releases=[NEW_RELEASE.format(ref=A), NEW_RELEASE.format(ref=B_)]),
         ("duplicate_key_in_file", "releases.csv", 2, "release_id")),
    Case("duplicate_key_against_earlier_delivery", "occupancy",
         _occ([occ_row(day="2024-01-01", population="305")]),
         ("duplicate_key", "occupancy.csv", 1, "facility_id")),
    Case("duplicate_staffing_key_against_earlier_delivery", "staffing",
         _stf(["TS-0001,2024-01,custodial,121,125,3.5,100"]),
         ("duplicate_key", "staffing.csv", 1, "facility_id")),
    Case("duplicate_reconviction_against_earlier_delivery", "recidivism",
         _rec(reconvictions=[f"C1,{A},2020-05-01,2020-09-01,03,false"]),
         ("duplicate_key", "reconvictions.csv", 1, "person_ref")),
    # --- valid but unusual: these load --------------------------------------------
    Case("utf8_bom", "occupancy",
         _files("occupancy", {"occupancy.csv": b"\xef\xbb\xbf" + _occ_csv(
             occ_row(day="2024-01-02"))}), None),
    Case("crlf_line_endings", "occupancy",
         _files("occupancy", {"occupancy.csv": _occ_csv(
             occ_row(day="2024-01-03"), occ_row(facility="TS-0003", day="2024-01-03",
                                                population="100", remand="60"),
             newline="\r\n")}), None),
    Case("quoted_newlines_and_delimiters", "facility_register",
         _reg(QUOTED_NEWLINE_REGISTER), None),
    Case("parquet_file", "occupancy", _parquet, None),
    Case("declared_european_dialect", "occupancy", _european, None),
    Case("reconviction_before_release", "recidivism",
         _rec(reconvictions=[NEW_RECONVICTION.format(ref=A).replace("2022-06-01", "2021-06-01")
                             .replace("2022-09-01", "2021-09-01")]), None),
]


def test_the_corpus_is_large_and_covers_every_feed():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.feed for c in CASES} >= {"facility_register", "occupancy", "staffing",
                                       "recidivism"}
    for feed in ("facility_register", "occupancy", "staffing", "recidivism"):
        assert sum(1 for c in CASES if c.feed == feed and c.expect) >= 5, feed


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A complete home: one valid delivery per feed, ingested, built and published."""
    home = tmp_path_factory.mktemp("corpus") / "home"
    with penstat_home(home) as paths:
        write_baseline(paths)
        outcomes = ingest_all()
        assert [o["outcome"] for o in outcomes] == ["loaded"] * 4, outcomes
        build_and_publish()
        assert paths.current_publication.is_symlink()
    return home


@pytest.fixture
def home(baseline, tmp_path) -> Paths:
    copy = tmp_path / "home"
    shutil.copytree(baseline, copy, symlinks=True)
    with penstat_home(copy) as paths:
        yield paths


def _snapshot(folder: Path) -> dict[str, str]:
    return {k: v for k, v in tree_digest(folder).items() if not k.startswith("_REJECTED")}


def _config(overrides: dict | None) -> Config:
    config = Config.load()
    if not overrides:
        return config
    values = {k: dict(v) for k, v in config.values.items()}
    for section, kv in overrides.items():
        values[section].update(kv)
    return Config(values)


def _person_refs() -> tuple[str, ...]:
    return (*b.PERSON_REFS, "12345678")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case: Case, home: Paths, tmp_path: Path, caplog):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    folder = case.write(home.inbox, scratch)
    original = _snapshot(folder)
    warehouse = sha256_file(home.warehouse)
    published = published_fingerprint(home)
    assert published, "the module's baseline publication exists"
    caplog.set_level(logging.INFO)

    [outcome] = ingest_feed(case.feed, home, config=_config(case.config))

    assert not folder.exists() and not folder.is_symlink(), "the delivery left the inbox"
    assert published_fingerprint(home) == published, "published/current changed"
    if case.expect is None:
        assert outcome.outcome == "loaded", [p.one_line() for p in outcome.problems]
        assert not any(home.quarantine.glob("*/*"))
        archived = home.archive / case.feed / folder.name
        assert _snapshot(archived) == original, "archived byte-identical"
        con = duckdb.connect(str(home.warehouse), read_only=True)
        loaded = con.execute("SELECT rows_loaded FROM meta.deliveries WHERE delivery_id = ?",
                             [folder.name]).fetchone()
        con.close()
        assert loaded == (outcome.rows,) and outcome.rows > 0
        _check_loaded(case, home)
        return

    assert outcome.outcome == "quarantined", outcome.summary()
    assert sha256_file(home.warehouse) == warehouse, "the warehouse file changed"
    assert not Path(str(home.warehouse) + ".wal").exists()
    target = Path(outcome.location)
    assert target.parent == home.quarantine / case.feed
    reason = json.loads((target / "_REJECTED.json").read_text())
    text = (target / "_REJECTED.txt").read_text()
    if case.name == "delivery_folder_is_a_symlink":
        assert (target / folder.name).is_symlink(), "the link itself is quarantined"
        assert _snapshot(target / folder.name) == original
    else:
        assert _snapshot(target) == original, "quarantined whole and byte-identical"
    found = {(p["rule"], p.get("file"), p.get("row"), p.get("column"))
             for p in reason["problems"]}
    assert case.expect in found, reason["problems"]
    _check_readable(reason, text, case)
    if FEEDS[case.feed].personal_data:
        blob = json.dumps(reason) + text + caplog.text + outcome.summary()
        for ref in _person_refs():
            assert ref not in blob, f"person_ref {ref} quoted in the rejection"
        assert all("value" not in p for p in reason["problems"])
        assert oct(os.stat(target).st_mode & 0o777) == "0o700"
        assert all(oct(os.stat(p).st_mode & 0o777) == "0o600"
                   for p in target.iterdir() if p.is_file() and not p.is_symlink())


def _check_readable(reason: dict, text: str, case: Case) -> None:
    """Plain words a sender with only the contract can act on."""
    assert reason["what_to_do"] and reason["contract"]
    assert text.startswith(f"Delivery {Path(reason['folder']).name} of feed {case.feed} "
                           "was rejected")
    contract_columns = {c.name for f in FEEDS[case.feed].files for c in f.columns}
    for problem in reason["problems"]:
        message = problem["message"].lower()
        for word in JARGON:
            assert word not in message, (word, problem)
        assert len(problem["message"]) >= 15
        column = problem.get("column")
        if column and problem.get("file") not in (None, "manifest.json") and \
                problem["rule"] not in ("unexpected_column", "duplicate_column"):
            assert {c.strip() for c in column.split(",")} <= contract_columns, problem
    rule, file, row, column = case.expect
    parts = [f"[{rule}]"]
    if file:
        parts.append(f"file {file}")
    if row:
        parts.append(f"row {row}")
    if row == 0:
        parts.append("header row")
    if column:
        parts.append(f"column {column}")
    assert any(all(part in ln for part in parts) for ln in text.splitlines()), (parts, text)


def _check_loaded(case: Case, home: Paths) -> None:
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        if case.name == "utf8_bom":
            assert con.execute("SELECT facility_id, population FROM raw.occupancy__occupancy "
                               "WHERE _delivery_id = 'case'").fetchall() == [("TS-0001", 310)]
        elif case.name == "crlf_line_endings":
            got = con.execute("SELECT facility_id, _row FROM raw.occupancy__occupancy WHERE "
                              "_delivery_id = 'case' ORDER BY _row").fetchall()
            assert got == [("TS-0001", 1), ("TS-0003", 2)]
        elif case.name == "quoted_newlines_and_delimiters":
            got = con.execute("SELECT name, _row FROM raw.facility_register__facilities "
                              "WHERE _delivery_id = 'case' AND facility_id = 'TS-0003'"
                              ).fetchall()
            assert got == [('Remand centre\n"De Singel", wing B', 4)]
        elif case.name == "declared_european_dialect":
            assert con.execute("SELECT avg_population, avg_hours_out_of_cell FROM "
                               "raw.occupancy__regime WHERE _delivery_id = 'case'"
                               ).fetchall() == [(305.5, 6.25)]
        elif case.name == "parquet_file":
            assert con.execute("SELECT facility_id, population, _row FROM "
                               "raw.occupancy__occupancy WHERE _delivery_id = 'case'"
                               ).fetchall() == [("TS-0003", 99, 1)]
        elif case.name == "reconviction_before_release":
            assert con.execute("SELECT count(*) FROM raw.recidivism__reconvictions "
                               "WHERE _delivery_id = 'case'").fetchone()[0] == 1
    finally:
        con.close()


def test_a_reconviction_before_the_release_is_loaded_but_not_counted(baseline):
    """The valid-but-unusual recidivism case, through dbt (the baseline holds it: C2 of
    person C was convicted before C's release R3): loaded, but not recidivism."""
    con = duckdb.connect(str(baseline / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        outcomes = dict(con.execute(
            "SELECT release_id, recid_2y_general FROM intermediate.int_release_outcomes"
        ).fetchall())
        raw = con.execute("SELECT case_id FROM raw.recidivism__reconvictions ORDER BY 1"
                          ).fetchall()
    finally:
        con.close()
    assert raw == [("C1",), ("C2",)], "both reconvictions are loaded"
    assert outcomes["R1"] is True, "C1, four months after R1, is recidivism"
    assert outcomes["R3"] is False, "C2, before the release R3, is not"
