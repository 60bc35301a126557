"""Delivery contract v1-v3 (docs/contract/feeds*.md): feeds, files, columns, keys.

This module is the single machine-readable statement of the contract. The
ingestion validator, the raw-table DDL, the synthetic sender and the Great
Expectations delivery suites all read it, so a change to the contract is a
change here (and a new contract version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

# Contract v2 (docs/contract/feeds-v2.md) is v1 unchanged plus three feeds for published
# statistics that do not fit v1; a feed is accepted from the version that introduced it.
# Contract v3 (docs/contract/feeds-v3.md) is v2 plus "unknown": the census columns that
# publishers often do not release (Column.unknown_from) may be left empty.
CONTRACT_VERSIONS: tuple[str, ...] = ("1", "2", "3")
# The first version in which an `unknown_from` column may be empty.
UNKNOWN_VERSION = "3"
DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DOORBELL = "_READY"
MANIFEST = "manifest.json"
# The reason a rejected delivery is quarantined with, written into its folder.
REJECTION_JSON = "_REJECTED.json"
REJECTION_TEXT = "_REJECTED.txt"

ColumnType = Literal["str", "int", "dec", "date", "month", "bool"]

# A facility id: an ISO 3166-1 alpha-2 country code, an optional subdivision code of one
# to three capitals or digits (ISO 3166-2: US-CA), a hyphen and a local code of capitals
# and digits: NL-0042, US-CA-SVSP, IT-MII152284, US-10002798. ASCII capitals, digits and
# single hyphens only, so that ids cannot differ only by case, spaces, Unicode hyphens or
# normalisation (NFC/NFD) and never start like a spreadsheet formula (= + - @). The
# jurisdiction of a facility is its id up to the last hyphen (feeds-v2.md).
FACILITY_ID_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?-[A-Z0-9]{1,20}$"

# How far a manifest's created_at may lie ahead of the warehouse clock when the delivery
# is ingested (clocks of senders drift): beyond it, the delivery is rejected. created_at
# is the extraction date that recidivism follow-up is judged against, so a future one
# would publish immature cohorts as final.
CREATED_AT_MAX_SKEW = timedelta(hours=1)

# `Limits.not_after` naming the manifest's created_at (the extraction date).
EXTRACTION = "created_at"

# Most persons per 100 places of a facility on a day (density, SPACE I) that the
# warehouse publishes: the publication gate's bound. Ingestion rejects a census day (or a
# reference register's facility) above it, so that no accepted row can fail the gate.
MAX_DENSITY = 1000


@dataclass(frozen=True)
class Limits:
    """The closed range [low, high] every value of a numeric or date column lies in.

    `low` and `high` are numbers for `int` and `dec` columns and dates for `date` and
    `month` columns (a month is compared by its first day). They are what the
    warehouse can hold through every later step: the dbt casts (decimal(18, 4) for
    `dec`, integer for years and months) and sums must hold them
    (tests/unit/contract/test_ranges.py proves it), so an accepted value never breaks
    a build. `not_after` ties the value to the delivery: EXTRACTION (the manifest's
    created_at date: no row describes what had not happened when the data were
    extracted) or another date column of the same row; for a year column (`int`), the
    year of that date. `why` is the reason for the range, quoted in feeds.md.
    """

    low: int | date
    high: int | date
    not_after: str | None = None
    why: str = ""

    def describe(self, type_: str) -> str:
        """The range as feeds.md writes it, e.g. `0..100000` or `1900-01..2199-12`."""
        def one(value: int | date) -> str:
            if isinstance(value, date):
                return value.isoformat()[:7] if type_ == "month" else value.isoformat()
            return f"{value}"
        text = f"{one(self.low)}..{one(self.high)}"
        if self.not_after:
            text += f", <= {self.not_after}"
        return text

# DuckDB type each contract type is stored as in the raw layer.
DUCKDB_TYPES: dict[str, str] = {
    "str": "VARCHAR",
    "int": "BIGINT",
    "dec": "DOUBLE",
    "date": "DATE",
    "month": "VARCHAR",  # 'YYYY-MM', kept as delivered; staging turns it into a date
    "bool": "BOOLEAN",
}

FACILITY_TYPES = (
    "prison",
    "remand_centre",
    "detention_house",
    "transition_house",
    "juvenile_small_scale",
    "open_institution",
    "forensic_unit",
)
SECURITY_LEVELS = ("high", "medium", "low", "open")
STAFF_CATEGORIES = ("custodial", "rehabilitation", "education", "healthcare", "management", "other")
SEXES = ("F", "M", "X")
ICCS_SECTIONS = tuple(f"{n:02d}" for n in range(1, 12))


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = True
    allowed: tuple[str, ...] | None = None
    personal: bool = False  # a person identifier: pseudonymised, never quoted
    pattern: str | None = None  # regular expression the text value must match
    limits: Limits | None = None  # range of an int, dec, date or month value
    # Contract version from which a required column may be left empty, meaning
    # "unknown: the sender does not have this figure" (feeds-v3.md). Before it, an empty
    # cell is rejected (rule `required`), never read as 0.
    unknown_from: str | None = None

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]

    def required_in(self, version: str) -> bool:
        """Whether an empty cell is rejected in a delivery of contract `version`."""
        if not self.required:
            return False
        return self.unknown_from is None or int(version) < int(self.unknown_from)

    def may_be_unknown(self, version: str) -> bool:
        """A required column that a delivery of `version` may leave empty (unknown)."""
        return self.required and not self.required_in(version)


@dataclass(frozen=True)
class FileSpec:
    """One data file of a feed (its stem names the file: occupancy.csv / .parquet)."""

    stem: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # Column holding the date or month the row describes, for period checks.
    period_column: str | None = None
    # A delivery of this file is the complete set (the register), not an increment.
    full_snapshot: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Required columns some contract version lets a sender leave empty (unknown)."""
        return tuple(c.name for c in self.columns if c.required and c.unknown_from)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Feed:
    name: str
    files: tuple[FileSpec, ...]
    personal_data: bool = False
    # How often a sender is expected to deliver, for lateness in mart_delivery_status.
    cadence: Literal["daily", "monthly", "on_change", "yearly"] = "daily"
    required_files: tuple[str, ...] = field(default=())
    # Contract version that introduced the feed: a manifest must declare at least this.
    contract_version: str = "1"
    # Deliveries wait in the inbox until a facility register has been loaded.
    requires_register: bool = True
    # Lateness is tracked in mart_delivery_status (seed feed_cadence) and alerted. The v2
    # feeds carry other publishers' statistics, which arrive when those publish: not.
    monitored: bool = True

    def file(self, stem: str) -> FileSpec:
        for f in self.files:
            if f.stem == stem:
                return f
        raise KeyError(stem)


