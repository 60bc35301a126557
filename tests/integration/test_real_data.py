"""Five real public data sets through the real pipeline, checked against the publishers.

One module fixture runs what `make real` runs (penstat/cli/real.py): the adapters send
contract deliveries, every feed is ingested through the validation gate, dbt builds,
the publication gate passes and `current` switches. Each test then reads the
publication (read-only) and compares it with figures computed here directly from the
published files, without the adapters. About 30 s on two cores.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pytest

from penstat.cli.real import run_real
from penstat.contract.published import COMPARISON_MART_COLUMNS
from penstat.senders.real import data_dir
from penstat.validation.suites import mart_suite_name

REAL = data_dir()
TOLERANCE = 0.05 + 1e-9  # percent_occupied is printed with one decimal


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_real(tmp_path_factory.mktemp("real") / "home", REAL)


@pytest.fixture(scope="module")
def pub(run):
    con = duckdb.connect(str(run.paths.current_publication / "published.duckdb"),
                         read_only=True)
    yield con
    con.close()


def query(con, sql: str, *params) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def read_csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with open(path, newline="", encoding=encoding) as fh:
        return list(csv.DictReader(fh))


# --- the pipeline ----------------------------------------------------------------------


def test_every_delivery_passes_the_gate_and_is_published(run):
    outcomes = {(o["feed"], o["delivery_id"]): o["outcome"] for o in run.outcomes}
    assert set(outcomes.values()) == {"loaded"}, outcomes
    assert len(outcomes) == 9
    manifest = json.loads((run.paths.current_publication / "manifest.json").read_text())
    assert manifest["validation"]["success"] is True
    assert sorted(manifest["deliveries"]) == sorted(f"{f}/{d}" for f, d in outcomes)
    assert {mart_suite_name(m) for m in COMPARISON_MART_COLUMNS} <= \
        set(manifest["validation"]["suites"])
    for mart in COMPARISON_MART_COLUMNS:
        assert manifest["marts"][mart]["rows"] > 0, mart
    assert not list(run.paths.quarantine.rglob("_REJECTED.json"))


def test_the_summary_covers_every_source(run):
    for heading in ("California", "Italy", "United States", "Iowa", "Eurostat"):
        assert heading in run.summary
    saved = run.paths.reports / "real"
    assert (saved / "summary.txt").read_text().strip() == run.summary.strip()
    reports = json.loads((saved / "adapters.json").read_text())
    assert set(reports) == {"california", "italy", "hifld", "iowa", "eurostat"}
    rows = read_csv(saved / "set_aside.csv")
    assert Counter((r["source"], r["rule"]) for r in rows) == {
        ("california", "duplicate_month"): 153,
        ("california", "sex_split_repeats_capacity"): 11,
        ("italy", "no_staff_data"): 5,
    }


# --- California: density = the publisher's percent_occupied --------------------------


def test_california_density_equals_percent_occupied(run, pub):
    lines = read_csv(REAL / "cdcr_monthly" / "monthly_cdcr_population.csv", "ascii")
    set_aside = {row: rule for rule, row, _ in run.reports["california"].set_aside_rows}
    daily = {(f, d.isoformat()): (p, c, dens) for f, d, p, c, dens in query(pub, """
        SELECT facility_id, census_date, population, capacity_places, density
        FROM marts.mart_facility_daily WHERE facility_id LIKE 'US-CA-%'""")}
    snapshot = {(f, d.isoformat()): dens for f, d, dens in query(pub, """
        SELECT facility_id, census_date, density FROM marts.mart_facility_snapshot
        WHERE jurisdiction = 'US-CA'""")}
    compared, worst = 0, 0.0
    for number, line in enumerate(lines, start=1):
        if number in set_aside:
            continue
        year, month = int(line["year"]), int(line["month"])
        day = date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1
        key = (_ca_id(line["institution_name"]), date.fromordinal(day).isoformat())
        population, capacity, density = daily[key]
        assert (population, capacity) == (int(line["total_population"]),
                                          int(line["designed_capacity"])), key
        gap = abs(density - float(line["percent_occupied"]))
        assert gap <= TOLERANCE, (key, density, line["percent_occupied"])
        assert snapshot[key] == density
        worst = max(worst, gap)
        compared += 1
    # 11,178 lines: 11,014 compared, 164 set aside by the documented rules
    assert compared == 11_014
    assert Counter(set_aside.values()) == {"duplicate_month": 153,
                                           "sex_split_repeats_capacity": 11}
    assert compared + len(set_aside) == len(lines) == 11_178
    assert worst <= TOLERANCE  # 4 lines are exactly half-way (x.x5) and rounded down
    assert len(daily) == compared  # nothing else was published for California


def _ca_id(name: str) -> str:
    women = "(FEMALE)" in name or ", WOMEN)" in name
    return "US-CA-" + name.split(" ", 1)[0] + ("W" if women else "")


def test_california_duplicate_rule_keeps_the_largest_design_capacity(run, pub):
    lines = read_csv(REAL / "cdcr_monthly" / "monthly_cdcr_population.csv", "ascii")
    groups = defaultdict(list)
    for line in lines:
        groups[(line["year"], line["month"], line["institution_name"])].append(line)
    duplicates = {k: v for k, v in groups.items() if len(v) > 1}
    assert len(duplicates) == 153
    published = {(f, d.isoformat()): p for f, d, p in query(pub, """
        SELECT facility_id, census_date, population FROM marts.mart_facility_daily
        WHERE facility_id LIKE 'US-CA-%'""")}
    for (year, month, name), group in duplicates.items():
        kept = max(group, key=lambda x: (int(x["designed_capacity"]),
                                         int(x["total_population"])))
        day = date(int(year) + (month == "12"), int(month) % 12 + 1, 1).toordinal() - 1
        assert published[(_ca_id(name), date.fromordinal(day).isoformat())] == \
            int(kept["total_population"])


# --- Italy: density, out-of-use share and staffing from the ministry's files ----------


def _italy(snapshot: str) -> dict[str, dict[str, str]]:
    folder = REAL / "italy_prisons" / f"snapshot_{snapshot}"
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for name in ("capienza_presenze.csv", "personale.csv", "data_aggiornamento.csv"):
        for row in read_csv(folder / name):
            out[row["id_pagina"]].update(row)
    return out


STAFF = {"custodial": "polizia penitenziaria", "management": "amministrativi",
         "education": "educatori"}


def test_italy_density_out_of_use_and_staffing_equal_the_ministry_file(pub):
    published = {(f, d.isoformat()): rest for f, d, *rest in query(pub, """
        SELECT facility_id, census_date, population, density, out_of_use_share,
               detainees_per_custodial_fte, detainees_per_education_fte,
               custodial_vacancy_rate, staff_vacancy_rate, flag
        FROM marts.mart_facility_snapshot WHERE jurisdiction = 'IT'""")}
    daily = {(f, d.isoformat()): dens for f, d, dens in query(pub, """
        SELECT facility_id, census_date, density FROM marts.mart_facility_daily
        WHERE facility_id LIKE 'IT-%'""")}
    density_compared, withheld, staff_compared, no_staff = 0, [], 0, 0
    for snapshot in ("2024-09-12", "2025-01-07"):
        institutions = _italy(snapshot)
        assert len(institutions) == 190
        for key, row in institutions.items():
            fid = f"IT-{key}"
            pop, places = int(row["totale detenuti"]), int(row["posti regolamentari"])
            out = int(row["posti non disponibili"])
            got = published[(fid, row["data_aggiornamento"])]
            population, density, out_share, per_cust, per_edu, cust_vac, staff_vac, flag = got
            assert out_share == out / places  # places, never withheld: all 380
            if density is None:  # withheld by disclosure control
                assert flag == "c" and population is None and per_cust is None
                withheld.append((fid, snapshot, pop))
            else:
                assert population == pop
                assert math.isclose(density, 100 * pop / places, rel_tol=1e-12)
                assert daily[(fid, row["data_aggiornamento"])] == density
                density_compared += 1
            actual = {c: int(row[f"{p} - effettivi"]) for c, p in STAFF.items()}
            planned = {c: int(row[f"{p} - previsti"]) for c, p in STAFF.items()}
            if not any(actual.values()) and not any(planned.values()):
                no_staff += 1
                assert (cust_vac, staff_vac) == (None, None)
                continue
            vac = {c: max(planned[c] - actual[c], 0) for c in STAFF}
            total = sum(actual.values()) + sum(vac.values())
            assert math.isclose(staff_vac, sum(vac.values()) / total, abs_tol=1e-12)
            cust_total = actual["custodial"] + vac["custodial"]
            assert cust_vac == (vac["custodial"] / cust_total if cust_total else None) or \
                math.isclose(cust_vac, vac["custodial"] / cust_total, abs_tol=1e-12)
            if density is not None:
                expected = pop / actual["custodial"] if actual["custodial"] else None
                assert per_cust == expected or math.isclose(per_cust, expected, rel_tol=1e-12)
                expected = pop / actual["education"] if actual["education"] else None
                assert per_edu == expected or math.isclose(per_edu, expected, rel_tol=1e-12)
            staff_compared += 1
    # 380 institution-snapshots: out-of-use share for all; density for 378, 2 withheld
    # (a population of 4, and the partner withheld so it cannot be recovered)
    assert density_compared + len(withheld) == 380
    assert len(withheld) == 2 and sorted(p for *_, p in withheld)[0] == 4
    # staff data for 375 (5 publish six zeros); ratios checked for every one of them
    assert (staff_compared, no_staff) == (375, 5)


def test_italy_national_figures_and_small_scale_facts(pub):
    for snapshot in ("2024-09-12", "2025-01-07"):
        rows = _italy(snapshot).values()
        held = sum(int(r["totale detenuti"]) for r in rows)
        places = sum(int(r["posti regolamentari"]) for r in rows)
        small = [r for r in rows if int(r["posti regolamentari"]) <= 30]
        [(persons, capacity, density)] = query(pub, """
            SELECT persons_held, official_capacity, density
            FROM marts.mart_national_density_comparison
            WHERE geo = 'IT' AND source = 'penstat:facility_census' AND reference_date = ?""",
            snapshot)
        assert (persons, capacity) == (held, places)
        assert math.isclose(density, 100 * held / places, rel_tol=1e-12)
        [(facilities, population, share)] = query(pub, """
            SELECT facilities, population, share_of_population FROM marts.mart_scale_class_facts
            WHERE jurisdiction = 'IT' AND scale_class = 'small' AND reference_date = ?""",
            snapshot)
        small_held = sum(int(r["totale detenuti"]) for r in small)
        assert (facilities, population) == (len(small), small_held)
        assert math.isclose(share, small_held / held, rel_tol=1e-12)
    assert (held, places) == (62_694, 51_276)  # SOURCE.md's 2025 totals


def test_unpublished_census_columns_give_no_kpi_for_california_or_italy(run, pub):
    """CDCR and the Ministry publish no flows or breakdowns (CDCR: no places out of use
    either): the adapters send them empty under contract v3, and turnover, length of
    stay, vulnerable-group shares (and California's in-use occupancy) are published
    empty with flag m, never as numbers computed from zeros (feeds-v3.md)."""
    for jurisdiction, prefix in (("US-CA", "US-CA-%"), ("IT", "IT-%")):
        [(months, numbers, unflagged)] = query(pub, """
            SELECT count(*),
                   count(turnover) + count(avg_length_of_stay_days),
                   count(*) FILTER (WHERE coalesce(flag, '') NOT LIKE '%m%')
            FROM marts.mart_facility_monthly WHERE facility_id LIKE ?""", prefix)
        assert months > 0, jurisdiction
        assert (numbers, unflagged) == (0, 0), jurisdiction
    [(ca_days, ca_in_use, ca_unflagged)] = query(pub, """
        SELECT count(*), count(occupancy_in_use) + count(places_out_of_use),
               count(*) FILTER (WHERE coalesce(flag, '') NOT LIKE '%m%')
        FROM marts.mart_facility_daily WHERE facility_id LIKE 'US-CA-%'""")
    assert ca_days > 0 and (ca_in_use, ca_unflagged) == (0, 0)
    # Italy publishes places out of use: its in-use occupancy is a number
    [(it_in_use,)] = query(pub, "SELECT count(occupancy_in_use) FROM marts.mart_facility_daily "
                                "WHERE facility_id LIKE 'IT-%'")
    assert it_in_use > 0
    [(rows, shares, unflagged)] = query(pub, """
        SELECT count(*),
               count(vulnerable_in_small_scale_under_18) + count(vulnerable_in_small_scale_18_22)
               + count(vulnerable_in_small_scale_female),
               count(*) FILTER (WHERE coalesce(flag, '') NOT LIKE '%m%')
        FROM marts.mart_national_monthly WHERE scale_class = 'all'""")
    assert rows > 0 and (shares, unflagged) == (0, 0)
    # the raw layer holds NULL, not 0, and the occupancy deliveries declared v3
    con = duckdb.connect(str(run.paths.warehouse), read_only=True)
    try:
        [(zeros, unknown)] = query(con, """
            SELECT count(*) FILTER (WHERE admissions = 0 OR releases = 0
                                    OR population_female = 0),
                   count(*) FILTER (WHERE admissions IS NULL AND population_female IS NULL)
            FROM raw.occupancy__occupancy""")
    finally:
        con.close()
    assert zeros == 0 and unknown > 0


# --- United States (HIFLD): small-scale facts from the register -----------------------


def test_hifld_scale_class_facts_equal_the_register(pub):
    rows = read_csv(REAL / "hifld_prisons" / "prisons.csv", "utf-8-sig")
    open_ = [r for r in rows if r["STATUS"] == "OPEN"]
    known = [r for r in open_ if r["CAPACITY"] != "-999"]
    small = [r for r in known if int(r["CAPACITY"]) <= 30]
    both = [r for r in known if r["POPULATION"] != "-999"]
    held_small = sum(int(r["POPULATION"]) for r in both if int(r["CAPACITY"]) <= 30)
    held = sum(int(r["POPULATION"]) for r in both)
    facts = {c: rest for c, *rest in query(pub, """
        SELECT scale_class, facilities, population, share_of_facilities, share_of_population
        FROM marts.mart_scale_class_facts WHERE jurisdiction = 'US'""")}
    assert facts["all"][0] == len(open_) == 6_022
    assert facts["small"][:2] == [len(small), held_small]
    assert math.isclose(facts["small"][2], len(small) / len(known), rel_tol=1e-12)
    assert math.isclose(facts["small"][3], held_small / held, rel_tol=1e-12)
    assert facts["unknown"][0] == len(open_) - len(known)


# --- Eurostat: values and flags, cell by cell -----------------------------------------


def _eurostat_cells() -> dict[tuple, tuple]:
    """The TSV parsed here, independently: {(indicator, unit, geo, freq, year): (value, flag)}."""
    raw = (REAL / "eurostat_crim_pris_cap" / "crim_pris_cap_2011-2020.tsv").read_bytes()
    lines = raw.decode("ascii").split("\r\n")  # CRLF, kept: read as bytes
    years = [h.strip() for h in lines[0].split("\t")[1:]]
    cells = {}
    for line in filter(None, lines[1:]):
        key, *values = line.split("\t")
        freq, indicator, unit, geo = key.split(",")
        for year, raw in zip(years, values, strict=True):
            value, _, flag = raw.strip().partition(" ")
            cells[(indicator, unit, geo, freq, year)] = (
                None if value == ":" else float(value), flag or None)
    return cells


def test_eurostat_values_and_flags_read_back_cell_by_cell(run, pub):
    cells = _eurostat_cells()
    assert len(cells) == 1_620 and sum(v is None for v, _ in cells.values()) == 196
    wh = duckdb.connect(str(run.paths.warehouse), read_only=True)
    try:
        raw = {tuple(k): (v, f) for *k, v, f in query(wh, """
            SELECT indicator, unit, geo, frequency, period, value, flag
            FROM raw.national_reference__values WHERE dataset = 'crim_pris_cap'""")}
    finally:
        wh.close()
    published = {tuple(k): (v, f) for *k, v, f in query(pub, """
        SELECT indicator, unit, geo, frequency, period, value, flag
        FROM marts.mart_national_reference WHERE dataset = 'crim_pris_cap'""")}
    assert raw == cells
    assert published == cells


def test_eurostat_density_next_to_penstat(pub):
    cells = _eurostat_cells()
    rows = {(g, p): d for g, p, d in query(pub, """
        SELECT geo, period, density FROM marts.mart_national_density_comparison
        WHERE source = 'eurostat:crim_pris_cap'""")}
    for (geo, year), density in rows.items():
        held = cells.get(("PRIS_ACT_CAP", "NR", geo, "A", year), (None, None))[0]
        places = cells.get(("PRIS_OFF_CAP", "NR", geo, "A", year), (None, None))[0]
        if held is None or not places:
            assert density is None, (geo, year)  # Scotland: no capacity at all
        else:
            assert math.isclose(density, 100 * held / places, rel_tol=1e-12)
    assert rows[("FR", "2019")] == pytest.approx(100 * 70_739 / 61_037)
    assert all(rows[("UKM", y)] is None for y in map(str, range(2011, 2021)))


# --- Iowa: three-year return rates by release year ------------------------------------


def test_iowa_return_rates_by_release_year_equal_the_file(pub):
    rows = read_csv(REAL / "iowa_recidivism" / "iowa_3yr_recidivism.csv")
    cohort, returned = Counter(), Counter()
    for r in rows:
        cohort[int(r["Fiscal Year Released"])] += 1
        returned[int(r["Fiscal Year Released"])] += r["Return to Prison"] == "Yes"
    published = {y: (n, k, rate) for y, n, k, rate in query(pub, """
        SELECT release_year, cohort_size, returned, return_to_prison_rate
        FROM marts.mart_return_to_prison_cohort
        WHERE jurisdiction = 'US-IA' AND group_type = 'all'""")}
    assert sorted(published) == list(range(2010, 2016))
    for year, (n, k, rate) in published.items():
        assert (n, k) == (cohort[year], returned[year])
        assert rate == returned[year] / cohort[year]
    assert sum(cohort.values()) == 26_020


def test_iowa_groups_follow_the_disclosure_rules(pub):
    rows = query(pub, """
        SELECT release_year, group_type, group_value, cohort_size, returned,
               return_to_prison_rate, flag
        FROM marts.mart_return_to_prison_cohort WHERE group_type <> 'all'""")
    totals = {y: (n, k) for y, n, k in query(pub, """
        SELECT release_year, cohort_size, returned FROM marts.mart_return_to_prison_cohort
        WHERE group_type = 'all'""")}
    by_type = defaultdict(list)
    for year, group_type, _, n, k, rate, flag in rows:
        by_type[(year, group_type)].append((n, k, rate, flag))
        if rate is not None:
            assert n >= 60 and 5 <= k <= n - 5 and flag is None
            assert rate == k / n
        else:
            assert flag == "c" and k is None
    for (year, _), cells in by_type.items():
        withheld_sizes = [c for c in cells if c[0] is None]
        withheld_counts = [c for c in cells if c[1] is None]
        # a lone withheld cell could be recovered from the 'all' row: never alone
        assert len(withheld_sizes) != 1 and len(withheld_counts) != 1
        if not withheld_sizes:
            assert sum(c[0] for c in cells) == totals[year][0]
        if not withheld_counts:
            assert sum(c[1] for c in cells) == totals[year][1]


# --- why config/real.toml -------------------------------------------------------------


def test_with_the_default_bound_the_real_census_is_rejected_whole(tmp_path, monkeypatch):
    """Published figures are really that far above capacity: contract v1's default bound
    (2 x operational capacity) rejects California's and both Italian census deliveries
    whole, naming the rule, which is why `make real` raises it (config/real.toml)."""
    from penstat.cli.real import REAL_CONFIG
    from penstat.contract.layout import Paths
    from penstat.core.config import Config
    from penstat.ingestion.pipeline import ingest_feed
    from penstat.senders.real.send import send_all

    monkeypatch.setenv("PENSTAT_HOME", str(tmp_path))
    paths = Paths(tmp_path)
    paths.ensure()
    send_all(paths.inbox, REAL)
    [register] = ingest_feed("facility_register", paths, Config.load())
    assert register.outcome == "loaded"
    outcomes = {o.delivery_id: o for o in ingest_feed("occupancy", paths, Config.load())}
    rejected = {d for d, o in outcomes.items() if o.outcome == "quarantined"}
    assert rejected == {"cdcr-occ-1996-01-2022-12", "it-giustizia-occ-2024-09-12",
                        "it-giustizia-occ-2025-01-07"}
    problem = next(p for p in outcomes["cdcr-occ-1996-01-2022-12"].problems
                   if p.rule == "population_implausible")
    assert problem.rows_affected == 11  # the adapter's population_above_bound count
    real = Config.load(overlays=[REAL_CONFIG])
    assert real.get("validation", "max_population_over_operational") == 6.0
