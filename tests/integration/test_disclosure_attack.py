"""Disclosure control holds against an attacker who differences the published marts.

The synthetic system at scale 0.1 (seed 7, the end-to-end test's; one year of
daily occupancy, 2023, to keep it quick; all seven release cohorts) is ingested
and built. An attacker then tries to recover every withheld value from what is
published, by linear programming: every published total that contains withheld
cells is an equation, and for each withheld cell the attacker computes the
smallest and largest value consistent with all of them. A cell is recovered
when that interval leaves one possible (whole) value.

The attacker is given MORE than a real one has: the true overcrowded status of
withheld facility-days, the true regime denominators (avg_population) and which
facility-months enter the national sums. Withheld person counts are known to be
at least 1 (zero is never withheld).

The same attacker, run on a primary-only pattern (secondary suppression left
out), does recover cells: the test can fail.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy.optimize import linprog

from penstat.ingestion.pipeline import ingest_feed
from penstat.senders.synthetic import generate
from penstat.transform.dbt_runner import build
from tests.reliability import penstat_home

SCALE, SEED, YEARS = 0.1, 7, 1
AS_OF = "2026-07-01"
FEEDS = ("facility_register", "occupancy", "staffing", "recidivism")


# ---------------------------------------------------------------- the attacker


class Attack:
    """Unknowns with bounds, linear equations and inequalities; per-unknown intervals."""

    def __init__(self) -> None:
        self.index: dict[object, int] = {}
        self.bounds: list[tuple[float, float | None]] = []
        self.eq: list[tuple[dict[int, float], float]] = []
        self.le: list[tuple[dict[int, float], float]] = []

    def var(self, key: object, low: float = 0.0, high: float | None = None) -> object:
        if key not in self.index:
            self.index[key] = len(self.bounds)
            self.bounds.append((low, high))
        return key

    def equation(self, terms: dict[object, float], rhs: float) -> None:
        if terms:
            self.eq.append(({self.index[k]: c for k, c in terms.items()}, rhs))

    def at_most(self, terms: dict[object, float], rhs: float) -> None:
        self.le.append(({self.index[k]: c for k, c in terms.items()}, rhs))

    def _matrix(self, rows):
        if not rows:
            return None, None
        a = np.zeros((len(rows), len(self.bounds)))
        for i, (terms, _) in enumerate(rows):
            for j, c in terms.items():
                a[i, j] += c
        return a, np.array([rhs for _, rhs in rows], dtype=float)

    def intervals(self) -> dict[object, tuple[float, float]]:
        a_eq, b_eq = self._matrix(self.eq)
        a_ub, b_ub = self._matrix(self.le)
        out = {}
        for key, j in self.index.items():
            ends = []
            for sign in (1.0, -1.0):
                c = np.zeros(len(self.bounds))
                c[j] = sign
                res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                              bounds=self.bounds, method="highs")
                assert res.status in (0, 3), (key, res.message)  # 3: unbounded
                ends.append(sign * res.fun if res.status == 0 else sign * math.inf)
            out[key] = (ends[0], ends[1])
        return out


def pinned(low: float, high: float) -> bool:
    """Only one whole number fits in [low, high]."""
    return math.floor(high + 1e-6) == math.ceil(low - 1e-6)


# ---------------------------------------------------------------- the warehouse


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    home = tmp_path_factory.mktemp("disclosure") / "home"
    with penstat_home(home) as paths:
        generate(paths.inbox, scale=SCALE, seed=SEED, split="year", years=YEARS)
        for feed in FEEDS:
            outcomes = ingest_feed(feed, paths)
            assert {o.outcome for o in outcomes} == {"loaded"}, outcomes
        build(home, {"as_of_date": AS_OF}, docs=False, unit_tests=False)
    con = duckdb.connect(str(Path(home) / "warehouse" / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


# ---------------------------------------------------------------- facility-days


def attack_days(con, withheld: set[tuple[str, object]] | None = None,
                hide_facility_months: set[tuple[str, object]] | None = None):
    """Recover withheld facility-day populations from the facility-month ADP, the
    national class and all rows (ADP x census days) and the overcrowded shares.

    withheld / hide_facility_months: a hypothetical pattern on the true values
    (None: what the marts publish)."""
    truth = {(f, d): (p, over) for f, d, p, over in rows(con, """
        SELECT facility_id, census_date, population, coalesce(density > 100, false)
        FROM intermediate.int_facility_days""")}
    daily = rows(con, """SELECT facility_id, census_date, date_trunc('month', census_date)::DATE,
                                scale_class, population, capacity_places
                         FROM marts.mart_facility_daily""")
    if withheld is None:
        withheld = {(f, d) for f, d, _, _, p, _ in daily if p is None}
    monthly = {(f, m): adp for f, m, adp in rows(con, """
        SELECT facility_id, month, average_daily_population FROM marts.mart_facility_monthly""")}
    if hide_facility_months is not None:
        monthly = {k: (None if k in hide_facility_months else v) for k, v in monthly.items()}
    national = {(m, c): (adp, days, over) for m, c, adp, days, over in rows(con, """
        SELECT month, scale_class, average_daily_population, census_days, share_in_overcrowded
        FROM marts.mart_national_monthly""")}
    # the overlapping small_optimal rows (8..25 places) and the regional roll-up are
    # more totals over the same facility-days
    optimal = {(f, d) for f, d in rows(con, """
        SELECT facility_id, census_date FROM intermediate.int_facility_days
        WHERE is_small_optimal""")}
    region_of = dict(((f, d), r) for f, d, r in rows(con, """
        SELECT d.facility_id, d.census_date, h.region FROM intermediate.int_facility_days d
        JOIN intermediate.int_facility_history h USING (facility_version_key)"""))
    regional = {(m, r): (adp, days) for m, r, adp, days in rows(con, """
        SELECT month, region, average_daily_population, census_days
        FROM marts.mart_regional_monthly""")}
    by_month = defaultdict(list)
    for f, d, m, c, _, cap in daily:
        by_month[m].append((f, d, c, cap))
    results = {}
    for month, cells in by_month.items():
        unknown = [(f, d) for f, d, _, _ in cells if (f, d) in withheld]
        if not unknown:
            continue
        attack = Attack()
        for f, d, _, cap in cells:
            if (f, d) in withheld:
                attack.var((f, d), 1.0, 2.0 * cap if cap else None)

        def margin(members, total, attack=attack):
            known = sum(truth[k][0] for k in members if k not in withheld)
            attack.equation({k: 1.0 for k in members if k in withheld}, total - known)

        for (f, m), adp in monthly.items():
            if m == month and adp is not None:
                members = [(ff, d) for ff, d, _, _ in cells if ff == f]
                margin(members, round(adp * len(members)))
        for c in ("small", "medium", "large", "all", "small_optimal"):
            adp, days, over = national.get((month, c), (None, None, None))
            members = [(f, d) for f, d, cc, _ in cells
                       if c == "all" or cc == c or (c == "small_optimal" and (f, d) in optimal)]
            if adp is not None:
                popdays = round(adp * days)
                margin(members, popdays)
                if over is not None:
                    margin([k for k in members if truth[k][1]], round(over * popdays))
        for (m, region), (adp, days) in regional.items():
            if m == month and adp is not None:
                margin([(f, d) for f, d, _, _ in cells if region_of.get((f, d)) == region],
                       round(adp * days))
        for key, (low, high) in attack.intervals().items():
            results[key] = (low, high, truth[key][0])
    return results


def test_withheld_facility_days_cannot_be_recovered(wh):
    results = attack_days(wh)
    assert results, "nothing is withheld at facility-day level: the test would be vacuous"
    recovered = {k: v for k, v in results.items() if pinned(v[0], v[1])}
    assert not recovered, f"recovered from the published totals: {recovered}"
    # every withheld primary (1..4) keeps an interval reaching 5 or more
    for low, high, value in results.values():
        assert low <= value <= high
        if value < 5:
            assert high >= 5, (low, high, value)


def test_a_lone_withheld_day_would_be_recovered(wh):
    """The attacker works: one withheld day in a facility-month whose ADP is published
    (what primary suppression alone would publish) is given back exactly."""
    day = rows(wh, """SELECT facility_id, census_date FROM intermediate.int_disclosure_days
                      WHERE suppression = 'primary' ORDER BY 1, 2 LIMIT 1""")
    assert day
    results = attack_days(wh, withheld={day[0]}, hide_facility_months=set())
    low, high, value = results[day[0]]
    assert pinned(low, high) and round(low) == value


# ---------------------------------------------------------------- facility-month rates

# KPI: (numerator column in int_facility_months, national column, denominator column)
PAIRED = {
    "work_participation": "in_paid_work",
    "education_participation": "in_education",
    "digital_contact_share": "with_digital_contact",
}


def attack_month_rates(con, kpi: str, withheld: set[tuple[str, object]] | None = None):
    """Recover withheld numerators (persons in work, ...) of a facility-month share from
    the national class and all rows, knowing every facility-month's true denominator."""
    numerator = PAIRED[kpi]
    base = {"in_paid_work": "work", "in_education": "education",
            "with_digital_contact": "digital"}[numerator] + "_avg_population"
    truth = rows(con, f"""
        SELECT m.facility_id, m.month, coalesce(m.scale_class, 'unknown'), m.avg_population,
               m.{numerator}, p.{kpi}
        FROM intermediate.int_facility_months m
        JOIN marts.mart_facility_monthly p USING (facility_id, month)
        WHERE m.avg_population IS NOT NULL AND m.{numerator} IS NOT NULL""")
    if withheld is None:
        withheld = {(f, m) for f, m, _, _, _, published in truth if published is None}
    national = {(m, c): (r, base) for m, c, r, base in rows(con, f"""
        SELECT n.month, n.scale_class, p.{kpi}, n.{base}
        FROM intermediate.int_national_month_kpis n
        JOIN marts.mart_national_monthly p USING (month, scale_class)""")}
    results = {}
    for month in {m for _, m, *_ in truth}:
        cells = [t for t in truth if t[1] == month]
        if not any((f, m) in withheld for f, m, *_ in cells):
            continue
        attack = Attack()
        for f, m, _, denominator, _, _ in cells:
            if (f, m) in withheld:
                attack.var((f, m), 0.0, float(denominator))
        for c in ("small", "medium", "large", "all"):
            rate, total_base = national.get((month, c), (None, None))
            if rate is None:
                continue
            members = [t for t in cells if c == "all" or t[2] == c]
            known = sum(t[4] for t in members if (t[0], t[1]) not in withheld)
            attack.equation({(t[0], t[1]): 1.0 for t in members if (t[0], t[1]) in withheld},
                            round(rate * total_base) - known)
        truth_of = {(t[0], t[1]): t[4] for t in cells}
        for key, (low, high) in attack.intervals().items():
            results[key] = (low, high, truth_of[key])
    return results


