"""The published interface: the marts of a publication, their columns in order, and keys.

This is the one source of the interface dashboards and statisticians build on. The
publisher copies exactly these columns in this order; the gate's mart suites check
them; tests check that the dbt YAML of the marts (dbt_project/models/marts/) and
docs/published.md say the same (tests/unit/contract/test_published_interface.py).

Adding a mart or a column is allowed within interface version 1; renaming or removing
one needs a new version.
"""

from __future__ import annotations

INTERFACE_VERSION = "1"

# Eurostat flag letters of the row-level `flag` column of the pipeline marts, in
# alphabetical order: b break in series, c confidential (withheld), e estimated,
# p provisional (set by dbt, dbt_project/macros/disclosure.sql eurostat_flag), and
# r revised since the previous publication (set by the publisher,
# penstat/publication/revisions.py).
REVISION_FLAG = "r"
# m missing (an input declared unknown, contract v3) and u low reliability (national
# sums with facility-days missing, coverage below 1) are set by dbt too.
ROW_FLAG_LETTERS: tuple[str, ...] = ("b", "c", "e", "m", "p", REVISION_FLAG, "u")

# The values of mart_delivery_status.status (documented in its dbt YAML).
DELIVERY_STATUSES: tuple[str, ...] = ("ok", "late", "closed")

# The marts the pipeline builds from the v1 feeds.
# Beyond published.md v1 (adding is allowed): `flag` on the daily, monthly and national
# marts, detainees_per_custodial_fte on the national mart, and the columns after
# `flag`: more KPIs of docs/kpis.md and the sums that let readers pool months/cohorts.
PIPELINE_MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "mart_facility_daily": (
        "facility_id", "census_date", "facility_type", "scale_class", "capacity_places",
        "places_out_of_use", "population", "density", "occupancy_in_use", "overcrowding_tier",
        "flag",
    ),
    "mart_facility_monthly": (
        "facility_id", "month", "facility_type", "scale_class", "is_detention_house",
        "average_daily_population", "density", "turnover", "avg_length_of_stay_days",
        "detainees_per_custodial_fte", "rehab_staff_per_100", "vacancy_rate",
        "staff_trained_share", "work_participation", "education_participation",
        "digital_contact_share", "release_plan_coverage", "flag",
        "occupancy_in_use", "out_of_use_share",
    ),
    "mart_national_monthly": (
        "month", "scale_class", "facilities", "capacity_places", "average_daily_population",
        "density", "share_in_overcrowded", "share_in_small_scale",
        "vulnerable_in_small_scale_under_18", "vulnerable_in_small_scale_18_22",
        "vulnerable_in_small_scale_female", "detainees_per_custodial_fte", "flag",
        "occupancy_in_use", "out_of_use_share", "rehab_staff_per_100", "work_participation",
        "education_participation", "digital_contact_share", "release_plan_coverage",
        "custodial_fte", "rehab_fte", "census_days", "coverage",
    ),
    "mart_recidivism_cohort": (
        "cohort_year", "group_type", "group_value", "cohort_size", "recid_2y_general",
        "recid_2y_custodial", "proven_reoffending_1y", "observed_expected", "adjusted_rate",
        "ci_low", "ci_high", "flag",
        "reoffences_per_reoffender_1y", "observed_expected_se", "national_rate",
        # issue 13: comparable people by marginal standardisation (docs/kpis.md)
        "reference_group", "observed_difference", "standardised_rate",
        "standardised_rate_se", "standardised_ci_low", "standardised_ci_high",
        "standardised_difference", "standardised_difference_se",
        "standardised_difference_ci_low", "standardised_difference_ci_high",
    ),
    "mart_delivery_status": (
        "feed", "facility_id", "last_period_received", "days_late", "last_delivery_id", "status",
        "as_of_date",
    ),
    # added after interface v1: the regional roll-up (NUTS-2 region of the register)
    "mart_regional_monthly": (
        "month", "region", "facilities", "capacity_places", "average_daily_population",
        "density", "share_in_small_scale", "flag", "census_days",
    ),
    # added after interface v1: per-facility pooled reoffending with funnel limits (WODC)
    "mart_facility_recidivism": (
        "facility_id", "last_cohort_year", "first_cohort_year", "cohort_years",
        "facility_type", "scale_class", "releases", "reoffenders", "observed_rate",
        "national_rate", "limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high",
        "outside_95", "outside_998", "flag",
    ),
}
PIPELINE_MART_KEYS: dict[str, tuple[str, ...]] = {
    "mart_facility_daily": ("facility_id", "census_date"),
    "mart_facility_monthly": ("facility_id", "month"),
    "mart_national_monthly": ("month", "scale_class"),
    "mart_recidivism_cohort": ("cohort_year", "group_type", "group_value"),
    "mart_delivery_status": ("feed", "facility_id"),
    "mart_regional_monthly": ("month", "region"),
    "mart_facility_recidivism": ("facility_id", "last_cohort_year"),
}


