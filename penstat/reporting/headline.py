"""The headline comparison by scale class, read from a publication (read-only).

Everything here is derived from published columns only, as a reader of the
publication could do it:

- conditions and staffing over the last 12 complete months, ratios of sums
  (months pooled through census_days, custodial_fte and rehab_fte);
- two-year general reoffending by scale class of the facility of final
  discharge, pooled over the published (mature) cohorts: the raw rate with a
  Wilson 95 % interval, and the risk-standardised rate (marginal
  standardisation, kpis.md's figure for comparable people) with its difference
  from large prisons, each the mean of the yearly published figures weighted
  by the year's national cohort, with a 95 % interval from the yearly standard
  errors (yearly models are fitted on disjoint cohorts: independent);
- the small-vs-large gap for comparable people (standardised) and raw;
- the risk model's fit and its adjusted small-vs-large odds ratio
  (risk_model.json of the publication);
- the facilities outside the 99.8 % funnel limits of two-year reoffending in the
  latest pooled window (mart_facility_recidivism), named.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from penstat.contract.layout import Paths
from penstat.core.config import Config
from penstat.core.database import connect
from penstat.transform.standardisation import pool_years

CLASS_ORDER = "CASE {col} WHEN 'small' THEN 1 WHEN 'medium' THEN 2 WHEN 'large' THEN 3 ELSE 4 END"

# Ratios of sums over the last 12 complete (not provisional) months.
CONDITIONS_SQL = f"""
WITH complete AS (
    SELECT * FROM marts.mart_national_monthly
    WHERE coalesce(flag, '') NOT LIKE '%p%'
),
last_year AS (
    SELECT * FROM complete
    WHERE month > (SELECT max(month) FROM complete) - INTERVAL 12 MONTH
)
SELECT scale_class,
       round(avg(facilities), 1) AS facilities,
       round(sum(average_daily_population * census_days) / sum(census_days), 1)
           AS avg_daily_population,
       round(100 * sum(average_daily_population * census_days)
             / sum(capacity_places * census_days), 1) AS density,
       round(100 * sum(share_in_overcrowded * average_daily_population * census_days)
             / sum(average_daily_population * census_days), 1) AS pct_in_overcrowded,
       round(sum(detainees_per_custodial_fte * custodial_fte) / sum(custodial_fte), 2)
           AS detainees_per_custodial_fte,
       round(100 * sum(rehab_fte) / sum(100 * rehab_fte / rehab_staff_per_100), 1)
           AS rehab_staff_per_100
FROM last_year
GROUP BY scale_class
ORDER BY {CLASS_ORDER.format(col='scale_class')}
"""

# One row per published (cohort, group) with the rate and adjusted rate present.
RECIDIVISM_ROWS_SQL = f"""
SELECT group_value, cohort_year, cohort_size, recid_2y_general, adjusted_rate,
       observed_expected_se * national_rate AS adjusted_se, observed_expected, national_rate
FROM marts.mart_recidivism_cohort
WHERE group_type = ? AND recid_2y_general IS NOT NULL AND cohort_size IS NOT NULL
ORDER BY {CLASS_ORDER.format(col='group_value')}, group_value, cohort_year
"""


# Facilities outside the 99.8 % funnel limits in the latest pooled window
# (mart_facility_recidivism; Spiegelhalter 2005), highest rate first.
FUNNEL_OUTLIERS_SQL = """
SELECT facility_id, first_cohort_year, last_cohort_year, releases, observed_rate,
       national_rate, limit_998_low, limit_998_high
FROM marts.mart_facility_recidivism
WHERE last_cohort_year = (SELECT max(last_cohort_year) FROM marts.mart_facility_recidivism)
  AND outside_998
ORDER BY observed_rate DESC, facility_id
"""


# Published standardised figures per (group, cohort), with the year's national cohort
# (the sum of the published sizes of the attribution's groups) as the pooling weight.
STANDARDISED_ROWS_SQL = f"""
SELECT group_value, cohort_year, reference_group, standardised_rate, standardised_rate_se,
       standardised_difference, standardised_difference_se,
       sum(cohort_size) OVER (PARTITION BY cohort_year) AS national_size
