"""Delivery contract v1 (docs/contract/feeds.md): feeds, files, columns, keys.

This module is the single machine-readable statement of the contract. The
ingestion validator, the raw-table DDL, the synthetic sender and the Great
Expectations delivery suites all read it, so a change to the contract is a
change here (and a new contract version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

CONTRACT_VERSIONS: tuple[str, ...] = ("1",)
DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DOORBELL = "_READY"
MANIFEST = "manifest.json"

ColumnType = Literal["str", "int", "dec", "date", "month", "bool"]

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

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


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

    def file(self, stem: str) -> FileSpec:
        for f in self.files:
            if f.stem == stem:
                return f
        raise KeyError(stem)


def _c(name: str, type_: ColumnType, required: bool = True, **kw) -> Column:
    return Column(name=name, type=type_, required=required, **kw)


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
                _c("facility_id", "str"),
                _c("name", "str"),
                _c("region", "str", pattern=r"^[A-Z]{2}[0-9A-Z]{1,2}$"),
                _c("facility_type", "str", allowed=FACILITY_TYPES),
                _c("security_level", "str", allowed=SECURITY_LEVELS),
                _c("capacity_places", "int"),
                _c("operational_capacity", "int"),
                _c("living_group_size", "int", required=False),
                _c("community_integrated", "bool"),
                _c("valid_from", "date"),
                _c("valid_to", "date", required=False),
            ),
        ),
    ),
)

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
                _c("facility_id", "str"),
                _c("census_date", "date"),
                _c("places_out_of_use", "int"),
                _c("population", "int"),
                _c("population_female", "int"),
                _c("population_remand", "int"),
                _c("population_under_18", "int"),
                _c("population_18_22", "int"),
                _c("admissions", "int"),
                _c("releases", "int"),
            ),
        ),
        FileSpec(
            stem="regime",
            key=("facility_id", "month"),
            period_column="month",
            columns=(
                _c("facility_id", "str"),
                _c("month", "month"),
                _c("avg_population", "dec"),
                _c("in_paid_work", "int"),
                _c("in_education", "int"),
                _c("with_digital_contact", "int"),
                _c("avg_hours_out_of_cell", "dec", required=False),
                _c("releases_total", "int"),
                _c("releases_with_plan", "int"),
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
                _c("facility_id", "str"),
                _c("month", "month"),
                _c("staff_category", "str", allowed=STAFF_CATEGORIES),
                _c("fte", "dec"),
                _c("headcount", "int"),
                _c("vacancies_fte", "dec", required=False),
                _c("trained_last_24m", "int", required=False),
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
                _c("release_date", "date"),
                _c("facility_id", "str"),
                _c("days_in_small_scale", "int"),
                _c("sex", "str", allowed=SEXES),
                _c("birth_year", "int"),
                _c("index_offence", "str", allowed=ICCS_SECTIONS),
                _c("prior_convictions", "int"),
                _c("sentence_days", "int"),
            ),
        ),
        FileSpec(
            stem="reconvictions",
            key=("person_ref", "case_id"),
            period_column="conviction_date",
            columns=(
                _c("case_id", "str"),
                _c("person_ref", "str", personal=True, pattern=r"^[0-9]{9}$"),
                _c("offence_date", "date"),
                _c("conviction_date", "date"),
                _c("offence", "str", allowed=ICCS_SECTIONS),
                _c("custodial", "bool"),
            ),
        ),
    ),
)

FEEDS: dict[str, Feed] = {
    f.name: f for f in (FACILITY_REGISTER, OCCUPANCY, STAFFING, RECIDIVISM)
}

# In the warehouse a person_ref is only ever held as its keyed hash, under this name.
PSEUDONYM_COLUMN = "person_pseudonym"


def raw_table_name(feed: str, stem: str) -> str:
    """Fully qualified raw table for one file of a feed, e.g. raw.occupancy__regime."""
    return f"raw.{feed}__{stem}"


def stored_column_name(column: Column) -> str:
    return PSEUDONYM_COLUMN if column.personal else column.name
