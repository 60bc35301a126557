"""The Great Expectations suites: one per delivery file, one per published mart.

The suites live as JSON in the file-based GX context under `expectations/gx/`
(committed). This module is where they are written from: `python -m penstat.validation
write-context` regenerates the JSON, and a test fails if the committed JSON
and this module disagree.
"""

from __future__ import annotations

import copy

import great_expectations as gx
import great_expectations.expectations as gxe

from penstat.contract.feeds import CONTRACT_VERSIONS, FEEDS, UNKNOWN_VERSION, FileSpec
from penstat.contract.published import (
    DELIVERY_STATUSES,
    MART_COLUMNS,
    MART_KEYS,
    ROW_FLAG_LETTERS,
    VALUE_FLAG_COLUMNS,
    flag_column,
)

SCALE_CLASSES = ("small", "medium", "large")
OVERCROWDING_TIERS = ("none", "over", "severe", "critical")
# Eurostat flag letters; several may apply at once, written in alphabetical order
# (e.g. "cp"): every non-empty combination is allowed.
FLAG_LETTERS = ROW_FLAG_LETTERS
FLAGS = tuple(sorted(
    ("".join(letter for i, letter in enumerate(FLAG_LETTERS) if mask & (1 << i))
     for mask in range(1, 2 ** len(FLAG_LETTERS))),
    key=lambda flag: (len(flag), flag)))



def delivery_suite_name(feed: str, stem: str, contract_version: str = "1") -> str:
    """The suite a delivery of `contract_version` is checked with. A file with columns
    that may be unknown (feeds-v3.md) has a second suite, `<...>.v3`, for deliveries of
    contract v3 on: the same rules, but those columns may be empty (NULL)."""
    name = f"delivery.{feed}.{stem}"
    spec = FEEDS[feed].file(stem) if feed in FEEDS else None
    if spec is not None and any(spec.column(c).may_be_unknown(contract_version)
                                for c in spec.unknown_columns):
        return f"{name}.v{UNKNOWN_VERSION}"
    return name


def mart_suite_name(mart: str) -> str:
    return f"mart.{mart}"