FROM marts.mart_recidivism_cohort
WHERE group_type = ?
QUALIFY standardised_rate IS NOT NULL
ORDER BY {CLASS_ORDER.format(col='group_value')}, group_value, cohort_year
"""


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def pct(self, digits: int = 1) -> str:
        return (f"{100 * self.value:.{digits}f} [{100 * self.low:.{digits}f}, "
                f"{100 * self.high:.{digits}f}]")


@dataclass(frozen=True)
class GroupRecidivism:
    group: str
    released: int
    cohorts: str
    raw: Estimate
    adjusted: Estimate | None
    raw_se: float
    adjusted_se: float | None


@dataclass(frozen=True)
class StandardisedGroup:
    group: str
    reference: str
    cohorts: str
    rate: Estimate
    difference: Estimate | None  # None for the reference group itself


def _cohorts(years: list[int]) -> str:
    years = sorted(set(years))
    contiguous = years == list(range(years[0], years[-1] + 1))
    return (f"{years[0]}-{years[-1]}" if contiguous and len(years) > 1
            else ",".join(str(y) for y in years))


def standardised_recidivism(con: duckdb.DuckDBPyConnection, group_type: str = "scale_class",
                            z: float | None = None) -> list[StandardisedGroup]:
    """Risk-standardised rate and difference from the reference group per group, pooled
    over the cohorts where the group's difference is published (the rate over the same
    cohorts), weighted by the cohort's national size."""
    z = _z() if z is None else z
    rows = con.execute(STANDARDISED_ROWS_SQL, [group_type]).fetchall()
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    out = []
    for group, items in groups.items():
        reference = items[0][2]
        is_reference = group == reference
        usable = [r for r in items if r[7] and (is_reference or r[5] is not None)]
        if not usable:
            continue
        weights = [float(r[7]) for r in usable]
        rate = pool_years(weights, [r[3] for r in usable], [r[4] for r in usable])
        difference = None
        if not is_reference:
            pooled = pool_years(weights, [r[5] for r in usable], [r[6] for r in usable])
            difference = Estimate(pooled.value, pooled.value - z * pooled.se,
                                  pooled.value + z * pooled.se)
        out.append(StandardisedGroup(
            group, reference, _cohorts([r[1] for r in usable]),
            Estimate(rate.value, max(0.0, rate.value - z * rate.se),
                     min(1.0, rate.value + z * rate.se)), difference))
    return out


def _z() -> float:
    return float(Config.load().get("recidivism", "ci_z"))