def _c(name: str, type_: ColumnType, required: bool = True, **kw) -> Column:
    return Column(name=name, type=type_, required=required, **kw)


# --- ranges (docs/contract/feeds.md, "Ranges") ---------------------------------------
# Dates: from 1900, when the oldest person released or convicted within reach of today's
# records was born, to 2199: far enough for any planned register change, well before
# 9999-12-31 (the warehouse's "still valid") and 2262 (the end of pandas' nanosecond
# timestamps, which validation may use). Year 0000 (1 BC to DuckDB) can never pass.
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2199, 12, 31)
_EVENT = Limits(DATE_MIN, DATE_MAX, not_after=EXTRACTION,
                why="an event or census the sender had recorded when it extracted the data")
_MONTH = Limits(DATE_MIN, date(2199, 12, 1), not_after=EXTRACTION,
                why="a month that had begun when the data were extracted")
_REGISTER_DATE = Limits(
    date(1500, 1, 1), DATE_MAX,
    why="prisons in use today opened as early as the 16th century, and a register "
        "announces planned openings and closures; a facility still valid has an empty "
        "valid_to, not 9999-12-31")
_COHORT_DATE = Limits(DATE_MIN, DATE_MAX, not_after=EXTRACTION,
                      why="a release year that had begun when the data were extracted")
_BIRTH_YEAR = Limits(1900, 2199, not_after="release_date",
                     why="born in 1900 or later, and no later than released")
