"""Two marts behaviours on one dbt build of a hand-made warehouse:

- unknown is not zero (contract v3): census values a sender left empty stay NULL, and
  every KPI built on them is published empty with flag m, never a partial sum;
- per-facility pooled reoffending (mart_facility_recidivism) with funnel limits
  (Spiegelhalter 2005): a planted outlier facility is outside the 99.8 % limits and
  named by the headline; the limits are checked against an independent computation.

The warehouse is test_dbt_project's fixture (register, a week of census, staffing),
with NL-0003's breakdowns, flows and places out of use unknown on every day, NL-0002's
admissions unknown on one day, and its recidivism replaced by three mature cohort years
(2019-2021, extraction 2025-01-15) in which NL-0003 reoffends far above the others.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from scipy.stats import binom

from penstat.reporting.headline import funnel_outliers
from penstat.transform.dbt_runner import build
from tests.integration.test_dbt_project import AS_OF, _insert, load_fixture, pseudo

UNKNOWN = ("places_out_of_use", "population_female", "population_remand",
           "population_under_18", "population_18_22", "admissions", "releases")

# facility -> {cohort year: (releases, reoffenders)}
PLANTED = {
    "NL-0001": {2020: (60, 20), 2021: (60, 20)},
    "NL-0002": {2019: (300, 100), 2020: (300, 100), 2021: (300, 99)},
    "NL-0003": {2019: (60, 36), 2020: (60, 36), 2021: (60, 36)},  # the outlier: 60 %
    "NL-0004": {2019: (40, 13)},  # too few releases for a published rate
}


def planted_rows() -> tuple[list[tuple], list[tuple]]:
    releases, reconvictions = [], []
    for fid, years in PLANTED.items():
        for year, (n, reoffenders) in years.items():
            for i in range(n):
                person = pseudo(f"{fid}-{year}-{i}")
                day = dt.date(year, 3, 1) + dt.timedelta(days=i % 200)
                releases.append((f"{fid}-{year}-{i}", person, day, fid, 0, "M", 1990, "05",
                                 1, 200))
                if i < reoffenders:
                    reconvictions.append((f"C-{fid}-{year}-{i}", person,
                                          day + dt.timedelta(days=180),
                                          day + dt.timedelta(days=270), "05", False))
    return releases, reconvictions


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    home = tmp_path_factory.mktemp("penstat_home")
    warehouse = home / "warehouse" / "warehouse.duckdb"
    load_fixture(warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"UPDATE raw.occupancy__occupancy SET "
                    f"{', '.join(f'{c} = NULL' for c in UNKNOWN)} WHERE facility_id = 'NL-0003'")
        con.execute("UPDATE raw.occupancy__occupancy SET admissions = NULL "
                    "WHERE facility_id = 'NL-0002' AND census_date = DATE '2025-01-10'")
        # NL-0005: a unit of 10 places (8..25) holding 2 persons a day, in region NL21:
        # its census values are withheld (1..4 persons), and so are its region's
        _insert(con, "raw.facility_register__facilities",
                ["facility_id", "name", "region", "facility_type", "security_level",
                 "capacity_places", "operational_capacity", "living_group_size",
                 "community_integrated", "valid_from", "valid_to"],
                [("NL-0005", "Kleinschalig Noord", "NL21", "detention_house", "low", 10, 10,
                  8, True, dt.date(2020, 1, 1), None)], 2, "reg-2025-01", "facilities.csv")
        _insert(con, "raw.occupancy__occupancy",
                ["facility_id", "census_date", "places_out_of_use", "population",
                 "population_female", "population_remand", "population_under_18",
                 "population_18_22", "admissions", "releases"],
                [("NL-0005", dt.date(2025, 1, 8) + dt.timedelta(days=i), 0, 2, 0, 0, 0, 1,
                  0, 0) for i in range(6)], 3, "occ-2025-01-w2", "occupancy.csv")
        # ... and no census on the 14th: a facility-day missing from the national sums
        con.execute("DELETE FROM raw.recidivism__releases")
        con.execute("DELETE FROM raw.recidivism__reconvictions")
        releases, reconvictions = planted_rows()
        _insert(con, "raw.recidivism__releases",
                ["release_id", "person_pseudonym", "release_date", "facility_id",
                 "days_in_small_scale", "sex", "birth_year", "index_offence",
                 "prior_convictions", "sentence_days"], releases, 6, "cro-extraction-2025",
                "releases.csv")
        _insert(con, "raw.recidivism__reconvictions",
                ["case_id", "person_pseudonym", "offence_date", "conviction_date", "offence",
                 "custodial"], reconvictions, 6, "cro-extraction-2025", "reconvictions.csv")
    finally:
        con.close()
    build(home, {"as_of_date": AS_OF}, docs=False)
    con = duckdb.connect(str(warehouse), read_only=True)
    yield con
    con.close()


def one(con, sql, params=()):
    rel = con.execute(sql, list(params))
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    assert len(rows) == 1, rows
    return rows[0]


# ------------------------------------------------------------ unknown is not zero

def test_unknown_census_values_stay_null_in_the_warehouse(wh):
    assert wh.execute("SELECT count(*) FROM intermediate.int_facility_days "
                      "WHERE facility_id = 'NL-0003' AND (places_out_of_use IS NOT NULL "
                      "OR admissions IS NOT NULL OR places_in_use IS NOT NULL)"
                      ).fetchone() == (0,)


def test_daily_rows_with_places_out_of_use_unknown_are_empty_and_flagged_m(wh):
    rows = wh.execute("SELECT places_out_of_use, occupancy_in_use, population, density, flag "
                      "FROM marts.mart_facility_daily WHERE facility_id = 'NL-0003'").fetchall()
    assert len(rows) == 7
    for out_of_use, in_use, population, density, flag in rows:
        assert out_of_use is None and in_use is None
        assert population is not None and density is not None  # not built on the unknown
        assert "m" in flag
    known = wh.execute("SELECT count(*) FROM marts.mart_facility_daily "
                       "WHERE facility_id <> 'NL-0003' AND flag LIKE '%m%'").fetchone()
    assert known == (0,)


def test_monthly_kpis_on_unknown_inputs_are_empty_and_flagged_m(wh):
    kpis = one(wh, "SELECT turnover, avg_length_of_stay_days, occupancy_in_use, "
                   "out_of_use_share, density, average_daily_population, is_missing "
                   "FROM intermediate.int_facility_month_kpis WHERE facility_id = 'NL-0003'")
    assert (kpis["turnover"], kpis["avg_length_of_stay_days"], kpis["occupancy_in_use"],
            kpis["out_of_use_share"]) == (None, None, None, None)
    assert kpis["density"] is not None and kpis["average_daily_population"] is not None
    assert kpis["is_missing"] is True
    mart = one(wh, "SELECT turnover, avg_length_of_stay_days, occupancy_in_use, "
                   "out_of_use_share, flag FROM marts.mart_facility_monthly "
                   "WHERE facility_id = 'NL-0003'")
    assert (mart["turnover"], mart["avg_length_of_stay_days"], mart["occupancy_in_use"],
            mart["out_of_use_share"]) == (None, None, None, None)
    assert "m" in mart["flag"]


def test_one_unknown_day_makes_the_month_unknown_not_a_partial_sum(wh):
    # NL-0002: admissions unknown on 2025-01-10 only; releases known every day
    kpis = one(wh, "SELECT admissions, releases, turnover, avg_length_of_stay_days, "
                   "occupancy_in_use, is_missing FROM intermediate.int_facility_month_kpis "
                   "WHERE facility_id = 'NL-0002'")
    assert kpis["admissions"] is None and kpis["turnover"] is None
    assert kpis["releases"] == 7 * 11
    assert kpis["avg_length_of_stay_days"] is not None
    assert kpis["occupancy_in_use"] is not None  # places out of use were known
    assert kpis["is_missing"] is True


def test_facilities_with_everything_known_carry_no_m(wh):
    kpis = one(wh, "SELECT turnover, avg_length_of_stay_days, is_missing "
                   "FROM intermediate.int_facility_month_kpis WHERE facility_id = 'NL-0001'")
    assert kpis["turnover"] is not None and kpis["is_missing"] is False


def test_national_kpis_on_unknown_inputs_are_empty_and_flagged_m(wh):
    row = one(wh, "SELECT occupancy_in_use, out_of_use_share, density, "
                  "vulnerable_in_small_scale_under_18, vulnerable_in_small_scale_18_22, "
                  "vulnerable_in_small_scale_female, flag FROM marts.mart_national_monthly "
                  "WHERE scale_class = 'all'")
    assert row["occupancy_in_use"] is None and row["out_of_use_share"] is None
    assert row["vulnerable_in_small_scale_under_18"] is None
    assert row["vulnerable_in_small_scale_18_22"] is None
    assert row["vulnerable_in_small_scale_female"] is None
    assert row["density"] is not None
    assert "m" in row["flag"]
    # the large class holds no unknown facility-day: its in-use occupancy is published
    large = one(wh, "SELECT k.occupancy_in_use, m.flag FROM intermediate.int_national_month_kpis k "
                    "JOIN marts.mart_national_monthly m USING (month, scale_class) "
                    "WHERE scale_class = 'large'")
    assert large["occupancy_in_use"] is not None and "m" not in (large["flag"] or "")


def test_the_sdmx_series_has_no_observation_for_an_unknown_value(wh):
    indicators = {r[0] for r in wh.execute(
        "SELECT indic FROM exports.export_sdmx_national WHERE scale = 'TOTAL' AND freq = 'M'"
    ).fetchall()}
    assert "DENS" in indicators
    assert "OCC_INUSE" not in indicators and "SHR_SMALL_F" not in indicators
    assert wh.execute("SELECT count(*) FROM exports.export_sdmx_national "
                      "WHERE obs_flag LIKE '%m%'").fetchone() == (0,)


# ------------------------------------------------------------ per-facility funnel

def exact_limit(n: int, theta: float, p: float) -> float:
    """Spiegelhalter (2005) Appendix A.1.1, from the binomial distribution function only:
    r = smallest r with F(r) >= p; alpha = (F(r) - p) / (F(r) - F(r - 1))."""
    r = 0
    while binom.cdf(r, n, theta) < p:
        r += 1
    at_r = binom.cdf(r, n, theta)
    below = binom.cdf(r - 1, n, theta) if r else 0.0
    return min(max((r - (at_r - p) / (at_r - below)) / n, 0.0), 1.0)


def test_the_pooled_window_counts_releases_and_reoffenders(wh):
    rows = {r[0]: r[1:] for r in wh.execute(
        "SELECT facility_id, first_cohort_year, cohort_years, releases, national_rate "
        "FROM marts.mart_facility_recidivism WHERE last_cohort_year = 2021").fetchall()}
    assert set(rows) == set(PLANTED)
    total = sum(n for years in PLANTED.values() for n, _ in years.values())
    reoffenders = sum(r for years in PLANTED.values() for _, r in years.values())
    for fid, (first, years, releases, national) in rows.items():
        assert (first, years) == (2019, 3)
        assert releases == sum(n for n, _ in PLANTED[fid].values())
        assert national == pytest.approx(reoffenders / total)


def test_funnel_limits_are_the_exact_binomial_limits(wh):
    rows = wh.execute(
        "SELECT facility_id, last_cohort_year, releases, national_rate, limit_95_low, "
        "limit_95_high, limit_998_low, limit_998_high FROM marts.mart_facility_recidivism "
        "WHERE releases IS NOT NULL").fetchall()
    assert len(rows) == 4  # one window (2019-2021): disjoint windows, 2021 the latest
    for fid, year, n, theta, *limits in rows:
        expected = [exact_limit(n, theta, p) for p in (0.025, 0.975, 0.001, 0.999)]
        assert limits == pytest.approx(expected, abs=1e-9), (fid, year)
        # about 2 and 3 standard errors (Spiegelhalter): the normal approximation agrees
        se = (theta * (1 - theta) / n) ** 0.5
        assert limits[1] - theta == pytest.approx(1.96 * se, abs=1.5 / n)
        assert limits[3] - theta == pytest.approx(3.09 * se, abs=3 / n)


def test_the_planted_outlier_is_outside_the_998_limits_and_the_others_are_not(wh):
    rows = {r[0]: r[1:] for r in wh.execute(
        "SELECT facility_id, observed_rate, outside_95, outside_998, flag "
        "FROM marts.mart_facility_recidivism WHERE last_cohort_year = 2021").fetchall()}
    assert rows["NL-0003"][0] == pytest.approx(0.6)
    assert rows["NL-0003"][2] is True
    assert rows["NL-0002"][2] is False


def test_small_facilities_are_withheld_with_a_partner(wh):
    rows = {r[0]: r[1:] for r in wh.execute(
        "SELECT facility_id, releases, reoffenders, observed_rate, outside_998, flag "
        "FROM marts.mart_facility_recidivism WHERE last_cohort_year = 2021").fetchall()}
    # NL-0004: 40 releases, below the 60 needed for a rate; NL-0001 (120, the smallest
    # other) is withheld too, or the national rate would give NL-0004's back
    for fid in ("NL-0004", "NL-0001"):
        releases, reoffenders, rate, outside, flag = rows[fid]
        assert releases is not None and (reoffenders, rate, outside) == (None, None, None)
        assert flag == "c"
    assert rows["NL-0002"][4] is None and rows["NL-0003"][4] is None


def test_the_headline_names_the_facilities_outside_the_998_limits(wh):
    lines = funnel_outliers(wh)
    assert "cohorts 2019-2021" in lines[0] and lines[0].endswith(": 1")
    assert len(lines) == 2 and lines[1].strip().startswith("NL-0003: 60.0 %")
    assert "above" in lines[1]


# ------------------------------------------------------------ small_optimal (8..25 places)

def test_small_optimal_is_an_extra_row_for_units_of_8_to_25_places(wh):
    # January 2025: NL-0001 had 24 places (small, 8..25) on the 8th..10th and 36
    # (medium) from the 11th; NL-0005 has 10; NL-0004 (12 places) closed in 2024. So
    # every small facility-day of the month is an optimal one: the two rows agree.
    cols = ("facilities, capacity_places, average_daily_population, density, "
            "avg_under_18, census_days")
    small = one(wh, f"SELECT {cols} FROM intermediate.int_national_month_kpis "
                    "WHERE scale_class = 'small'")
    optimal = one(wh, f"SELECT {cols}, is_series_break FROM intermediate.int_national_month_kpis "
                      "WHERE scale_class = 'small_optimal'")
    assert optimal.pop("is_series_break") is True  # NL-0001 left 8..25 on the 11th
    assert optimal == small
    assert optimal["facilities"] == 2
    assert optimal["average_daily_population"] == pytest.approx((3 * 22 + 6 * 2) / 7)
    # the partition of 'all' is unchanged: small + medium + large
    parts = wh.execute("SELECT sum(facilities) FROM intermediate.int_national_month_kpis "
                       "WHERE scale_class IN ('small', 'medium', 'large')").fetchone()[0]
    assert parts == 5  # NL-0001 counts in small and medium: it changed class in the month


def test_small_optimal_census_values_are_withheld_when_a_unit_moves_across_8_to_25(wh):
    row = one(wh, "SELECT average_daily_population, density, flag "
                  "FROM marts.mart_national_monthly WHERE scale_class = 'small_optimal'")
    assert row["average_daily_population"] is None and row["density"] is None
    assert "b" in row["flag"] and "c" in row["flag"]
    order = [r[0] for r in wh.execute("SELECT scale_class FROM marts.mart_national_monthly")
             .fetchall()]
    assert order == ["small", "small_optimal", "medium", "large", "all"]


# ------------------------------------------------------------ regions

def test_regional_rows_are_ratios_of_sums_by_the_register_region(wh):
    rows = {r[0]: r[1:] for r in wh.execute(
        "SELECT region, facilities, capacity_places, average_daily_population, density, "
        "census_days FROM marts.mart_regional_monthly").fetchall()}
    assert set(rows) == {"NL21", "NL31", "NL32", "NL33"}  # NL-0004 (NL21) closed in 2024
    facilities, capacity, adp, density, days = rows["NL33"]  # NL-0002: 400 places
    assert (facilities, capacity, days) == (1, 400.0, 7)
    population_days = 430 * 6 + 470  # the 9th corrected to 470 by a later delivery
    if adp is not None:
        assert adp == pytest.approx(population_days / 7)
        assert density == pytest.approx(100 * population_days / (400 * 7))
    # regions add up to the national all row (every facility has a region)
    national = one(wh, "SELECT facilities, capacity_places FROM intermediate."
                       "int_national_month_kpis WHERE scale_class = 'all'")
    assert sum(r[0] for r in rows.values()) == national["facilities"]
    assert sum(r[1] for r in rows.values()) == pytest.approx(national["capacity_places"])


def test_a_region_withholds_its_population_where_a_facility_month_does(wh):
    withheld = dict(wh.execute(
        "SELECT facility_id, average_daily_population_withheld "
        "FROM intermediate.int_disclosure_facility_months").fetchall())
    region_of = {"NL-0001": "NL32", "NL-0002": "NL33", "NL-0003": "NL31", "NL-0005": "NL21"}
    rows = {r[0]: r[1:] for r in wh.execute(
        "SELECT region, average_daily_population, density, flag "
        "FROM marts.mart_regional_monthly").fetchall()}
    assert withheld["NL-0005"] and not all(withheld.values())
    for fid, region in region_of.items():
        adp, density, flag = rows[region]
        if withheld[fid]:
            assert (adp, density) == (None, None) and "c" in flag
        else:
            assert adp is not None and density is not None and "c" not in (flag or "")


# ------------------------------------------------------------ coverage of national sums

def test_national_rows_missing_facility_days_carry_their_coverage_and_u(wh):
    # 7 national census dates x 4 facilities on the register (NL-0001, 0002, 0003, 0005);
    # NL-0005 (small, 10 places) has no census on the 14th: 27 of 28 facility-days
    rows = {r[0]: r[1:] for r in wh.execute(
        "SELECT scale_class, coverage, flag, average_daily_population "
        "FROM marts.mart_national_monthly").fetchall()}
    assert rows["all"][0] == pytest.approx(27 / 28)
    small_expected = 3 + 7  # NL-0001 small on the 8th..10th, NL-0005 every day
    assert rows["small"][0] == pytest.approx((small_expected - 1) / small_expected)
    for complete in ("medium", "large"):
        assert rows[complete][0] == 1.0
    # January is still open here (census up to the 14th): p, not u, and never e; a
    # closed month with coverage below 1 is flagged u (dbt unit test
    # test_national_monthly_withholds_and_flags)
    for scale_class, (_, flag, _) in rows.items():
        assert "p" in flag and "u" not in flag and "e" not in flag, scale_class
    # published as is, not imputed: the missing day adds nothing to the sum
    kpis = one(wh, "SELECT average_daily_population FROM intermediate.int_national_month_kpis "
                   "WHERE scale_class = 'all'")
    population_days = wh.execute("SELECT sum(population) FROM intermediate.int_facility_days"
                                 ).fetchone()[0]
    assert kpis["average_daily_population"] == pytest.approx(population_days / 7)