def wilson(successes: float, n: int, z: float) -> Estimate:
    """Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def pooled_recidivism(con: duckdb.DuckDBPyConnection, group_type: str = "scale_class",
                      z: float | None = None,
                      years: set[int] | None = None) -> list[GroupRecidivism]:
    """Raw and adjusted two-year general reoffending per group, pooled over the published
    cohorts (or over `years` only)."""
    z = _z() if z is None else z
    rows = [r for r in con.execute(RECIDIVISM_ROWS_SQL, [group_type]).fetchall()
            if years is None or r[1] in years]
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    out = []
    for group, items in groups.items():
        n = sum(r[2] for r in items)
        reoffenders = sum(r[3] * r[2] for r in items)
        raw = wilson(reoffenders, n, z)
        raw_se = math.sqrt(raw.value * (1 - raw.value) / n)
        adjusted = adjusted_se = None
        modelled = [r for r in items if r[4] is not None and r[5] is not None]
        if modelled and len(modelled) == len(items):
            value = sum(r[4] * r[2] for r in items) / n
            adjusted_se = math.sqrt(sum((r[2] / n) ** 2 * r[5] ** 2 for r in items))
            adjusted = Estimate(value, max(0.0, value - z * adjusted_se),
                                min(1.0, value + z * adjusted_se))
        years = sorted({r[1] for r in items})
        contiguous = years == list(range(years[0], years[-1] + 1))
        cohorts = (f"{years[0]}-{years[-1]}" if contiguous and len(years) > 1
                   else ",".join(str(y) for y in years))
        out.append(GroupRecidivism(group, n, cohorts, raw, adjusted, raw_se, adjusted_se))
    return out


def gap(a: GroupRecidivism, b: GroupRecidivism, z: float,
        adjusted: bool) -> Estimate | None:
    """a - b with a normal 95 % interval (the two groups are different people)."""
    if adjusted:
        if a.adjusted is None or b.adjusted is None:
            return None
        value = a.adjusted.value - b.adjusted.value
        se = math.hypot(a.adjusted_se, b.adjusted_se)
    else:
        value = a.raw.value - b.raw.value
        se = math.hypot(a.raw_se, b.raw_se)
    return Estimate(value, value - z * se, value + z * se)


def small_vs_large(con: duckdb.DuckDBPyConnection, z: float | None = None
                   ) -> tuple[str, Estimate, Estimate | None] | None:
    """The small - large gaps, raw and adjusted, over the cohorts both publish."""
    z = _z() if z is None else z
    years_of = {}
    for group in ("small", "large"):
        years_of[group] = {y for (y,) in con.execute(
            "SELECT cohort_year FROM marts.mart_recidivism_cohort WHERE group_type = "
            "'scale_class' AND group_value = ? AND recid_2y_general IS NOT NULL "
            "AND cohort_size IS NOT NULL", [group]).fetchall()}
    common = years_of["small"] & years_of["large"]
    if not common:
        return None
    found = {g.group: g for g in pooled_recidivism(con, "scale_class", z, years=common)}
    small, large = found["small"], found["large"]
    return (small.cohorts, gap(small, large, z, adjusted=False),
            gap(small, large, z, adjusted=True))


def _format(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _table(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    rel = con.sql(sql)
    rows = [["" if v is None else str(v) for v in r] for r in rel.fetchall()]
    return _format(list(rel.columns), rows)


def _raw_table(groups: list[GroupRecidivism]) -> str:
    rows = [[g.group, str(g.released), g.cohorts, g.raw.pct()] for g in groups]
    return _format(["group", "persons", "cohorts", "raw 2y rate % [95% CI]"], rows)


def _recidivism_table(groups: list[GroupRecidivism]) -> str:
    rows = [[g.group, str(g.released), g.cohorts, g.raw.pct(),
             g.adjusted.pct() if g.adjusted else "(model not fitted)"] for g in groups]
    return _format(["group", "released", "cohorts", "raw 2y rate % [95% CI]",
                    "risk-adjusted % [95% CI]"], rows)


def _standardised_table(groups: list[StandardisedGroup]) -> str:
    rows = [[g.group, g.cohorts, g.rate.pct(),
             g.difference.pct() if g.difference else f"(reference: {g.reference})"]
            for g in groups]
    return _format(["group", "cohorts", "standardised 2y rate % [95% CI]",
                    "difference from reference, points [95% CI]"], rows)


def _model_lines(folder: Path) -> list[str]:
    path = folder / "risk_model.json"
    if not path.is_file():
        return []
    model = json.loads(path.read_text())
    expected = model.get("expected", {})
    lines = [f"Risk model ({expected.get('status', 'unknown')}): "]
    fit = expected.get("fit", {})
    if expected.get("status") == "fitted":
        lines[0] += (f"{fit['releases']:.0f} persons, C-statistic {fit['c_statistic']:.3f}, "
                     f"McFadden R2 {fit['mcfadden_pseudo_r2']:.3f}, Hosmer-Lemeshow p "
                     f"{fit['hosmer_lemeshow_p_value']:.2f}")
    else:
        lines[0] += expected.get("reason") or ""
    comparison = model.get("comparison_scale_class", {})
    small = next((c for c in comparison.get("coefficients", [])
                  if c["term"] == "scale_class_small"), None)
    if small:
        lines.append(
            f"Adjusted odds ratio of reoffending, small vs large (same covariates + class): "
            f"{math.exp(small['estimate']):.2f} [{math.exp(small['ci_low']):.2f}, "
            f"{math.exp(small['ci_high']):.2f}]; log odds {small['estimate']:.3f} "
            f"[{small['ci_low']:.3f}, {small['ci_high']:.3f}]")
    return lines


def funnel_outliers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Lines naming the facilities outside the 99.8 % limits of the latest window, with
    a first line saying which window and how many facilities it compares."""
    try:
        window = con.execute(
            "SELECT max(last_cohort_year), count(*) FILTER (WHERE outside_998 IS NOT NULL) "
            "FROM marts.mart_facility_recidivism WHERE last_cohort_year = "
            "(SELECT max(last_cohort_year) FROM marts.mart_facility_recidivism)").fetchone()
    except duckdb.CatalogException:  # a publication from before the mart existed
        return []
    if window is None or window[0] is None:
        return []
    rows = con.execute(FUNNEL_OUTLIERS_SQL).fetchall()
    first = rows[0][1] if rows else con.execute(
        "SELECT min(first_cohort_year) FROM marts.mart_facility_recidivism "
        "WHERE last_cohort_year = ?", [window[0]]).fetchone()[0]
    lines = [f"Facilities outside the 99.8 % funnel limits of two-year reoffending "
             f"(cohorts {first}-{window[0]} pooled, {window[1]} facilities compared with "
             "the national rate; Spiegelhalter 2005): "
             + (f"{len(rows)}" if rows else "none")]
    for fid, _, _, n, rate, national, low, high in rows:
        side = "above" if rate > high else "below"
        lines.append(f"  {fid}: {100 * rate:.1f} % of {n} releases, {side} the limits "
                     f"[{100 * low:.1f}, {100 * high:.1f}] around the national "
                     f"{100 * national:.1f} %")
    return lines


