"""The Great Expectations gate really evaluates: good batches pass, seeded bad ones fail
on the expected expectation, and the committed context is the one
penstat/validation/suites.py writes.

GX 1.24's SQL data source on DuckDB (duckdb-engine) fails every expectation with
an IndexError and reports success=false, which would make every gate fail
for the wrong reason. penstat validates pandas DataFrames read from DuckDB
(read-only) through the committed checkpoints instead; these tests prove that
path evaluates each expectation.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from penstat.contract.published import MART_COLUMNS, MART_KEYS, VALUE_FLAG_COLUMNS, flag_column
from penstat.validation.gx_context import CONTEXT_ROOT, get_context
from penstat.validation.runner import run_suite
from penstat.validation.suites import all_suites, mart_suite_name


def good_occupancy() -> pd.DataFrame:
    return pd.DataFrame({
        "_row": [1, 2, 3],
        "facility_id": ["A", "A", "B"],
        "census_date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
        "places_out_of_use": [0, 1, 0],
        "population": [100, 101, 20],
        "population_female": [5, 5, 20],
        "population_remand": [10, 10, 0],
        "population_under_18": [0, 0, 0],
        "population_18_22": [7, 7, 2],
        "admissions": [1, 2, 0],
        "releases": [0, 1, 0],
    })


def good_national() -> pd.DataFrame:
    frame = _national_values()
    for column in VALUE_FLAG_COLUMNS["mart_national_monthly"]:  # each value's own flag
        frame[flag_column(column)] = frame["flag"]
    return frame


def _national_values() -> pd.DataFrame:
    months = pd.to_datetime(["2024-01-01"] * 4)
    return pd.DataFrame({
        "month": months,
        "scale_class": ["small", "medium", "large", "all"],
        "facilities": [3, 2, 1, 6],
        "capacity_places": [60.0, 200.0, 400.0, 660.0],
        "average_daily_population": [50.0, 190.0, 440.0, 680.0],
        "density": [83.3, 95.0, 110.0, 103.0],
        "share_in_overcrowded": [0.0, 0.0, 1.0, 0.65],
        "share_in_small_scale": [None, None, None, 0.07],
        "vulnerable_in_small_scale_under_18": [None, None, None, 0.5],
        "vulnerable_in_small_scale_18_22": [None, None, None, 0.1],
        "vulnerable_in_small_scale_female": [None, None, None, 0.2],
        "detainees_per_custodial_fte": [1.2, 2.0, 3.1, 2.5],
        "flag": [None, None, "p", None],
        # added after flag (more KPIs and the sums behind them)
        "occupancy_in_use": [84.0, 96.0, 111.0, 104.0],
        "out_of_use_share": [0.0, 0.01, 0.02, 0.015],
        "rehab_staff_per_100": [40.0, 15.0, 9.0, 12.0],
        "work_participation": [0.7, 0.4, 0.4, 0.42],
        "education_participation": [0.5, 0.2, 0.2, 0.21],
        "digital_contact_share": [0.8, 0.5, 0.5, 0.52],
        "release_plan_coverage": [0.8, 0.5, 0.5, 0.52],
        "custodial_fte": [41.7, 95.0, 141.9, 278.6],
        "rehab_fte": [20.0, 28.5, 39.6, 88.1],
        "census_days": [31, 31, 31, 31],
        "coverage": [1.0, 1.0, 1.0, 1.0],
    })


def test_good_delivery_batch_passes_and_every_expectation_is_evaluated():
    result = run_suite("delivery.occupancy.occupancy", good_occupancy())
    suite = get_context().suites.get("delivery.occupancy.occupancy")
    assert result.success, [f.describe() for f in result.failures]
    assert result.evaluated == len(suite.expectations) > 10


def test_bad_delivery_batch_fails_on_the_seeded_expectation_with_its_row():
    bad = good_occupancy()
    bad.loc[1, "population_female"] = 500  # female > population in data row 2
    result = run_suite("delivery.occupancy.occupancy", bad)
    assert not result.success
    [failure] = result.failures
    assert failure.expectation == "expect_column_pair_values_a_to_be_greater_than_b"
    assert failure.columns == ("population", "population_female")
    assert failure.unexpected_count == 1
    assert failure.first_failures == ({"_row": 2},)
    assert failure.exception is None  # a real evaluation, not a crashed metric


def test_duplicate_key_fails_compound_uniqueness():
    bad = good_occupancy()
    bad.loc[2, "facility_id"] = "A"
    bad.loc[2, "census_date"] = pd.Timestamp("2024-01-01")
    result = run_suite("delivery.occupancy.occupancy", bad)
    assert [f.expectation for f in result.failures] == ["expect_compound_columns_to_be_unique"]
    assert {r["_row"] for r in result.failures[0].first_failures} == {1, 3}


def test_good_mart_passes_and_bad_mart_fails_for_the_right_reason():
    keys = MART_KEYS["mart_national_monthly"]
    good = run_suite(mart_suite_name("mart_national_monthly"), good_national(),
                     index_columns=keys)
    assert good.success, [f.describe() for f in good.failures]
    bad_frame = good_national()
    bad_frame.loc[3, "share_in_small_scale"] = 1.7  # a share above 1
    bad = run_suite(mart_suite_name("mart_national_monthly"), bad_frame, index_columns=keys)
    [failure] = bad.failures
    assert failure.expectation == "expect_column_values_to_be_between"
    assert failure.columns == ("share_in_small_scale",)


def test_mart_with_a_renamed_column_breaks_the_published_interface():
    frame = good_national().rename(columns={"density": "density_pct"})
    result = run_suite(mart_suite_name("mart_national_monthly"), frame,
                       index_columns=MART_KEYS["mart_national_monthly"])
    assert "expect_table_columns_to_match_ordered_list" in {f.expectation for f in result.failures}


def test_validation_updates_data_docs(paths):
    run_suite("delivery.occupancy.occupancy", good_occupancy())
    assert (paths.reports / "data_docs" / "index.html").is_file()


@pytest.mark.parametrize("suite", all_suites(), ids=lambda s: s.name)
def test_committed_context_matches_gate_suites(suite):
    """`make suites` regenerates expectations/gx; this fails if someone forgot to."""
    committed = get_context().suites.get(suite.name)

    def shape(s):
        configs = [e.configuration.to_json_dict() for e in s.expectations]
        return sorted(json.dumps({"type": c["type"], "kwargs": c["kwargs"]}, sort_keys=True)
                      for c in configs)

    assert shape(committed) == shape(suite)
    assert (CONTEXT_ROOT / "gx" / "checkpoints" / f"{suite.name}.json").is_file()


def test_every_published_mart_has_a_suite():
    names = {s.name for s in all_suites()}
    assert {mart_suite_name(m) for m in MART_COLUMNS} <= names