_YEAR = Limits(1900, 2199, why="a release year within the date range")
# Persons and places of one facility: the largest prison complexes hold about 20,000.
_PERSONS = Limits(0, 100_000, why="persons of one facility: the largest hold about 20,000")
_PLACES = Limits(1, 100_000, why="places of one facility: at least one")
_PLACES_OR_NONE = Limits(0, 100_000, why="places of one facility, 0 when none is in use")
_FTE = Limits(0, 100_000, why="full-time equivalents of one facility and staff category")
_HOURS = Limits(0, 24, why="hours of one day")
_GROUP = Limits(1, 1_000, why="persons of one living group (typically 8 to 25)")
_SENTENCE = Limits(0, 73_200, why="days: sentences of up to 200 years are imposed")
_DAYS_SERVED = Limits(0, 36_600, why="days: less than a century actually spent in custody")
_CONVICTIONS = Limits(0, 10_000, why="prior convictions of one person")
_FOLLOW_UP = Limits(1, 600, why="months: at least one, at most 50 years")
_DAYS_TO_RETURN = Limits(0, 18_300, why="days within the longest follow-up (600 months)")
_RECORD_NO = Limits(1, 1_000_000_000, why="the row's number in the publisher's file")
# A published value of any unit (counts, rates per 100,000): doubles hold integers exactly
# up to 2**53 (about 9.007e15).
_VALUE = Limits(-10**15, 10**15, why="any published figure, exact as a double")


FACILITY_REGISTER = Feed(
    name="facility_register",
    cadence="on_change",
    required_files=("facilities",),
    files=(
        FileSpec(
            stem="facilities",
            key=("facility_id", "valid_from"),
            full_snapshot=True,
            columns=(
                _c("facility_id", "str", pattern=FACILITY_ID_PATTERN),
                _c("name", "str"),
                _c("region", "str", pattern=r"^[A-Z]{2}[0-9A-Z]{1,2}$"),
                _c("facility_type", "str", allowed=FACILITY_TYPES),
                _c("security_level", "str", allowed=SECURITY_LEVELS),
                _c("capacity_places", "int", limits=_PLACES),
                _c("operational_capacity", "int", limits=_PLACES),
                _c("living_group_size", "int", required=False, limits=_GROUP),
                _c("community_integrated", "bool"),
                _c("valid_from", "date", limits=_REGISTER_DATE),
                _c("valid_to", "date", required=False, limits=_REGISTER_DATE),
            ),
        ),
    ),
)

# Census columns that publishers often do not release: empty = unknown from contract v3.
_V3 = UNKNOWN_VERSION

OCCUPANCY = Feed(
    name="occupancy",
    cadence="daily",
    required_files=("occupancy",),
    files=(
        FileSpec(
            stem="occupancy",
            key=("facility_id", "census_date"),
            period_column="census_date",
            columns=(
                _c("facility_id", "str", pattern=FACILITY_ID_PATTERN),
                _c("census_date", "date", limits=_EVENT),
                _c("places_out_of_use", "int", limits=_PLACES_OR_NONE, unknown_from=_V3),
                _c("population", "int", limits=_PERSONS),
                _c("population_female", "int", limits=_PERSONS, unknown_from=_V3),
                _c("population_remand", "int", limits=_PERSONS, unknown_from=_V3),
                _c("population_under_18", "int", limits=_PERSONS, unknown_from=_V3),
                _c("population_18_22", "int", limits=_PERSONS, unknown_from=_V3),
                _c("admissions", "int", limits=_PERSONS, unknown_from=_V3),
                _c("releases", "int", limits=_PERSONS, unknown_from=_V3),
            ),
        ),
        FileSpec(
            stem="regime",
            key=("facility_id", "month"),
            period_column="month",
            columns=(
                _c("facility_id", "str", pattern=FACILITY_ID_PATTERN),
                _c("month", "month", limits=_MONTH),
                _c("avg_population", "dec", limits=_PERSONS),
                _c("in_paid_work", "int", limits=_PERSONS),
                _c("in_education", "int", limits=_PERSONS),
                _c("with_digital_contact", "int", limits=_PERSONS),
                _c("avg_hours_out_of_cell", "dec", required=False, limits=_HOURS),
                _c("releases_total", "int", limits=_PERSONS),
                _c("releases_with_plan", "int", limits=_PERSONS),
            ),
        ),
    ),
)

