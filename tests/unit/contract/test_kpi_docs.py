"""docs/kpis.md, for statisticians: every KPI of the catalogue is there with its authority,
and every published KPI column is defined in it."""

from __future__ import annotations

import re

import pytest

from penstat.contract.published import MART_COLUMNS, VALUE_FLAG_COLUMNS, flag_column
from penstat.core.locations import REPO_ROOT

REPO = REPO_ROOT
DOC = (REPO / "docs" / "kpis.md").read_text()

# The KPI catalogue (shared/design/kpis.md) and the authority each must name.
CATALOGUE = {
    "scale_class": "RESCALED",
    "is_detention_house": "RESCALED three criteria",
    "density": "SPACE I",
    "occupancy_in_use": "DJI",
    "overcrowding_tier": "French DAP",
    "share_in_overcrowded": "French DAP",
    "out_of_use_share": "DJI",
    "average_daily_population": "BJS",
    "turnover": "BJS",
    "avg_length_of_stay_days": "SPACE I flow method",
    "share_in_small_scale": "Council Conclusions 13-14",
    "vulnerable_in_small_scale": "Council Conclusions 15",
    "detainees_per_custodial_fte": "SPACE I staff module",
    "rehab_staff_per_100": "Council Conclusions 20, 22",
    "vacancy_rate": "none named in the catalogue",
    "staff_trained_share": "Council Conclusions 20",
    "work_participation": "Council Conclusions 21",
    "education_participation": "Commission Recommendation 2023/681",
    "digital_contact_share": "Council Conclusions 16",
    "release_plan_coverage": "Council Conclusions 8, 14",
    "Two-year general prevalence": "WODC",
    "Two-year custodial": "WODC",
    "One-year proven reoffending": "UK MoJ",
    "Risk adjustment": "Justice Data Lab",
}


def table_rows(doc: str) -> dict[str, str]:
    """First cell of every markdown table row -> the whole row."""
    out = {}
    for line in doc.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = line
    return out


@pytest.mark.parametrize("kpi", sorted(CATALOGUE))
def test_every_catalogue_kpi_names_its_authority(kpi):
    authority = CATALOGUE[kpi]
    rows = table_rows(DOC)
    if kpi in rows:  # a table row: the authority is on the same row
        assert authority in rows[kpi], (kpi, rows[kpi])
    else:  # a definition in prose: the authority in the same paragraph
        paragraphs = [p for p in re.split(r"\n\s*\n", DOC) if kpi in p]
        assert any(authority in p for p in paragraphs), kpi


def test_every_published_kpi_column_is_defined_in_the_doc():
    skip = {"facility_id", "census_date", "month", "facility_type", "scale_class", "flag",
            "capacity_places", "places_out_of_use", "population", "facilities", "census_days",
            "cohort_year", "group_type", "group_value", "cohort_size", "is_detention_house",
            "feed", "last_period_received", "days_late", "last_delivery_id", "status"}
    ours = ("mart_facility_daily", "mart_facility_monthly", "mart_national_monthly",
            "mart_recidivism_cohort")
    flags = {flag_column(c) for m in ours for c in VALUE_FLAG_COLUMNS.get(m, ())}
    assert "<column>_flag" in DOC  # the value flags are defined once, by pattern
    missing = sorted({c for m in ours for c in MART_COLUMNS[m] if c not in skip
                      and c not in flags and c not in DOC})
    assert not missing, missing


def test_disclosure_thresholds_in_the_doc_are_the_configured_ones():
    from penstat.core.config import Config

    disclosure = Config.load().values["disclosure"]
    assert f"`min_person_count` = {disclosure['min_person_count']}" in DOC
    assert f"`min_rate_denominator` = {disclosure['min_rate_denominator']}" in DOC
    assert f"`min_recidivism_cohort` = {disclosure['min_recidivism_cohort']}" in DOC