def _pair(a: str, b: str) -> gxe.Expectation:
    """a >= b on every row where both are present."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing")


# Cross-column rules of the contract, per file (feeds.md notes column). The range of
# every numeric column comes from its `Column.limits` (delivery_suite).
_DELIVERY_RULES: dict[tuple[str, str], list[gxe.Expectation]] = {
    ("facility_register", "facilities"): [
        _pair("operational_capacity", "capacity_places"),
        _pair("valid_to", "valid_from"),
    ],
    ("occupancy", "occupancy"): [
        _pair("population", "population_female"),
        _pair("population", "population_remand"),
        _pair("population", "population_under_18"),
        _pair("population", "population_18_22"),
    ],
    ("occupancy", "regime"): [
        _pair("releases_total", "releases_with_plan"),
    ],
    ("staffing", "staffing"): [
        _pair("headcount", "trained_last_24m"),
    ],
    ("recidivism", "reconvictions"): [
        _pair("conviction_date", "offence_date"),
    ],
    # Contract v2 feeds (docs/contract/feeds-v2.md)
    ("recidivism_cohort", "releases"): [
        _pair("release_period_end", "release_period_start"),
    ],
}


def delivery_suite(feed: str, spec: FileSpec,
                   contract_version: str = "1") -> gx.ExpectationSuite:
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.key))
        if len(spec.key) > 1 else gxe.ExpectColumnValuesToBeUnique(column=spec.key[0]),
    ]
    for col in spec.columns:
        if col.required_in(contract_version):
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name))
        if col.type in ("int", "dec") and col.limits is not None:
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column=col.name, min_value=col.limits.low, max_value=col.limits.high))
        if col.allowed:
            expectations.append(gxe.ExpectColumnValuesToBeInSet(column=col.name,
                                                                value_set=list(col.allowed)))
    expectations += _DELIVERY_RULES.get((feed, spec.stem), [])
    return gx.ExpectationSuite(
        name=delivery_suite_name(feed, spec.stem, contract_version),
        expectations=[copy.deepcopy(e) for e in expectations],
        meta={"notes": _delivery_notes(feed, spec, contract_version)},
    )


def _delivery_notes(feed: str, spec: FileSpec, contract_version: str) -> str:
    unknown = [c for c in spec.unknown_columns if spec.column(c).may_be_unknown(contract_version)]
    if unknown:
        return (f"Contract v{UNKNOWN_VERSION} rules for {feed}/{spec.stem} (feeds-v3.md): as "
                f"v1, but {', '.join(unknown)} may be empty (unknown); run on every delivery "
                f"declaring contract_version {UNKNOWN_VERSION} or later.")
    return (f"Contract v1 rules for {feed}/{spec.stem} (feeds.md); run on every delivery "
            "before it is merged into the raw layer.")


def delivery_suites() -> list[gx.ExpectationSuite]:
    """One suite per delivery file and distinct set of rules across contract versions."""
    suites: dict[str, gx.ExpectationSuite] = {}
    for feed in FEEDS.values():
        for spec in feed.files:
            for version in CONTRACT_VERSIONS:
                name = delivery_suite_name(feed.name, spec.stem, version)
                if name not in suites:
                    suites[name] = delivery_suite(feed.name, spec, version)
    return list(suites.values())


def _share(column: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=1)


_PIPELINE_MART_RULES: dict[str, list[gxe.Expectation]] = {
    "mart_facility_daily": [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="scale_class", value_set=list(SCALE_CLASSES)),
        gxe.ExpectColumnValuesToBeInSet(column="overcrowding_tier",
                                        value_set=list(OVERCROWDING_TIERS)),
        gxe.ExpectColumnValuesToNotBeNull(column="capacity_places"),
        gxe.ExpectColumnValuesToBeBetween(column="density", min_value=0, max_value=1000),
        gxe.ExpectColumnValuesToBeBetween(column="population", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_facility_monthly": [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="scale_class", value_set=list(SCALE_CLASSES)),
        gxe.ExpectColumnValuesToBeBetween(column="density", min_value=0, max_value=1000),
        gxe.ExpectColumnValuesToBeBetween(column="average_daily_population", min_value=0),
        _share("vacancy_rate"),
        _share("staff_trained_share"),
        _share("release_plan_coverage"),
        _share("out_of_use_share"),
        gxe.ExpectColumnValuesToBeBetween(column="occupancy_in_use", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_national_monthly": [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        # small_optimal (8..25 places) is an overlapping breakdown, a subset of small
        gxe.ExpectColumnValuesToBeInSet(column="scale_class",
                                        value_set=[*SCALE_CLASSES, "small_optimal", "all"]),
        gxe.ExpectColumnValuesToBeBetween(column="density", min_value=0, max_value=1000),
        _share("share_in_overcrowded"),
        _share("share_in_small_scale"),
        _share("vulnerable_in_small_scale_under_18"),
        _share("vulnerable_in_small_scale_18_22"),
        _share("vulnerable_in_small_scale_female"),
        _share("out_of_use_share"),
        _share("work_participation"),
        _share("education_participation"),
        _share("digital_contact_share"),
        _share("release_plan_coverage"),
        gxe.ExpectColumnValuesToBeBetween(column="census_days", min_value=1, max_value=31),
        _share("coverage"),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_recidivism_cohort": [
        gxe.ExpectColumnValuesToBeInSet(column="group_type",
                                        value_set=["scale_class", "facility_type",
                                                   "small_scale_days"]),
        _share("recid_2y_general"),
        _share("recid_2y_custodial"),
        _share("proven_reoffending_1y"),
        _share("adjusted_rate"),
        _share("ci_low"),
        _share("ci_high"),
        _share("national_rate"),
        gxe.ExpectColumnValuesToBeBetween(column="observed_expected", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="reoffences_per_reoffender_1y", min_value=1),
        _pair("adjusted_rate", "ci_low"),
        _pair("ci_high", "adjusted_rate"),
        _share("standardised_rate"),
        _share("standardised_ci_low"),
        _share("standardised_ci_high"),
        _pair("standardised_rate", "standardised_ci_low"),
        _pair("standardised_ci_high", "standardised_rate"),
        gxe.ExpectColumnValuesToBeBetween(column="standardised_rate_se", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="standardised_difference", min_value=-1,
                                          max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="observed_difference", min_value=-1,
                                          max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="standardised_difference_se", min_value=0),
        _pair("standardised_difference", "standardised_difference_ci_low"),
        _pair("standardised_difference_ci_high", "standardised_difference"),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_regional_monthly": [
        gxe.ExpectColumnValuesToMatchRegex(column="region", regex=r"^[A-Z]{2}[0-9A-Z]{1,2}$"),
        gxe.ExpectColumnValuesToBeBetween(column="facilities", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="density", min_value=0, max_value=1000),
        gxe.ExpectColumnValuesToBeBetween(column="average_daily_population", min_value=0),
        _share("share_in_small_scale"),
        gxe.ExpectColumnValuesToBeBetween(column="census_days", min_value=1, max_value=31),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_facility_recidivism": [
        gxe.ExpectColumnValuesToBeInSet(column="scale_class", value_set=list(SCALE_CLASSES)),
        gxe.ExpectColumnValuesToBeBetween(column="cohort_years", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="releases", min_value=1),
        _pair("releases", "reoffenders"),
        _pair("last_cohort_year", "first_cohort_year"),
        _share("observed_rate"),
        _share("national_rate"),
        _share("limit_95_low"),
        _share("limit_95_high"),
        _share("limit_998_low"),
        _share("limit_998_high"),
        # the 99.8 % limits enclose the 95 % limits (the limit grows with p)
        _pair("limit_95_low", "limit_998_low"),
        _pair("limit_95_high", "limit_95_low"),
        _pair("limit_998_high", "limit_95_high"),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_delivery_status": [
        gxe.ExpectColumnValuesToNotBeNull(column="feed"),
        gxe.ExpectColumnValuesToBeInSet(column="feed", value_set=list(FEEDS)),
        gxe.ExpectColumnValuesToNotBeNull(column="status"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(DELIVERY_STATUSES)),
        gxe.ExpectColumnValuesToNotBeNull(column="as_of_date"),
    ],
}


_COMPARISON_MART_RULES: dict[str, list[gxe.Expectation]] = {
    "mart_facility_snapshot": [
        gxe.ExpectColumnValuesToBeInSet(column="scale_class", value_set=list(SCALE_CLASSES)),
        gxe.ExpectColumnValuesToBeBetween(column="density", min_value=0, max_value=1000),
        gxe.ExpectColumnValuesToBeBetween(column="population", min_value=0),
        _share("out_of_use_share"),
        _share("custodial_vacancy_rate"),
        _share("staff_vacancy_rate"),
        gxe.ExpectColumnValuesToBeBetween(column="detainees_per_custodial_fte", min_value=0),
        _pair("census_date", "month"),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_scale_class_facts": [
        gxe.ExpectColumnValuesToBeInSet(column="scale_class",
                                        value_set=[*SCALE_CLASSES, "unknown", "all"]),
        gxe.ExpectColumnValuesToBeInSet(column="source",
                                        value_set=["facility_census", "reference_register"]),
        gxe.ExpectColumnValuesToBeBetween(column="facilities", min_value=0),
        _pair("facilities", "facilities_small_optimal"),
        _pair("facilities", "facilities_with_population"),
        _share("share_of_facilities"),
        _share("share_of_population"),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
    "mart_national_reference": [
        gxe.ExpectColumnValuesToMatchRegex(column="flag", regex=r"^[a-z]{1,4}$"),
    ],
    "mart_national_density_comparison": [
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=[
            "penstat:facility_census", "eurostat:crim_pris_cap"]),
        gxe.ExpectColumnValuesToBeBetween(column="density", min_value=0, max_value=1000),
    ],
    "mart_return_to_prison_cohort": [
        gxe.ExpectColumnValuesToBeInSet(column="group_type",
                                        value_set=["all", "release_type", "offence_type"]),
        _share("return_to_prison_rate"),
        _pair("cohort_size", "returned"),
        gxe.ExpectColumnValuesToBeInSet(column="flag", value_set=list(FLAGS)),
    ],
}
_MART_RULES = {**_PIPELINE_MART_RULES, **_COMPARISON_MART_RULES}

def mart_suite(mart: str) -> gx.ExpectationSuite:
    keys = list(MART_KEYS[mart])
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(MART_COLUMNS[mart])),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=keys),
        *[gxe.ExpectColumnValuesToNotBeNull(column=k) for k in keys
          if not (mart == "mart_delivery_status" and k == "facility_id")],
        *_MART_RULES[mart],
        # every value's own flag: the same letters as the row's (docs/kpis.md)
        *[gxe.ExpectColumnValuesToBeInSet(column=flag_column(c), value_set=list(FLAGS))
          for c in VALUE_FLAG_COLUMNS.get(mart, ())],
    ]
    return gx.ExpectationSuite(
        name=mart_suite_name(mart),
        expectations=[copy.deepcopy(e) for e in expectations],
        meta={"notes": f"Published interface v1 checks for {mart} (published.md); run on the "
                       "staged publication before it becomes current."},
    )


def all_suites() -> list[gx.ExpectationSuite]:
    suites = delivery_suites()
    suites += [mart_suite(m) for m in MART_COLUMNS]
    return suites
