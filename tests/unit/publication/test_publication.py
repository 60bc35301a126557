"""Publication: staged, gated on exactly what is published, switched atomically;
a failed gate leaves the last good publication in place."""

from __future__ import annotations

import json
import os

import duckdb
import pytest

from penstat.publication.publish import GateFailed, current_manifest, publish
from penstat.warehouse.schema import connect

# The comparison marts (real data, tests/integration/test_real_data.py); empty is valid for them.
COMPARISON_MARTS_SQL = """
CREATE OR REPLACE TABLE marts.mart_facility_snapshot AS
SELECT * FROM (VALUES
  ('TS', 'TS-0001', DATE '2024-01-01', DATE '2024-01-31', 'prison', 'large', 300, 330, 2, 310,
   103.33, 104.03, 0.0067, 120.0, 3.7, 5.0, 140.0, 6.0, 2.58, 62.0, 0.03, 0.04, NULL::VARCHAR)
) t(jurisdiction, facility_id, month, census_date, facility_type, scale_class, capacity_places,
    operational_capacity, places_out_of_use, population, density, occupancy_in_use,
    out_of_use_share, custodial_fte, custodial_vacancies_fte, education_fte, staff_fte,
    staff_vacancies_fte, detainees_per_custodial_fte, detainees_per_education_fte,
    custodial_vacancy_rate, staff_vacancy_rate, flag);
CREATE OR REPLACE TABLE marts.mart_scale_class_facts AS
SELECT * FROM (VALUES
  ('TS', 'facility_census', DATE '2024-01-31', 'census_date', 'small', 1, 1, 20, 1, 18, 0.5,
   0.05, NULL::VARCHAR),
  ('TS', 'facility_census', DATE '2024-01-31', 'census_date', 'all', 2, 1, 320, 2, 328, NULL,
   NULL, NULL::VARCHAR)
) t(jurisdiction, source, reference_date, date_basis, scale_class, facilities,
    facilities_small_optimal, capacity_places, facilities_with_population, population,
    share_of_facilities, share_of_population, flag);
CREATE OR REPLACE TABLE marts.mart_national_reference (dataset VARCHAR, indicator VARCHAR,
    unit VARCHAR, geo VARCHAR, frequency VARCHAR, period VARCHAR, value DOUBLE, flag VARCHAR);
CREATE OR REPLACE TABLE marts.mart_national_density_comparison (geo VARCHAR, period VARCHAR,
    source VARCHAR, reference_date DATE, persons_held DOUBLE, official_capacity DOUBLE,
    density DOUBLE, flag VARCHAR);
CREATE OR REPLACE TABLE marts.mart_return_to_prison_cohort (jurisdiction VARCHAR,
    release_year INTEGER, group_type VARCHAR, group_value VARCHAR, release_period_start DATE,
    release_period_end DATE, follow_up_months INTEGER, cohort_size BIGINT, returned BIGINT,
    return_to_prison_rate DOUBLE, flag VARCHAR);
CREATE OR REPLACE TABLE marts.mart_regional_monthly (month DATE, region VARCHAR,
    facilities BIGINT, capacity_places DOUBLE, average_daily_population DOUBLE,
    density DOUBLE, share_in_small_scale DOUBLE, flag VARCHAR, census_days BIGINT);
CREATE OR REPLACE TABLE marts.mart_facility_recidivism (facility_id VARCHAR,
    last_cohort_year INTEGER, first_cohort_year INTEGER, cohort_years INTEGER,
    facility_type VARCHAR, scale_class VARCHAR, releases BIGINT, reoffenders BIGINT,
    observed_rate DOUBLE, national_rate DOUBLE, limit_95_low DOUBLE, limit_95_high DOUBLE,
    limit_998_low DOUBLE, limit_998_high DOUBLE, outside_95 BOOLEAN, outside_998 BOOLEAN,
    flag VARCHAR);
"""

MARTS_SQL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE OR REPLACE TABLE marts.mart_facility_daily AS
SELECT * FROM (VALUES
  ('TS-0001', DATE '2024-01-01', 'prison', 'large', 300, 2, 310, 103.33, 104.03, 'over', NULL),
  ('TS-0002', DATE '2024-01-01', 'detention_house', 'small', 20, 0, 18, 90.0, 90.0, 'none', 'c')
) t(facility_id, census_date, facility_type, scale_class, capacity_places, places_out_of_use,
    population, density, occupancy_in_use, overcrowding_tier, flag);
CREATE OR REPLACE TABLE marts.mart_facility_monthly AS
SELECT * FROM (VALUES
  ('TS-0001', DATE '2024-01-01', 'prison', 'large', false, 310.0, 103.33, 0.02, 150.0, 2.57,
   5.0, 0.03, 0.8, 0.4, 0.3, 0.6, 0.75, NULL::VARCHAR, 104.03, 0.0067)
) t(facility_id, month, facility_type, scale_class, is_detention_house, average_daily_population,
    density, turnover, avg_length_of_stay_days, detainees_per_custodial_fte, rehab_staff_per_100,
    vacancy_rate, staff_trained_share, work_participation, education_participation,
    digital_contact_share, release_plan_coverage, flag, occupancy_in_use, out_of_use_share);