STAFFING = Feed(
    name="staffing",
    cadence="monthly",
    required_files=("staffing",),
    files=(
        FileSpec(
            stem="staffing",
            key=("facility_id", "month", "staff_category"),
            period_column="month",
            columns=(
                _c("facility_id", "str", pattern=FACILITY_ID_PATTERN),
                _c("month", "month", limits=_MONTH),
                _c("staff_category", "str", allowed=STAFF_CATEGORIES),
                _c("fte", "dec", limits=_FTE),
                _c("headcount", "int", limits=_PERSONS),
                _c("vacancies_fte", "dec", required=False, limits=_FTE),
                _c("trained_last_24m", "int", required=False, limits=_PERSONS),
            ),
        ),
    ),
)

RECIDIVISM = Feed(
    name="recidivism",
    cadence="yearly",
    personal_data=True,
    required_files=("releases", "reconvictions"),
    files=(
        FileSpec(
            stem="releases",
            key=("release_id",),
            period_column="release_date",
            columns=(
                _c("release_id", "str"),
                _c("person_ref", "str", personal=True, pattern=r"^[0-9]{9}$"),
                _c("release_date", "date", limits=_EVENT),
                _c("facility_id", "str", pattern=FACILITY_ID_PATTERN),
                _c("days_in_small_scale", "int", limits=_DAYS_SERVED),
                _c("sex", "str", allowed=SEXES),
                _c("birth_year", "int", limits=_BIRTH_YEAR),
                _c("index_offence", "str", allowed=ICCS_SECTIONS),
                _c("prior_convictions", "int", limits=_CONVICTIONS),
                _c("sentence_days", "int", limits=_SENTENCE),
            ),
        ),
        FileSpec(
            stem="reconvictions",
            key=("person_ref", "case_id"),
            period_column="conviction_date",
            columns=(
                _c("case_id", "str"),
                _c("person_ref", "str", personal=True, pattern=r"^[0-9]{9}$"),
                _c("offence_date", "date", limits=_EVENT),
                _c("conviction_date", "date", limits=_EVENT),
                _c("offence", "str", allowed=ICCS_SECTIONS),
                _c("custodial", "bool"),
            ),
        ),
    ),
)

# --- Contract v2: feeds for published statistics (docs/contract/feeds-v2.md) -------------
# Facility ids of these feeds, and of real-data senders of v1 feeds, follow the v2
# convention `<jurisdiction>-<local code>`: an ISO 3166 code (US, US-CA, IT), then a code
# without hyphens. The jurisdiction of a facility is its id up to the last hyphen.
JURISDICTION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
# The v2 convention is the pattern of every facility id (v1's too): capitals and digits.
FACILITY_ID_V2_PATTERN = FACILITY_ID_PATTERN
OPERATOR_LEVELS = ("federal", "state", "county", "local", "multi")
FACILITY_STATUSES = ("open", "closed")
RELEASE_TYPES = (
    "parole",
    "discharged_end_of_sentence",
    "special_sentence",
    "paroled_to_detainer",
    "parole_immediate_discharge",
    "interstate_compact_parole",
)
AGE_BANDS = ("under_25", "25_34", "35_44", "45_54", "55_plus")
OFFENCE_TYPES = ("drug", "property", "violent", "public_order", "other")
RETURN_TYPES = ("new_offence", "technical")
ETHNICITIES = ("hispanic", "non_hispanic")
REFERENCE_FREQUENCIES = ("A", "S", "Q", "M")

REFERENCE_REGISTER = Feed(
    name="reference_register",
    cadence="on_change",
    contract_version="2",
    requires_register=False,
    monitored=False,
    required_files=("facilities",),
    files=(
        FileSpec(
            stem="facilities",
            key=("facility_id",),
            full_snapshot=True,
            columns=(
                _c("facility_id", "str", pattern=FACILITY_ID_V2_PATTERN),
                _c("name", "str"),
                _c("country", "str", pattern=r"^[A-Z]{3}$"),
                _c("subdivision", "str", required=False),
                _c("operator_level", "str", required=False, allowed=OPERATOR_LEVELS),
                _c("status", "str", required=False, allowed=FACILITY_STATUSES),
                _c("capacity_places", "int", required=False, limits=_PLACES_OR_NONE),
                _c("population", "int", required=False, limits=_PERSONS),
                _c("reference_date", "date", required=False, limits=_EVENT),
            ),
        ),
    ),
)