# --- Marts for comparisons across sources and publishers (real data; docs/real-data.md) ---
# Added to the published interface (adding marts is allowed). They are empty where a
# warehouse has no such feed (no v2 reference data in the synthetic system), so they
# carry no row-count rule.
COMPARISON_MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "mart_facility_snapshot": (
        "jurisdiction", "facility_id", "month", "census_date", "facility_type", "scale_class",
        "capacity_places", "operational_capacity", "places_out_of_use", "population",
        "density", "occupancy_in_use", "out_of_use_share", "custodial_fte",
        "custodial_vacancies_fte", "education_fte", "staff_fte", "staff_vacancies_fte",
        "detainees_per_custodial_fte", "detainees_per_education_fte",
        "custodial_vacancy_rate", "staff_vacancy_rate", "flag",
    ),
    "mart_scale_class_facts": (
        "jurisdiction", "source", "reference_date", "date_basis", "scale_class", "facilities",
        "facilities_small_optimal", "capacity_places", "facilities_with_population",
        "population", "share_of_facilities", "share_of_population", "flag",
    ),
    "mart_national_reference": (
        "dataset", "indicator", "unit", "geo", "frequency", "period", "value", "flag",
    ),
    "mart_national_density_comparison": (
        "geo", "period", "source", "reference_date", "persons_held", "official_capacity",
        "density", "flag",
    ),
    "mart_return_to_prison_cohort": (
        "jurisdiction", "release_year", "group_type", "group_value", "release_period_start",
        "release_period_end", "follow_up_months", "cohort_size", "returned",
        "return_to_prison_rate", "flag",
    ),
}
COMPARISON_MART_KEYS: dict[str, tuple[str, ...]] = {
    "mart_facility_snapshot": ("facility_id", "month"),
    "mart_scale_class_facts": ("jurisdiction", "source", "reference_date", "scale_class"),
    "mart_national_reference": ("dataset", "indicator", "unit", "geo", "frequency", "period"),
    "mart_national_density_comparison": ("geo", "period", "source"),
    "mart_return_to_prison_cohort": ("jurisdiction", "release_year", "group_type",
                                     "group_value"),
}

# The columns each mart has in the warehouse (what dbt builds and its YAML describes).
WAREHOUSE_MART_COLUMNS: dict[str, tuple[str, ...]] = {**PIPELINE_MART_COLUMNS,
                                                      **COMPARISON_MART_COLUMNS}

# --- Per-value flags (docs/kpis.md, "Disclosure control") ---------------------------
# Every value disclosure control can withhold has a flag column of its own,
# `<column>_flag` (Eurostat letters: c confidential, plus the row's b, e, p), added by
# the publisher's disclosure step (penstat.publication.disclosure) after the mart's own
# columns, in this order. The row's `flag` stays: the letters of all its values.
VALUE_FLAG_COLUMNS: dict[str, tuple[str, ...]] = {
    "mart_facility_daily": ("population", "density", "occupancy_in_use", "overcrowding_tier"),
    "mart_facility_monthly": (
        "average_daily_population", "density", "turnover", "avg_length_of_stay_days",
        "detainees_per_custodial_fte", "rehab_staff_per_100", "vacancy_rate",
        "staff_trained_share", "work_participation", "education_participation",
        "digital_contact_share", "release_plan_coverage", "occupancy_in_use",
    ),
    "mart_national_monthly": (
        "average_daily_population", "density", "share_in_overcrowded", "share_in_small_scale",
        "vulnerable_in_small_scale_under_18", "vulnerable_in_small_scale_18_22",
        "vulnerable_in_small_scale_female", "detainees_per_custodial_fte", "occupancy_in_use",
        "rehab_staff_per_100", "work_participation", "education_participation",
        "digital_contact_share", "release_plan_coverage", "custodial_fte", "rehab_fte",
    ),
    "mart_recidivism_cohort": (
        "cohort_size", "recid_2y_general", "recid_2y_custodial", "proven_reoffending_1y",
        "observed_expected", "adjusted_rate", "ci_low", "ci_high",
        "reoffences_per_reoffender_1y", "observed_expected_se",
    ),
    "mart_facility_recidivism": (
        "releases", "reoffenders", "observed_rate", "limit_95_low", "limit_95_high",
        "limit_998_low", "limit_998_high", "outside_95", "outside_998",
    ),
}


def flag_column(column: str) -> str:
    """The flag column of a value column."""
    return f"{column}_flag"


# Every published mart, in publication order: the warehouse's columns, then the flags.
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    mart: (*columns, *(flag_column(c) for c in VALUE_FLAG_COLUMNS.get(mart, ())))
    for mart, columns in WAREHOUSE_MART_COLUMNS.items()
}
MART_KEYS: dict[str, tuple[str, ...]] = {**PIPELINE_MART_KEYS, **COMPARISON_MART_KEYS}