CREATE OR REPLACE TABLE marts.mart_national_monthly AS
SELECT * FROM (VALUES
  (DATE '2024-01-01', 'all', 2, 320.0, 328.0, {density}, 0.94, 0.05, 0.5, 0.1, 0.2, 2.6,
   NULL::VARCHAR, 103.0, 0.006, 6.0, 0.4, 0.3, 0.6, 0.7, 126.0, 19.7, 31, 1.0)
) t(month, scale_class, facilities, capacity_places, average_daily_population, density,
    share_in_overcrowded, share_in_small_scale, vulnerable_in_small_scale_under_18,
    vulnerable_in_small_scale_18_22, vulnerable_in_small_scale_female,
    detainees_per_custodial_fte, flag, occupancy_in_use, out_of_use_share, rehab_staff_per_100,
    work_participation, education_participation, digital_contact_share, release_plan_coverage,
    custodial_fte, rehab_fte, census_days, coverage);
CREATE OR REPLACE TABLE marts.mart_recidivism_cohort AS
SELECT * FROM (VALUES
  (2020, 'scale_class', 'large', 120, 0.4, 0.2, 0.3, NULL::DOUBLE, NULL::DOUBLE, NULL::DOUBLE,
   NULL::DOUBLE, NULL::VARCHAR, 1.4, NULL::DOUBLE, 0.42, 'large', 0.0, 0.41, 0.02, 0.37, 0.45,
   0.0, 0.0, 0.0, 0.0)
) t(cohort_year, group_type, group_value, cohort_size, recid_2y_general, recid_2y_custodial,
    proven_reoffending_1y, observed_expected, adjusted_rate, ci_low, ci_high, flag,
    reoffences_per_reoffender_1y, observed_expected_se, national_rate, reference_group,
    observed_difference, standardised_rate, standardised_rate_se, standardised_ci_low,
    standardised_ci_high, standardised_difference, standardised_difference_se,
    standardised_difference_ci_low, standardised_difference_ci_high);
CREATE OR REPLACE TABLE marts.mart_delivery_status AS
SELECT * FROM (VALUES
  ('occupancy', 'TS-0001', DATE '2024-01-01', 3, 'occ-1', 'late', DATE '2024-01-04')
) t(feed, facility_id, last_period_received, days_late, last_delivery_id, status, as_of_date);
""" + COMPARISON_MARTS_SQL


def build_marts(paths, density: float = 102.5) -> None:
    with connect(paths.warehouse) as con:
        con.execute(MARTS_SQL.format(density=density))


def test_publication_holds_duckdb_parquet_and_manifest_and_current_points_to_it(paths):
    build_marts(paths)
    pub = publish(paths)
    current = paths.current_publication
    assert current.is_symlink() and not os.path.isabs(os.readlink(current))
    assert current.resolve() == pub.folder.resolve()
    manifest = json.loads((current / "manifest.json").read_text())
    assert manifest["validation"]["success"] is True
    assert manifest["marts"]["mart_facility_daily"]["rows"] == 2
    con = duckdb.connect(str(current / "published.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM marts.mart_facility_daily").fetchone()[0] == 2
    con.close()
    parquet = duckdb.sql(f"SELECT count(*) FROM '{current}/mart_national_monthly.parquet'")
    assert parquet.fetchall() == [(1,)]
    assert not os.access(pub.folder / "published.duckdb", os.W_OK) or os.geteuid() == 0
    assert oct(os.stat(pub.folder).st_mode & 0o777) == "0o555"


def test_republishing_the_same_marts_is_a_no_op_with_identical_checksums(paths):
    build_marts(paths)
    first = publish(paths)
    second = publish(paths)
    assert second.unchanged and second.version == first.version
    assert second.marts == first.marts


def test_failed_gate_publishes_nothing_and_leaves_current(paths):
    build_marts(paths)
    good = publish(paths)
    build_marts(paths, density=-5.0)  # a negative density breaks mart_national_monthly's suite
    with pytest.raises(GateFailed) as failed:
        publish(paths)
    assert any("mart.mart_national_monthly" in f and "density" in f
               for f in failed.value.failures)
    assert current_manifest(paths)["version"] == good.version
    versions = [p.name for p in paths.published.iterdir() if not p.name.startswith(".")]
    assert sorted(versions) == sorted([good.version, "current"])
    report = json.loads(failed.value.report.read_text())
    assert report["success"] is False


def test_new_marts_make_a_new_version_and_old_versions_stay(paths):
    build_marts(paths)
    first = publish(paths)
    build_marts(paths, density=104.0)
    second = publish(paths)
    assert second.version != first.version
    assert (paths.published / first.version / "manifest.json").is_file()
    assert current_manifest(paths)["version"] == second.version