RECIDIVISM_COHORT = Feed(
    name="recidivism_cohort",
    cadence="yearly",
    contract_version="2",
    requires_register=False,
    monitored=False,
    required_files=("releases",),
    files=(
        FileSpec(
            stem="releases",
            # The row's number in the publisher's file: there is no person id, and equal
            # rows are different people, so nothing else can be a key.
            key=("record_no",),
            full_snapshot=True,
            columns=(
                _c("record_no", "int", limits=_RECORD_NO),
                _c("jurisdiction", "str", pattern=JURISDICTION_PATTERN),
                _c("release_year", "int", limits=_YEAR),
                _c("release_period_start", "date", limits=_COHORT_DATE),
                _c("release_period_end", "date", limits=_COHORT_DATE),
                _c("follow_up_months", "int", limits=_FOLLOW_UP),
                _c("release_type", "str", required=False, allowed=RELEASE_TYPES),
                _c("release_type_label", "str", required=False),
                _c("supervising_district", "str", required=False),
                _c("race", "str", required=False),
                _c("ethnicity", "str", required=False, allowed=ETHNICITIES),
                _c("age_band", "str", required=False, allowed=AGE_BANDS),
                _c("sex", "str", required=False, allowed=("F", "M")),
                _c("offence_class", "str", required=False),
                _c("offence_type", "str", required=False, allowed=OFFENCE_TYPES),
                _c("offence_subtype", "str", required=False),
                _c("target_population", "bool", required=False),
                _c("returned", "bool"),
                _c("days_to_return", "int", required=False, limits=_DAYS_TO_RETURN),
                _c("return_type", "str", required=False, allowed=RETURN_TYPES),
                _c("new_offence_class", "str", required=False),
                _c("new_offence_type", "str", required=False, allowed=OFFENCE_TYPES),
                _c("new_offence_subtype", "str", required=False),
            ),
        ),
    ),
)

NATIONAL_REFERENCE = Feed(
    name="national_reference",
    cadence="yearly",
    contract_version="2",
    requires_register=False,
    monitored=False,
    required_files=("values",),
    files=(
        FileSpec(
            stem="values",
            key=("dataset", "indicator", "unit", "geo", "frequency", "period"),
            full_snapshot=True,
            columns=(
                _c("dataset", "str", pattern=r"^[a-z0-9_]+$"),
                _c("indicator", "str"),
                _c("unit", "str"),
                _c("geo", "str"),
                _c("frequency", "str", allowed=REFERENCE_FREQUENCIES),
                # a year of the date range (1900..2199), alone or with its half,
                # quarter or month
                _c("period", "str",
                   pattern=r"^(19|2[01])[0-9]{2}(-(S[12]|Q[1-4]|0[1-9]|1[0-2]))?$"),
                _c("value", "dec", required=False, limits=_VALUE),
                _c("flag", "str", required=False, pattern=r"^[a-z]{1,4}$"),
            ),
        ),
    ),
)

V1_FEEDS: tuple[str, ...] = ("facility_register", "occupancy", "staffing", "recidivism")

FEEDS: dict[str, Feed] = {
    f.name: f for f in (FACILITY_REGISTER, OCCUPANCY, STAFFING, RECIDIVISM,
                        REFERENCE_REGISTER, RECIDIVISM_COHORT, NATIONAL_REFERENCE)
}

# In the warehouse a person_ref is only ever held as its keyed hash, under this name.
PSEUDONYM_COLUMN = "person_pseudonym"


def raw_table_name(feed: str, stem: str) -> str:
    """Fully qualified raw table for one file of a feed, e.g. raw.occupancy__regime."""
    return f"raw.{feed}__{stem}"


def stored_column_name(column: Column) -> str:
    return PSEUDONYM_COLUMN if column.personal else column.name