@pytest.mark.parametrize("kpi", sorted(PAIRED))
def test_withheld_facility_month_rates_cannot_be_recovered(wh, kpi):
    results = attack_month_rates(wh, kpi)
    assert results, f"no {kpi} withheld: the test would be vacuous"
    denominators = {(f, m): d for f, m, d in rows(wh, """
        SELECT facility_id, month, avg_population FROM intermediate.int_facility_months""")}
    # a unit holding less than one person on average has no one in work whatever is
    # published: its own size, not the published totals, determines it (zero persons)
    recovered = {k: v for k, v in results.items()
                 if pinned(v[0], v[1]) and not pinned(0.0, float(denominators[k]))}
    assert not recovered, f"{kpi}: recovered {recovered}"


def test_without_secondary_suppression_month_rates_are_recovered(wh):
    """Withhold only facility-months under 30 detainees: where one is alone in its
    (month, class), the national row gives its numerator back."""
    primary = {(f, m) for f, m in rows(wh, """
        SELECT facility_id, month FROM intermediate.int_facility_months
        WHERE avg_population < 30 AND in_paid_work IS NOT NULL""")}
    results = attack_month_rates(wh, "work_participation", withheld=primary)
    assert any(pinned(low, high) for low, high, _ in results.values())


# ---------------------------------------------------------------- recidivism