def headline(publication: Path | None = None) -> str:
    folder = publication or Paths.from_env().current_publication
    con = connect(folder / "published.duckdb", read_only=True)
    z = _z()
    try:
        parts = [
            "Conditions and staffing by scale class (last 12 complete months, ratios of sums)",
            _table(con, CONDITIONS_SQL),
            "",
            "Two-year general reoffending by scale class of the facility of final discharge "
            "(persons: first release in the year; published mature cohorts pooled; raw = "
            "unadjusted)",
        ]
        by_class = pooled_recidivism(con, "scale_class", z)
        parts.append(_raw_table(by_class))
        standardised = standardised_recidivism(con, "scale_class", z)
        if standardised:
            parts += ["", "For comparable people: risk-standardised rate (marginal "
                          "standardisation: every person of the cohort as if discharged from "
                          "the class) and its difference from large prisons",
                      _standardised_table(standardised)]
        small = next((g for g in standardised if g.group == "small" and g.difference), None)
        comparison = small_vs_large(con, z)
        raw_gap = comparison[1] if comparison is not None else None
        if small is not None:
            parts.append(
                f"Small minus large for comparable people (cohorts {small.cohorts}): "
                f"{small.difference.pct()} points"
                + (f"; raw gap {raw_gap.pct()} points" if raw_gap else ""))
        elif raw_gap is not None:
            parts.append(f"Small minus large (cohorts {comparison[0]}): raw gap "
                         f"{raw_gap.pct()} points; standardised gap not available")
        by_days = pooled_recidivism(con, "small_scale_days", z)
        if by_days:
            parts += ["", "The same by share of the sentence spent in small-scale units "
                          "(attribution by days; O/E-adjusted, biased toward the national "
                          "rate: see docs/kpis.md)", _recidivism_table(by_days)]
        model = _model_lines(folder)
        if model:
            parts += ["", *model]
        outliers = funnel_outliers(con)
        if outliers:
            parts += ["", *outliers]
        return "\n".join(parts)
    finally:
        con.close()
