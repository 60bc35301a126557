"""dbt project: builds on a small hand-made raw layer and checks the marts.

The fixture warehouse is created with penstat.warehouse.schema.create_schema and
filled in code: a register with a superseded snapshot and a capacity change
(NL-0001: 24 places until 2025-01-10, 36 from 2025-01-11), a week of daily
census with a correcting delivery, one month of regime and staffing, and a
handful of releases / reconvictions with an extraction dated 2025-01-15.
Expected values below are computed by hand from these rows. The fixture is
tiny, so disclosure control withholds much of it in the marts (cohorts of 1 or 2
people, regime rates on 27.5 detainees): the hand-computed KPIs are checked on
the intermediate models that compute them before disclosure control, and the
marts are checked for withholding them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import tomllib
from pathlib import Path

import duckdb
import pytest
import yaml

from penstat.contract.feeds import FEEDS
from penstat.contract.published import PIPELINE_MART_COLUMNS
from penstat.core.config import Config
from penstat.core.locations import REPO_ROOT
from penstat.transform.dbt_runner import PROJECT_DIR, BuildReport, DbtBuildFailed, build
from penstat.warehouse.schema import create_schema

REPO = REPO_ROOT


AS_OF = "2025-02-10"
EXTRACTION = dt.datetime(2025, 1, 15, 6, 0, 0)

# The marts this fixture builds, as the published interface (penstat.contract.published)
# lists them: the dbt build must give exactly these columns, in this order.
PUBLISHED_COLUMNS = {mart: list(cols) for mart, cols in PIPELINE_MART_COLUMNS.items()}


def pseudo(label: str) -> str:
    """A stand-in pseudonym (the real one is a keyed hash of person_ref)."""
    return hashlib.sha256(f"fixture-{label}".encode()).hexdigest()


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


# ---------------------------------------------------------------- fixture rows

DELIVERIES = [
    # seq, feed, delivery_id, created_at, period_start, period_end, replaces
    (1, "facility_register", "reg-2024-01", dt.datetime(2024, 1, 5), None, None, None),
    (2, "facility_register", "reg-2025-01", dt.datetime(2025, 1, 6), None, None, None),
    (3, "occupancy", "occ-2025-01-w2", dt.datetime(2025, 1, 15, 2), d("2025-01-08"),
     d("2025-01-14"), None),
    (4, "occupancy", "occ-2025-01-w2-fix", dt.datetime(2025, 1, 16, 2), d("2025-01-09"),
     d("2025-01-09"), "occ-2025-01-w2"),
    (5, "staffing", "staff-2025-01", dt.datetime(2025, 2, 3), d("2025-01-01"),
     d("2025-01-31"), None),
    (6, "recidivism", "cro-extraction-2025", EXTRACTION, d("2021-01-01"), d("2023-12-31"),
     None),
]

# facility_id, name, region, type, security, capacity, operational, group, community,
# valid_from, valid_to
REGISTER_OLD = [  # superseded snapshot (seq 1): must be ignored entirely
    ("NL-0001", "De Kleine Haven", "NL32", "detention_house", "low", 20, 22, 8, True,
     d("2020-01-01"), None),
    ("NL-0002", "PI Groot", "NL33", "prison", "high", 380, 420, None, False,
     d("2015-01-01"), None),
    ("NL-0003", "HvB Midden", "NL31", "remand_centre", "medium", 120, 130, None, False,
     d("2018-06-01"), None),
]
REGISTER = [  # latest full snapshot (seq 2)
    ("NL-0001", "De Kleine Haven", "NL32", "detention_house", "low", 24, 26, 8, True,
     d("2020-01-01"), d("2025-01-10")),
    ("NL-0001", "De Kleine Haven", "NL32", "detention_house", "low", 36, 40, 8, True,
     d("2025-01-11"), None),
    ("NL-0002", "PI Groot", "NL33", "prison", "high", 400, 450, None, False,
     d("2015-01-01"), None),
    ("NL-0003", "HvB Midden", "NL31", "remand_centre", "medium", 120, 130, None, False,
     d("2018-06-01"), None),
    ("NL-0004", "Overgangshuis Oost", "NL21", "transition_house", "open", 12, 12, 6, True,
     d("2019-01-01"), d("2024-12-31")),
]

DAYS = [d("2025-01-08") + dt.timedelta(days=i) for i in range(7)]  # 8..14 January


def census_rows() -> list[tuple]:
    """(facility, date, out_of_use, pop, female, remand, <18, 18-22, admissions, releases)."""
    rows = []
    for day in DAYS:
        # NL-0001: 22 held on 24 places until the 10th, 30 held on 36 places from the 11th
        rows.append(("NL-0001", day, 2, 22 if day.day <= 10 else 30, 3, 0, 2, 5, 1, 1))
        # NL-0002: 430 on 400 places (the 9th is corrected to 470 by seq 4)
        rows.append(("NL-0002", day, 10, 999 if day.day == 9 else 430, 20, 60, 0, 40, 12, 11))
        # NL-0003: 100 on 120 places, 180 on the 12th (density exactly 150: critical)
        rows.append(("NL-0003", day, 0, 180 if day.day == 12 else 100, 10, 30, 1, 12, 5, 4))
    return rows


CENSUS_FIX = [("NL-0002", d("2025-01-09"), 10, 470, 20, 60, 0, 40, 12, 11)]

# facility, month, avg_population, paid work, education, digital, hours, releases, with plan
REGIME = [
    ("NL-0001", "2025-01", 27.5, 20, 10, 25, 9.5, 4, 3),
    ("NL-0002", "2025-01", 440.0, 200, 80, 150, 6.0, 40, 10),
    ("NL-0003", "2025-01", 105.0, 30, 20, 50, None, 12, 2),
]

# facility, month, category, fte, headcount, vacancies_fte, trained
STAFFING = [
    ("NL-0001", "2025-01", "custodial", 8.0, 9, 1.0, 9),
    ("NL-0001", "2025-01", "rehabilitation", 3.5, 4, 0.0, 4),
    ("NL-0001", "2025-01", "education", 1.0, 1, None, None),
    ("NL-0002", "2025-01", "custodial", 110.0, 120, 10.0, 80),
    ("NL-0002", "2025-01", "healthcare", 6.0, 7, 1.0, 5),
    ("NL-0002", "2025-01", "management", 5.0, 5, 0.0, 5),
    ("NL-0003", "2025-01", "custodial", 40.0, 42, 2.0, 30),
    ("NL-0003", "2025-01", "rehabilitation", 4.0, 4, 0.0, 2),
]

# release, person, date, facility, days small, sex, birth year, offence, priors, sentence
RELEASES = [
    ("R1", "P1", d("2021-03-10"), "NL-0002", 0, "M", 1990, "02", 3, 400),
    ("R2", "P2", d("2021-06-01"), "NL-0001", 120, "F", 1995, "07", 0, 120),
    ("R3", "P3", d("2021-07-15"), "NL-0003", 0, "M", 1985, "05", 1, 90),
    ("R4", "P4", d("2021-09-01"), "NL-0002", 0, "M", 2000, "02", 5, 700),
    ("R5", "P5", d("2022-02-01"), "NL-0002", 0, "X", 1998, "09", 2, 300),
    ("R6", "P6", d("2022-05-05"), "NL-0001", 200, "F", 1980, "07", 0, 200),
    ("R7", "P7", d("2023-03-03"), "NL-0002", 0, "M", 1993, "02", 4, 365),
    ("R8", "P1", d("2022-08-01"), "NL-0003", 0, "M", 1990, "05", 4, 60),
    # P4 again in 2021, from the small unit: not a second cohort member (persons, not
    # releases), though C4 falls in this release's window
    ("R9", "P4", d("2021-11-20"), "NL-0001", 40, "M", 2000, "02", 6, 40),
]

# case, person, offence date, conviction date, offence, custodial
RECONVICTIONS = [
    # R1: offence 10 months after release, convicted within 18: general, custodial, proven
    ("C1", "P1", d("2022-01-05"), d("2022-06-01"), "02", True),
    # R2: offence before the release: never counts
    ("C2", "P2", d("2021-05-01"), d("2021-09-01"), "07", False),
    # R3: offence exactly 24 months after release (window end inclusive): general only
    ("C3", "P3", d("2023-07-15"), d("2024-01-10"), "05", False),
    # R4: offence 24 months + 1 day after release: outside the window
    ("C4", "P4", d("2023-09-02"), d("2023-12-01"), "02", True),
    # R5: offence within 12 months but convicted after 18: general + custodial, not proven
    ("C5", "P5", d("2022-12-01"), d("2023-10-01"), "09", True),
    # R7: 2023 cohort, immature at the extraction: not published
    ("C7", "P7", d("2023-04-01"), d("2023-06-01"), "02", False),
    # R8 (P1 again): convicted after the extraction date: does not count
    ("C8", "P1", d("2024-02-01"), d("2025-03-01"), "05", False),
]


def _insert(con, table: str, columns: list[str], rows: list[tuple], seq: int, delivery: str,
            file: str) -> None:
    cols = [*columns, "_delivery_id", "_delivery_seq", "_file", "_row", "_loaded_at"]
    placeholders = ", ".join("?" for _ in cols)
    quoted = ", ".join(f'"{c}"' for c in cols)
    loaded = dt.datetime(2025, 1, 1) + dt.timedelta(days=seq)
    con.executemany(
        f"INSERT INTO {table} ({quoted}) VALUES ({placeholders})",
        [(*r, delivery, seq, file, i, loaded) for i, r in enumerate(rows, start=1)],
    )


def load_fixture(warehouse: Path) -> None:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        create_schema(con)
        for seq, feed, delivery_id, created, p_start, p_end, replaces in DELIVERIES:
            con.execute(
                "INSERT INTO meta.deliveries (delivery_seq, feed, delivery_id, sender, "
                "created_at, period_start, period_end, replaces, manifest_sha256, "
                "content_sha256, rows_loaded, loaded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [seq, feed, delivery_id, "fixture", created, p_start, p_end, replaces,
                 "0" * 64, "0" * 64, 0, created + dt.timedelta(hours=1)],
            )
        reg_cols = ["facility_id", "name", "region", "facility_type", "security_level",
                    "capacity_places", "operational_capacity", "living_group_size",
                    "community_integrated", "valid_from", "valid_to"]
        _insert(con, "raw.facility_register__facilities", reg_cols, REGISTER_OLD, 1,
                "reg-2024-01", "facilities.csv")
        _insert(con, "raw.facility_register__facilities", reg_cols, REGISTER, 2,
                "reg-2025-01", "facilities.csv")
        occ_cols = ["facility_id", "census_date", "places_out_of_use", "population",
                    "population_female", "population_remand", "population_under_18",
                    "population_18_22", "admissions", "releases"]
        _insert(con, "raw.occupancy__occupancy", occ_cols, census_rows(), 3, "occ-2025-01-w2",
                "occupancy.csv")
        _insert(con, "raw.occupancy__occupancy", occ_cols, CENSUS_FIX, 4, "occ-2025-01-w2-fix",
                "occupancy.csv")
        _insert(con, "raw.occupancy__regime",
                ["facility_id", "month", "avg_population", "in_paid_work", "in_education",
                 "with_digital_contact", "avg_hours_out_of_cell", "releases_total",
                 "releases_with_plan"], REGIME, 3, "occ-2025-01-w2", "regime.csv")
        _insert(con, "raw.staffing__staffing",
                ["facility_id", "month", "staff_category", "fte", "headcount",
                 "vacancies_fte", "trained_last_24m"], STAFFING, 5, "staff-2025-01",
                "staffing.csv")
        _insert(con, "raw.recidivism__releases",
                ["release_id", "person_pseudonym", "release_date", "facility_id",
                 "days_in_small_scale", "sex", "birth_year", "index_offence",
                 "prior_convictions", "sentence_days"],
                [(r[0], pseudo(r[1]), *r[2:]) for r in RELEASES], 6, "cro-extraction-2025",
                "releases.csv")
        _insert(con, "raw.recidivism__reconvictions",
                ["case_id", "person_pseudonym", "offence_date", "conviction_date", "offence",
                 "custodial"],
                [(r[0], pseudo(r[1]), *r[2:]) for r in RECONVICTIONS], 6,
                "cro-extraction-2025", "reconvictions.csv")
    finally:
        con.close()


# ---------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, BuildReport, float]:
    home = tmp_path_factory.mktemp("penstat_home")
    load_fixture(home / "warehouse" / "warehouse.duckdb")
    started = time.monotonic()
    report = build(home, {"as_of_date": AS_OF}, docs=False)
    return home, report, time.monotonic() - started


@pytest.fixture
def wh(built):
    home, _, _ = built
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def test_build_succeeds_quickly(built):
    _, report, seconds = built
    assert report.success
    assert report.count("model", "success") >= 15
    assert report.count("test", "pass") >= 40
    assert report.count(status="error") == 0 and report.count(status="fail") == 0
    assert seconds < 120, f"dbt build took {seconds:.1f}s"


def test_unit_tests_ran_and_passed(built):
    _, report, _ = built
    unit = [n for n in report.nodes if n.resource_type == "unit_test"]
    assert len(unit) >= 18, [n.unique_id for n in unit]
    assert {n.status for n in unit} == {"pass"}, [(n.unique_id, n.status) for n in unit]
    names = {n.unique_id.rsplit(".", 1)[-1] for n in unit}
    assert {"test_density_and_occupancy_in_use", "test_monthly_class_majority_and_density",
            "test_national_month_kpis_ratio_of_sums", "test_facility_month_kpis",
            "test_disclosure_days_primary_secondary_partner",
            "test_disclosure_facility_months_all_suppressed_small_facility",
            "test_recidivism_groups_observed_expected", "test_recidivism_disclosure",
            "test_release_attribution_by_days_and_cohort_maturity"} <= names


def test_target_and_logs_live_under_penstat_home(built):
    home, _, _ = built
    assert (home / "dbt" / "target" / "manifest.json").exists()
    assert (home / "dbt" / "target" / "partial_parse.msgpack").exists()
    assert (home / "logs" / "dbt" / "dbt.log").exists()


def test_schemas_are_used_verbatim(wh):
    schemas = {r[0] for r in wh.execute(
        "select distinct table_schema from information_schema.tables").fetchall()}
    assert {"raw", "meta", "staging", "intermediate", "marts"} <= schemas
    assert not any(s.startswith("main_") for s in schemas), schemas


@pytest.mark.parametrize("mart", sorted(PUBLISHED_COLUMNS))
def test_published_marts_have_exactly_the_published_columns(wh, mart):
    cols = [r[0] for r in wh.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts' and table_name = ? order by ordinal_position",
        [mart]).fetchall()]
    assert cols == PUBLISHED_COLUMNS[mart]
    kind = wh.execute(
        "select table_type from information_schema.tables "
        "where table_schema = 'marts' and table_name = ?", [mart]).fetchone()
    assert kind == ("BASE TABLE",)


def test_facility_day_density_by_hand(wh):
    row = wh.execute(
        "select population, capacity_places, places_out_of_use, density, occupancy_in_use, "
        "overcrowding_tier, scale_class from marts.mart_facility_daily "
        "where facility_id = 'NL-0002' and census_date = date '2025-01-09'").fetchone()
    # the correcting delivery (seq 4) wins: 470 held, not 999
    assert row[:3] == (470, 400, 10)
    assert row[3] == pytest.approx(117.5)              # 470 / 400 x 100
    assert row[4] == pytest.approx(470 / 390 * 100)    # 470 / (400 - 10) x 100 = 120.51
    assert row[5:] == ("over", "large")
    tier = wh.execute(
        "select density, overcrowding_tier from marts.mart_facility_daily "
        "where facility_id = 'NL-0003' and census_date = date '2025-01-12'").fetchone()
    assert tier == (pytest.approx(150.0), "critical")  # 180 / 120 x 100


def test_capacity_change_flips_the_daily_class(wh):
    rows = wh.execute(
        "select census_date, capacity_places, scale_class, density "
        "from marts.mart_facility_daily where facility_id = 'NL-0001' "
        "and census_date in (date '2025-01-10', date '2025-01-11') order by 1").fetchall()
    assert rows[0][1:3] == (24, "small") and rows[1][1:3] == (36, "medium")
    assert rows[0][3] == pytest.approx(22 / 24 * 100)
    assert rows[1][3] == pytest.approx(30 / 36 * 100)


def test_facility_month_by_hand(wh):
    row = wh.execute(
        "select scale_class, facility_type, is_detention_house, average_daily_population, "
        "density, detainees_per_custodial_fte, rehab_staff_per_100, vacancy_rate, "
        "staff_trained_share, work_participation, release_plan_coverage, occupancy_in_use, "
        "out_of_use_share from intermediate.int_facility_month_kpis "
        "where facility_id = 'NL-0001' and month = date '2025-01-01'").fetchone()
    # 3 days small (8..10) and 4 days medium (11..14): medium on most days; the RESCALED
    # detention-house criteria need small-scale, so on most days it is not one.
    assert row[:3] == ("medium", "detention_house", False)
    assert row[3] == pytest.approx(186 / 7)            # (3 x 22 + 4 x 30) / 7 days
    assert row[4] == pytest.approx(18600 / 216)        # 186 / (3 x 24 + 4 x 36) x 100
    assert row[5] == pytest.approx(27.5 / 8.0)         # avg_population / custodial FTE
    assert row[6] == pytest.approx((3.5 + 1.0) / 27.5 * 100)
    assert row[7] == pytest.approx(1.0 / (8.0 + 3.5 + 1.0))  # education reports no vacancies
    assert row[8] == pytest.approx(13 / 13)            # headcount of categories reporting
    assert row[9] == pytest.approx(20 / 27.5)
    assert row[10] == pytest.approx(3 / 4)
    assert row[11] == pytest.approx(186 / (3 * 22 + 4 * 34) * 100)  # 2 places out of use a day
    assert row[12] == pytest.approx(14 / 216)          # 7 days x 2 of 216 place-days


def test_facility_month_mart_withholds_rates_on_few_persons(wh):
    """NL-0001 holds 27.5 detainees (< 30): its detainee-based rates are withheld (c);
    4 releases (< 30): stay and plan coverage too. Its census values stay."""
    row = wh.execute(
        "select average_daily_population, density, detainees_per_custodial_fte, "
        "rehab_staff_per_100, work_participation, avg_length_of_stay_days, "
        "release_plan_coverage, vacancy_rate, flag from marts.mart_facility_monthly "
        "where facility_id = 'NL-0001' and month = date '2025-01-01'").fetchone()
    assert row[0] == pytest.approx(186 / 7) and row[1] == pytest.approx(18600 / 216)
    assert row[2:8] == (None,) * 6                     # vacancy base 12.5 FTE < 30 too
    assert "c" in row[8]
    big = wh.execute(
        "select detainees_per_custodial_fte, flag from marts.mart_facility_monthly "
        "where facility_id = 'NL-0002' and month = date '2025-01-01'").fetchone()
    assert big[0] == pytest.approx(440.0 / 110.0)      # 440 detainees: published


def test_national_month_is_a_ratio_of_sums(wh):
    rows = {r[0]: r[1:] for r in wh.execute(
        "select scale_class, facilities, capacity_places, average_daily_population, density, "
        "share_in_overcrowded, share_in_small_scale, vulnerable_in_small_scale_under_18, "
        "detainees_per_custodial_fte from intermediate.int_national_month_kpis "
        "where month = date '2025-01-01'").fetchall()}
    # small_optimal (8..25 places): NL-0001's 24-place days, an extra row inside small
    assert set(rows) == {"small", "small_optimal", "medium", "large", "all"}
    assert rows["small_optimal"][:3] == rows["small"][:3]
    # person-days: NL-0001 3x22+4x30 = 186; NL-0002 6x430+470 = 3050; NL-0003 6x100+180 = 780
    # place-days:  NL-0001 3x24+4x36 = 216; NL-0002 7x400 = 2800;     NL-0003 7x120 = 840
    facilities, capacity, adp, density, overcrowded, small, under18, dpf = rows["all"]
    assert facilities == 3
    assert capacity == pytest.approx(3856 / 7)
    assert adp == pytest.approx(4016 / 7)
    assert density == pytest.approx(401600 / 3856)     # 104.15, not a mean of rates
    mean_of_rates = (18600 / 216 + 305000 / 2800 + 78000 / 840) / 3
    assert density != pytest.approx(mean_of_rates)
    assert overcrowded == pytest.approx((3050 + 180) / 4016)  # NL-0002 all week, NL-0003 12th
    assert small == pytest.approx(66 / 4016)           # NL-0001 on 8..10 January
    assert under18 == pytest.approx(6 / 21)            # 3 days x 2 small of 14 + 0 + 7
    assert dpf == pytest.approx((27.5 + 440 + 105) / (8 + 110 + 40))
    # class rows: facility-days by the class in force that day
    assert rows["medium"][0] == 2                      # NL-0001 (from the 11th) and NL-0003
    assert rows["medium"][3] == pytest.approx(90000 / 984)  # (120 + 780) / (144 + 840) x 100
    assert rows["small"][3] == pytest.approx(6600 / 72)
    assert rows["small"][5] is None and rows["large"][6] is None
    # published: the same, except the under-18 share (3 under-18s on an average day < 30)
    mart = {r[0]: r[1:] for r in wh.execute(
        "select scale_class, density, vulnerable_in_small_scale_under_18, flag "
        "from marts.mart_national_monthly where month = date '2025-01-01'").fetchall()}
    assert mart["all"][0] == pytest.approx(401600 / 3856)
    assert mart["all"][1] is None and "c" in mart["all"][2]
    # January is not fully delivered (census up to the 14th): provisional
    assert all("p" in (flag or "") for _, _, flag in mart.values())


def test_recidivism_cohorts_by_hand(wh):
    rows = {(r[0], r[1], r[2]): r[3:] for r in wh.execute(
        "select cohort_year, group_type, group_value, cohort_size, recid_2y_general, "
        "recid_2y_custodial, proven_reoffending_1y, observed_expected "
        "from intermediate.int_recidivism_groups").fetchall()}
    # 2021's window + waiting period end 2024-06-30, before the 2025-01-15 extraction;
    # 2022's end 2025-06-30 and 2023's 2026-06-30: not mature, absent
    assert {k[0] for k in rows} == {2021}
    # 2021 large: R1 (general, custodial, proven) and R4 (offence 24 months + 1 day)
    # O/E is null: 4 releases cannot carry a risk model (not fitted)
    assert rows[(2021, "scale_class", "large")] == (2, 0.5, 0.5, 0.5, None)
    # 2021 medium: R3, offence exactly at 24 months: general, not custodial, not proven
    assert rows[(2021, "scale_class", "medium")] == (1, 1.0, 0.0, 0.0, None)
    # 2021 small: R2, offence before the release: nothing
    assert rows[(2021, "scale_class", "small")] == (1, 0.0, 0.0, 0.0, None)
    assert rows[(2021, "facility_type", "prison")][0] == 2
    # attribution by days: R2 spent 120 of 120 days in small-scale custody
    assert rows[(2021, "small_scale_days", "majority")][0] == 1
    assert rows[(2021, "small_scale_days", "none")][0] == 3
    sizes = sum(v[0] for k, v in rows.items() if k[1] == "scale_class")
    assert sizes == 4                                  # R1..R4 (R9 is P4's second)
    # the immature 2022 releases still carry their outcomes, judged release by release
    outcomes = {r[0]: r[1:] for r in wh.execute(
        "select release_id, recid_2y_general, recid_2y_custodial, proven_reoffending_1y, "
        "is_cohort_mature from intermediate.int_release_outcomes").fetchall()}
    # R5: offence within 12 months, convicted after 18 (not proven) but within 24 + 6
    assert outcomes["R5"] == (True, True, False, False)
    # R8 (P1 again): C1 predates it, C8 convicted after the extraction date
    assert outcomes["R8"] == (False, False, False, False)


def test_one_person_released_twice_in_a_year_is_one_cohort_member(wh):
    """P4 is released on 2021-09-01 (R4, large) and 2021-11-20 (R9, small): the cohort
    counts P4 once, by the first release, matched on the pseudonym (WODC, UK MoJ)."""
    members = dict(wh.execute(
        "select release_id, is_cohort_member from intermediate.int_release_outcomes "
        "where cohort_year = 2021").fetchall())
    assert members == {"R1": True, "R2": True, "R3": True, "R4": True, "R9": False}
    outcome = wh.execute("select recid_2y_general from intermediate.int_release_outcomes "
                         "where release_id = 'R9'").fetchone()[0]
    assert outcome is True  # its own outcome is kept, it is just not a cohort member
    small = wh.execute(
        "select cohort_size, recid_2y_general from intermediate.int_recidivism_groups "
        "where cohort_year = 2021 and group_type = 'scale_class' and group_value = 'small'"
    ).fetchone()
    assert small == (1, 0.0)  # R2 alone: R9 would have made it (2, 0.5)
    pseudonyms = {r[0] for r in wh.execute(
        "select person_pseudonym from intermediate.int_release_outcomes").fetchall()}
    assert "P4" not in pseudonyms and pseudo("P4") in pseudonyms


def test_recidivism_mart_withholds_small_cohorts(wh):
    """Every 2021 group has 1 or 2 releases: sizes (1..4) and rates (< 60) are withheld."""
    rows = wh.execute(
        "select cohort_year, cohort_size, recid_2y_general, adjusted_rate, flag "
        "from marts.mart_recidivism_cohort").fetchall()
    assert rows and {r[0] for r in rows} == {2021}
    assert all(r[1:4] == (None, None, None) and r[4] == "c" for r in rows)


def test_risk_model_refuses_a_tiny_cohort(wh):
    status = wh.execute(
        "select note from intermediate.int_recidivism_risk_model "
        "where model = 'expected' and section = 'status'").fetchone()[0]
    assert status.startswith("not_fitted") and "per parameter" in status
    assert wh.execute("select count(*) from intermediate.int_recidivism_expected "
                      "where expected_2y_general is not null").fetchone()[0] == 0


def test_delivery_status(wh):
    rows = {(r[0], r[1]): r[2:] for r in wh.execute(
        "select feed, facility_id, last_period_received, days_late, last_delivery_id, status "
        "from marts.mart_delivery_status").fetchall()}
    # census up to 14 January: the 15th fell due on the 16th; as of 10 February 25 days late
    assert rows[("occupancy", "NL-0002")] == (d("2025-01-14"), 25, "occ-2025-01-w2-fix", "late")
    assert rows[("occupancy", "NL-0001")] == (d("2025-01-14"), 25, "occ-2025-01-w2", "late")
    # NL-0004 closed on 2024-12-31, before the feed's first day: nothing expected, closed
    assert rows[("occupancy", "NL-0004")] == (None, 0, None, "closed")
    # staffing for January: February is due on 1 March
    assert rows[("staffing", "NL-0003")] == (d("2025-01-01"), 0, "staff-2025-01", "ok")
    assert rows[("facility_register", None)][1:] == (None, "reg-2025-01", "ok")
    # extraction 2025-01-15: the next one is due 2026-01-15
    assert rows[("recidivism", None)] == (d("2023-12-31"), 0, "cro-extraction-2025", "ok")
    assert wh.execute("select distinct as_of_date from marts.mart_delivery_status"
                      ).fetchall() == [(d(AS_OF),)]


def test_no_person_identifier_in_marts(wh):
    cols = {r[0] for r in wh.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts'").fetchall()}
    assert not cols & {"person_ref", "person_pseudonym"}


def test_docs_are_generated_into_reports(built):
    """The pipeline's build writes the dbt docs site under $PENSTAT_HOME/reports/dbt_docs."""
    home, _, _ = built
    build(home, {"as_of_date": AS_OF}, unit_tests=False)  # docs=True: what the pipeline runs
    folder = home / "reports" / "dbt_docs"
    for name in ("index.html", "static_index.html", "manifest.json", "catalog.json"):
        assert (folder / name).is_file(), name
    catalog = (folder / "catalog.json").read_text()
    assert "model.penstat.mart_facility_daily" in catalog
    assert "Authority: WODC" in (folder / "static_index.html").read_text()