def attack_recidivism(con, measure: str, withheld_rates=None):
    """Recover withheld cohort sizes and reoffender counts: within a cohort year, every
    group_type's groups add up to the same national cohort, whose rate is published."""
    truth = {(y, t, g): (n, c) for y, t, g, n, c in rows(con, f"""
        SELECT cohort_year, group_type, group_value, cohort_size, {measure}
        FROM intermediate.int_recidivism_groups""")}
    published = {(y, t, g): (n, r) for y, t, g, n, r in rows(con, f"""
        SELECT cohort_year, group_type, group_value, cohort_size,
               {measure.replace('reoffenders_2y_general', 'recid_2y_general')
                       .replace('reoffenders_2y_custodial', 'recid_2y_custodial')
                       .replace('proven_reoffenders_1y', 'proven_reoffending_1y')}
        FROM marts.mart_recidivism_cohort""")}
    national_rate = dict(rows(con, "SELECT DISTINCT cohort_year, national_rate "
                                   "FROM marts.mart_recidivism_cohort"))
    results = {}
    for year in sorted({k[0] for k in published}):
        attack = Attack()
        attack.var(("N", year), 0.0)
        attack.var(("C", year), 0.0)
        keys = [k for k in published if k[0] == year]
        for k in keys:
            n_pub, r_pub = published[k]
            rate_hidden = r_pub is None if withheld_rates is None else k in withheld_rates
            if n_pub is None:
                attack.var(("n", k), 1.0)
            if rate_hidden:
                attack.var(("c", k), 0.0, None if n_pub is None else float(n_pub))
                if n_pub is None:
                    attack.at_most({("c", k): 1.0, ("n", k): -1.0}, 0.0)
            elif n_pub is None:  # a published rate on a withheld size: c = rate x n
                attack.var(("c", k), 0.0)
                attack.equation({("c", k): 1.0, ("n", k): -r_pub}, 0.0)
        for group_type in {k[1] for k in keys}:
            members = [k for k in keys if k[1] == group_type]
            n_terms = {("n", k): 1.0 for k in members if published[k][0] is None}
            n_known = sum(published[k][0] for k in members if published[k][0] is not None)
            attack.equation({**n_terms, ("N", year): -1.0}, -n_known)
            c_terms, c_known = {}, 0
            for k in members:
                if ("c", k) in attack.index:
                    c_terms[("c", k)] = 1.0
                else:
                    c_known += truth[k][1]  # = published rate x published size
            attack.equation({**c_terms, ("C", year): -1.0}, -c_known)
        if measure == "reoffenders_2y_general":  # the published national rate
            attack.equation({("C", year): 1.0, ("N", year): -national_rate[year]}, 0.0)
        for key, (low, high) in attack.intervals().items():
            if key[0] in ("n", "c"):
                value = truth[key[1]][0 if key[0] == "n" else 1]
                results[key] = (low, high, value)
    return results


@pytest.mark.parametrize("measure", ["reoffenders_2y_general", "reoffenders_2y_custodial",
                                     "proven_reoffenders_1y"])
def test_withheld_recidivism_cannot_be_recovered(wh, measure):
    results = attack_recidivism(wh, measure)
    assert any(k[0] == "c" for k in results), "no rate withheld: the test would be vacuous"
    recovered = {k: v for k, v in results.items() if pinned(v[0], v[1])}
    assert not recovered, f"{measure}: recovered {recovered}"


def test_without_secondary_suppression_recidivism_is_recovered(wh):
    """Withhold only the rates of cohorts under 60: a group alone under 60 in its
    partition is given back by the other partitions' totals."""
    primary = {(y, t, g) for y, t, g in rows(wh, """
        SELECT cohort_year, group_type, group_value FROM intermediate.int_recidivism_groups
        WHERE cohort_size < 60""")}
    results = attack_recidivism(wh, "reoffenders_2y_general", withheld_rates=primary)
    assert any(pinned(low, high) for (kind, _), (low, high, _) in results.items()
               if kind == "c")
