"""Hostile values: each is quarantined with its reason, and the next valid delivery loads.

Values that once passed ingestion but break every later build (over-range numbers,
year 0000, dates outside the contract's range or after the delivery, a created_at in the
future, a register that orphans loaded rows) and facility ids that are not ids at all
(spreadsheet formulas, case, space, Unicode hyphen and NFC/NFD look-alikes).

Every case starts from the same home (a facility register and one day of occupancy
loaded), delivers the hostile value inside the `sealed` harness (nothing may happen
outside PENSTAT_HOME), and asserts that:

- the hostile delivery is quarantined, and its reason (the outcome and `_REJECTED.json`)
  names the file, row, column and rule;
- a valid delivery of the same feed, delivered right after, loads.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from penstat.contract.feeds import FEEDS, REJECTION_JSON
from penstat.contract.layout import Paths
from penstat.ingestion.pipeline import ingest_feed
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.conftest import TEST_KEY
from tests.hostile import sealed
from tests.reliability import penstat_home

Writer = Callable[[Path], Path]  # inbox -> the delivery folder

JAN = ("2024-01-01", "2024-01-31")
CREATED = "2024-02-01T00:00:00Z"
A, B, C = b.PERSON_REFS
RELEASE = "R9,{ref},2022-03-01,TS-0001,0,M,1988,03,1,120"
RECONVICTION = "C9,{ref},2022-06-01,2022-09-01,03,true"
REGIME = "TS-0001,2024-01,305.5,120,40,200,6.25,12,9"
COHORT_COLUMNS = FEEDS["recidivism_cohort"].file("releases").column_names
COHORT = {"record_no": "1", "jurisdiction": "US-IA", "release_year": "2010",
          "release_period_start": "2009-07-01", "release_period_end": "2010-06-30",
          "follow_up_months": "36", "release_type": "parole", "returned": "false"}
REFERENCE_COLUMNS = FEEDS["reference_register"].file("facilities").column_names
# a valid register that differs from the baseline's (a new facility), so it is no resend
VALID_REGISTER = [*b.REGISTER_ROWS,
                  "TS-0004,New house,TS11,detention_house,low,12,12,6,true,2024-03-01,"]


def occ_row(facility: str = "TS-0001", day: str = "2024-01-02", population: str = "310") -> str:
    return f"{facility},{day},2,{population},10,50,0,20,3,2"


def cohort_row(**values: str) -> str:
    row = {**COHORT, **values}
    return ",".join(row.get(c, "") for c in COHORT_COLUMNS)


def reference_row(facility_id: str = "US-10002798", capacity: str = "498",
                  population: str = "") -> str:
    row = {"facility_id": facility_id, "name": "Midland County", "country": "USA",
           "capacity_places": capacity, "population": population}
    return ",".join(row.get(c, "") for c in REFERENCE_COLUMNS)


# --- writers ---------------------------------------------------------------------------


def occupancy(rows: list[str], delivery_id: str = "hostile", **kw) -> Writer:
    return lambda inbox: b.occupancy(inbox, delivery_id=delivery_id, rows=rows, **kw)


def regime(row: str, delivery_id: str = "hostile") -> Writer:
    return lambda inbox: b.occupancy(inbox, delivery_id=delivery_id, files={
        "occupancy.csv": b.csv(b.OCCUPANCY_HEADER, [occ_row(day="2024-01-03")]),
        "regime.csv": b.csv(b.REGIME_HEADER, [row])})


def staffing(row: str, delivery_id: str = "hostile") -> Writer:
    return lambda inbox: b.staffing(inbox, delivery_id=delivery_id, rows=[row])


def recidivism(releases: list[str] | None = None, reconvictions: list[str] | None = None,
               delivery_id: str = "hostile") -> Writer:
    return lambda inbox: b.recidivism(
        inbox, delivery_id=delivery_id, releases=releases or [RELEASE.format(ref=A)],
        reconvictions=reconvictions or [RECONVICTION.format(ref=A)])


def register(rows: list[str], delivery_id: str = "hostile") -> Writer:
    return lambda inbox: b.register(inbox, delivery_id=delivery_id, rows=rows)


def cohort(row: str, delivery_id: str = "hostile") -> Writer:
    return lambda inbox: write_delivery(
        inbox, "recidivism_cohort", delivery_id,
        {"releases.csv": b.csv(",".join(COHORT_COLUMNS), [row])}, sender="TEST",
        created_at="2022-06-21T00:00:00Z", period=None)


def reference(row: str, delivery_id: str = "hostile") -> Writer:
    return lambda inbox: write_delivery(
        inbox, "reference_register", delivery_id,
        {"facilities.csv": b.csv(",".join(REFERENCE_COLUMNS), [row])}, sender="TEST",
        created_at="2024-12-29T00:00:00Z", period=None)


# The valid delivery of each feed that must load after the hostile one.
VALID: dict[str, Writer] = {
    "facility_register": register(VALID_REGISTER, "valid"),
    "occupancy": occupancy([occ_row(day="2024-01-05")], "valid"),
    "staffing": staffing("TS-0001,2024-01,custodial,120.5,125,3.5,100", "valid"),
    "recidivism": recidivism(delivery_id="valid"),
    "recidivism_cohort": cohort(cohort_row(), "valid"),
    "reference_register": reference(reference_row(), "valid"),
}


@dataclass(frozen=True)
class Hostile:
    name: str
    feed: str
    write: Writer
    # (rule, file, row, column) that must be among the reasons
    expect: tuple[str, str, int | None, str]
    # a delivery loaded first (feed, writer)
    setup: tuple[str, Writer] | None = None


def _occ_ids(*ids: str) -> list[Hostile]:
    out = []
    for name, fid in ids:
        quoted = '"' + fid.replace('"', '""') + '"'
        out.append(Hostile(f"facility_id_{name}", "occupancy",
                           occupancy([occ_row(), occ_row(facility=quoted, day="2024-01-03")]),
                           ("format", "occupancy.csv", 2, "facility_id")))
    return out


NFC = unicodedata.normalize("NFC", "TS-\u00c9001")  # TS-É001, composed
NFD = unicodedata.normalize("NFD", NFC)  # the same id to the eye, decomposed
assert NFC != NFD

CASES: list[Hostile] = [
    # --- numbers beyond what the warehouse's casts hold ------------------------------
    Hostile("int_over_range", "occupancy", occupancy([occ_row(population="100001")]),
            ("out_of_range", "occupancy.csv", 1, "population")),
    Hostile("int_beyond_bigint", "occupancy",
            occupancy([occ_row(population="99999999999999999999999")]),
            ("out_of_range", "occupancy.csv", 1, "population")),
    Hostile("decimal_beyond_decimal_18_4", "occupancy",
            regime(REGIME.replace("305.5", "100000000000001.5")),
            ("out_of_range", "regime.csv", 1, "avg_population")),
    Hostile("decimal_of_400_digits", "occupancy", regime(REGIME.replace("305.5", "9" * 400)),
            ("out_of_range", "regime.csv", 1, "avg_population")),
    Hostile("fte_over_range", "staffing",
            staffing("TS-0001,2024-01,custodial,100000000000000,125,3.5,100"),
            ("out_of_range", "staffing.csv", 1, "fte")),
    Hostile("birth_year_11_digits", "recidivism",
            recidivism([RELEASE.format(ref=A).replace(",1988,", ",99999999999,")]),
            ("out_of_range", "releases.csv", 1, "birth_year")),
    Hostile("follow_up_months_11_digits", "recidivism_cohort",
            cohort(cohort_row(follow_up_months="12345678901")),
            ("out_of_range", "releases.csv", 1, "follow_up_months")),
    Hostile("capacity_over_range_v2", "reference_register",
            reference(reference_row(capacity="2147483648")),
            ("out_of_range", "facilities.csv", 1, "capacity_places")),
    # --- legal values whose combination the publication gate never publishes --------
    Hostile("density_above_1000", "occupancy",
            occupancy([occ_row(facility="TS-0005", population="11")]),
            ("density_implausible", "occupancy.csv", 1, "population"),
            setup=("facility_register", register(
                [*VALID_REGISTER, "TS-0005,Tiny,TS11,prison,high,1,1000,,false,2000-01-01,"],
                "reg-tiny"))),
    Hostile("density_above_1000_v2", "reference_register",
            reference(reference_row(capacity="10", population="101")),
            ("density_implausible", "facilities.csv", 1, "population")),
    # --- dates -----------------------------------------------------------------------
    Hostile("year_0000", "occupancy", occupancy([occ_row(day="0000-01-02")]),
            ("out_of_range", "occupancy.csv", 1, "census_date")),
    Hostile("register_year_0000", "facility_register",
            register([*b.REGISTER_ROWS[:3], b.REGISTER_ROWS[3].replace("2000-01-01",
                                                                       "0000-01-01")]),
            ("out_of_range", "facilities.csv", 4, "valid_from")),
    Hostile("month_0000", "staffing", staffing("TS-0001,0000-01,custodial,1,1,0,1"),
            ("out_of_range", "staffing.csv", 1, "month")),
    Hostile("release_before_1900", "recidivism",
            recidivism([RELEASE.format(ref=A).replace("2022-03-01", "1899-12-31")]),
            ("out_of_range", "releases.csv", 1, "release_date")),
    Hostile("register_before_1500", "facility_register",
            register([*b.REGISTER_ROWS[:3], b.REGISTER_ROWS[3].replace("2000-01-01",
                                                                       "1499-12-31")]),
            ("out_of_range", "facilities.csv", 4, "valid_from")),
    Hostile("census_after_period", "occupancy",
            occupancy([occ_row(), occ_row(day="2024-02-01")]),
            ("outside_period", "occupancy.csv", 2, "census_date")),
    Hostile("offence_after_extraction", "recidivism",
            recidivism(reconvictions=[RECONVICTION.format(ref=A)
                                      .replace("2022-06-01,2022-09-01", "2024-07-01,2024-07-02")]),
            ("after_extraction", "reconvictions.csv", 1, "offence_date")),
    Hostile("born_after_release", "recidivism",
            recidivism([RELEASE.format(ref=A).replace(",1988,", ",2023,")]),
            ("after_release_date", "releases.csv", 1, "birth_year")),
    Hostile("cohort_after_extraction", "recidivism_cohort",
            cohort(cohort_row(release_period_start="2022-07-01",
                              release_period_end="2023-06-30")),
            ("after_extraction", "releases.csv", 1, "release_period_start")),
    Hostile("created_at_in_future", "occupancy",
            lambda inbox: write_delivery(
                inbox, "occupancy", "hostile",
                {"occupancy.csv": b.csv(b.OCCUPANCY_HEADER, [occ_row()])}, sender="TEST",
                created_at="2099-01-01T00:00:00Z", period=JAN),
            ("created_at_in_future", "manifest.json", None, "created_at")),
    # --- facility ids ----------------------------------------------------------------
    *_occ_ids(("hyperlink_formula", '=HYPERLINK("x")'), ("plus_command", "+cmd"),
              ("at_function", "@SUM(A1)"), ("lower_case", "ts-0001"),
              ("trailing_space", "TS-0001 "), ("unicode_hyphen", "TS\u20100001"),
              ("nfc_accent", NFC), ("nfd_accent", NFD), ("leading_minus", "-TS-0001")),
    Hostile("register_formula_id", "facility_register",
            register([*b.REGISTER_ROWS, '"=HYPERLINK(""x"")",Evil,TS11,prison,high,10,10,,'
                                        'false,2000-01-01,']),
            ("format", "facilities.csv", 5, "facility_id")),
    Hostile("staffing_lower_case_id", "staffing",
            staffing("ts-0001,2024-01,custodial,120.5,125,3.5,100"),
            ("format", "staffing.csv", 1, "facility_id")),
    Hostile("release_unicode_hyphen_id", "recidivism",
            recidivism([RELEASE.format(ref=A).replace("TS-0001", "TS\u20110001")]),
            ("format", "releases.csv", 1, "facility_id")),
    Hostile("reference_register_lower_case_id", "reference_register",
            reference(reference_row(facility_id="US-abc")),
            ("format", "facilities.csv", 1, "facility_id")),
    # --- a register that orphans loaded rows ------------------------------------------
    Hostile("register_drops_loaded_facility", "facility_register",
            register(b.REGISTER_ROWS[:3]),
            ("register_drops_loaded_facility", "facilities.csv", None, "facility_id")),
    Hostile("register_uncovers_loaded_days", "facility_register",
            register([*b.REGISTER_ROWS[:3],
                      b.REGISTER_ROWS[3].replace("2000-01-01", "2024-01-02")]),
            ("register_uncovers_loaded_days", "facilities.csv", 4, "valid_from, valid_to")),
]


def test_every_class_of_hostile_value_is_covered():
    names = {c.name for c in CASES}
    assert len(names) == len(CASES)
    assert {c.expect[0] for c in CASES} >= {
        "out_of_range", "outside_period", "after_extraction", "created_at_in_future",
        "format", "register_drops_loaded_facility", "register_uncovers_loaded_days",
        "density_implausible", "after_release_date"}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A register and one day of occupancy loaded (so a register can orphan it)."""
    home = tmp_path_factory.mktemp("hostile-values") / "home"
    with penstat_home(home) as paths:
        b.register(paths.inbox)
        b.occupancy(paths.inbox, delivery_id="occ-base", rows=b.occupancy_rows())
        outcomes = ingest_feed("facility_register", paths) + ingest_feed("occupancy", paths)
        assert [o.outcome for o in outcomes] == ["loaded", "loaded"], outcomes
    return home