def test_every_published_column_is_documented_with_its_kpi_authority(built):
    """Every column of the published marts has a description in the dbt YAML, and every
    KPI column names its authority (kpis.md)."""
    import json

    home, _, _ = built
    manifest = json.loads((home / "dbt" / "target" / "manifest.json").read_text())
    no_authority = {  # identifiers, dimensions, counts, sums, flags: no KPI of their own
        "facility_id", "census_date", "month", "facility_type", "scale_class", "flag",
        "capacity_places", "places_out_of_use", "population", "facilities", "census_days",
        "custodial_fte", "rehab_fte", "cohort_year", "group_type", "group_value",
        "cohort_size", "ci_low", "ci_high", "observed_expected_se", "national_rate",
        "vacancy_rate", "recid_2y_custodial", "adjusted_rate", "reference_group",
        "feed", "last_period_received", "days_late", "last_delivery_id", "status", "as_of_date",
        "last_cohort_year", "first_cohort_year", "cohort_years", "releases", "reoffenders",
        "region",
    }
    for mart, columns in PUBLISHED_COLUMNS.items():
        node = manifest["nodes"][f"model.penstat.{mart}"]
        assert node["config"]["contract"]["enforced"], mart
        for column in columns:
            description = node["columns"].get(column, {}).get("description", "")
            assert len(description) > 20, f"{mart}.{column} is not documented"
            if column not in no_authority:
                assert "Authority" in description, f"{mart}.{column} names no authority"


def test_failed_build_names_the_failing_node(tmp_path):
    """A register snapshot with overlapping intervals fails the build, by name."""
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    load_fixture(warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            "INSERT INTO meta.deliveries VALUES (7, 'facility_register', 'reg-bad', 'fixture', "
            "TIMESTAMP '2025-01-20 00:00:00', NULL, NULL, NULL, ?, ?, 2, "
            "TIMESTAMP '2025-01-20 01:00:00')", ["0" * 64, "0" * 64])
        bad = [REGISTER[2], (*REGISTER[2][:9], d("2020-01-01"), None)]  # NL-0002 twice
        _insert(con, "raw.facility_register__facilities",
                ["facility_id", "name", "region", "facility_type", "security_level",
                 "capacity_places", "operational_capacity", "living_group_size",
                 "community_integrated", "valid_from", "valid_to"], bad, 7, "reg-bad",
                "facilities.csv")
    finally:
        con.close()
    with pytest.raises(DbtBuildFailed) as excinfo:
        build(tmp_path, {"as_of_date": AS_OF})
    message = str(excinfo.value)
    assert "no_overlapping_intervals_stg_facility_register__facilities" in message
    assert "[fail]" in message
    assert excinfo.value.failures


# ---------------------------------------------------------------- project config


def _project_yml() -> dict:
    return yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())