@pytest.fixture
def home(baseline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    copy = tmp_path / "home"
    shutil.copytree(baseline, copy, symlinks=True)
    monkeypatch.setenv("PENSTAT_HOME", str(copy))
    monkeypatch.setenv("PENSTAT_PSEUDONYM_KEY", TEST_KEY)
    return Paths.from_env()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_value_is_quarantined_and_the_next_valid_delivery_loads(
        case: Hostile, home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rule, file, row, column = case.expect
    with sealed(tmp_path, monkeypatch):
        if case.setup:
            feed, write = case.setup
            write(home.inbox)
            assert [o.outcome for o in ingest_feed(feed, home)] == ["loaded"]
        case.write(home.inbox)
        [outcome] = ingest_feed(case.feed, home)
        assert outcome.outcome == "quarantined", outcome
        found = [(p.rule, p.file, p.row, p.column) for p in outcome.problems]
        assert case.expect in found, found
        reason = json.loads((Path(outcome.location) / REJECTION_JSON).read_text())
        assert any(p["rule"] == rule and p.get("file") == file and p.get("row") == row
                   and p.get("column") == column for p in reason["problems"]), reason

        VALID[case.feed](home.inbox)
        [valid] = ingest_feed(case.feed, home)
        assert valid.outcome == "loaded", [p.one_line() for p in valid.problems]


def test_a_register_names_every_facility_it_would_orphan(home: Paths, tmp_path, monkeypatch):
    with sealed(tmp_path, monkeypatch):
        register([b.REGISTER_ROWS[0]])(home.inbox)
        [outcome] = ingest_feed("facility_register", home)
    [problem] = [p for p in outcome.problems if p.rule == "register_drops_loaded_facility"]
    assert "TS-0002 (occupancy)" in problem.message and "TS-0003 (occupancy)" in problem.message
    assert problem.rows_affected == 2


def test_created_at_within_the_allowed_skew_loads(home: Paths, tmp_path, monkeypatch):
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with sealed(tmp_path, monkeypatch):
        write_delivery(home.inbox, "occupancy", "soon",
                       {"occupancy.csv": b.csv(b.OCCUPANCY_HEADER, [occ_row()])},
                       sender="TEST", created_at=soon, period=JAN)
        [outcome] = ingest_feed("occupancy", home)
    assert outcome.outcome == "loaded", [p.one_line() for p in outcome.problems]