def test_var_defaults_equal_the_toml():
    defaults = _project_yml()["vars"]
    toml_vars = Config.load(REPO / "config" / "penstat.toml").dbt_vars
    assert toml_vars, "no thresholds found in the toml"
    for name, value in toml_vars.items():
        assert name in defaults, f"var {name} is not declared in dbt_project.yml"
        assert defaults[name] == value, f"{name}: yml {defaults[name]!r} != toml {value!r}"
    # and every threshold declared in the yml comes from the toml
    with open(REPO / "config" / "penstat.toml", "rb") as fh:
        sections = set(tomllib.load(fh))
    for name in defaults:
        if name != "as_of_date":
            assert name.split("_", 1)[0] in sections and name in toml_vars, name


def test_feed_cadence_seed_matches_the_contract():
    lines = (PROJECT_DIR / "seeds" / "feed_cadence.csv").read_text().strip().splitlines()
    seed = {line.split(",")[0]: line.split(",")[1] for line in lines[1:]}
    # every monitored feed (the v2 feeds of other publishers are not: Feed.monitored)
    assert seed == {name: feed.cadence for name, feed in FEEDS.items() if feed.monitored}


def test_no_literal_thresholds_in_sql():
    """Thresholds live in vars: model SQL compares only with 0 or 1 literally."""
    comparison = re.compile(r"(?:<=|>=|<>|!=|<|>|=)\s*(\d+(?:\.\d+)?)\b")
    offenders = []
    for sql in sorted((PROJECT_DIR / "models").rglob("*.sql")):
        for number in comparison.findall(sql.read_text()):
            if float(number) not in (0, 1):
                offenders.append((sql.name, number))
    assert not offenders


def test_every_model_states_its_grain():
    for sql in sorted((PROJECT_DIR / "models").rglob("*.sql")):
        first = sql.read_text().lstrip().splitlines()[0]
        assert first.startswith("-- Grain:"), sql.name
