"""The real-world summary of `make real`, read from the publication (read-only).

Every figure comes from the published marts; the adapters' reports add what the rules
set aside or mapped. Roll-ups are ratios of sums of published values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from penstat.core.database import connect
from penstat.senders.real import SourceReport


def _fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _rules(report: SourceReport) -> str:
    aside = ", ".join(f"{n:,} {rule}" for rule, n in sorted(report.set_aside.items()))
    by_feed: dict[str, int] = {}
    for key, rows in report.rows_delivered.items():
        feed = key.split("/", 1)[0]
        by_feed[feed] = by_feed.get(feed, 0) + rows
    delivered = " + ".join(f"{n:,} {feed}" for feed, n in by_feed.items())
    n = len(report.deliveries)
    return (f"{report.rows_read:,} source rows -> {delivered} rows "
            f"({n} {'delivery' if n == 1 else 'deliveries'}); set aside: {aside or 'none'}")


def california(con: duckdb.DuckDBPyConnection, report: SourceReport | None) -> list[str]:
    years = con.execute("""
        SELECT period, density, persons_held FROM marts.mart_national_density_comparison
        WHERE geo = 'US-CA' AND source = 'penstat:facility_census' ORDER BY period""").fetchall()
    if not years:
        return []
    peak = max(years, key=lambda r: r[1] or 0)
    top = con.execute("""
        SELECT facility_id, strftime(census_date, '%Y-%m'), density
        FROM marts.mart_facility_snapshot WHERE jurisdiction = 'US-CA' AND density IS NOT NULL
        ORDER BY density DESC LIMIT 1""").fetchone()
    small = con.execute("""
        SELECT s.facilities, a.facilities, strftime(a.reference_date, '%Y-%m')
        FROM marts.mart_scale_class_facts a
        LEFT JOIN marts.mart_scale_class_facts s ON s.jurisdiction = a.jurisdiction
         AND s.source = a.source AND s.reference_date = a.reference_date
         AND s.scale_class = 'small'
        WHERE a.jurisdiction = 'US-CA' AND a.scale_class = 'all'
        ORDER BY a.reference_date DESC LIMIT 1""").fetchone()
    out = ["California - CDCR month-end population vs design capacity, 1996-2022"]
    if report:
        out.append(f"  adapter: {_rules(report)}")
    out.append("  state density, persons per 100 design places (December):")
    for i in range(0, len(years), 9):
        out.append("    " + "  ".join(f"{p} {_fmt(d)}" for p, d, _ in years[i:i + 9]))
    out.append(f"  peak: {_fmt(peak[1])} in {peak[0]} ({_fmt(int(peak[2]))} held); highest "
               f"institution-month: {top[0]} {top[1]} at {_fmt(top[2])}")
    out.append(f"  small-scale institutions (<= 30 places): {small[0] or 0} of {small[1]} "
               f"({small[2]})")
    return out


def italy(con: duckdb.DuckDBPyConnection, report: SourceReport | None) -> list[str]:
    rows = con.execute("""
        SELECT census_date, count(*) AS institutions,
               count(*) FILTER (WHERE density IS NOT NULL) AS published,
               count(*) FILTER (WHERE density > 100) AS above_capacity,
               count(*) FILTER (WHERE occupancy_in_use > 100) AS above_in_use,
               sum(custodial_vacancies_fte) / sum(custodial_fte + custodial_vacancies_fte)
                   AS custodial_vacancy,
               sum(population) FILTER (WHERE custodial_fte > 0)
                   / sum(custodial_fte) FILTER (WHERE custodial_fte > 0 AND population IS NOT NULL)
                   AS per_officer,
               sum(places_out_of_use) / sum(capacity_places) AS out_of_use
        FROM marts.mart_facility_snapshot WHERE jurisdiction = 'IT'
        GROUP BY census_date ORDER BY census_date""").fetchall()
    if not rows:
        return []
    national = dict(con.execute("""
        SELECT reference_date, density FROM marts.mart_national_density_comparison
        WHERE geo = 'IT' AND source = 'penstat:facility_census'""").fetchall())
    small = {r[0]: r[1:] for r in con.execute("""
        SELECT reference_date, facilities, population, share_of_population
        FROM marts.mart_scale_class_facts
        WHERE jurisdiction = 'IT' AND scale_class = 'small'""").fetchall()}
    out = ["Italy - Ministero della Giustizia, 190 institutions, two snapshots"]
    if report:
        out.append(f"  adapter: {_rules(report)}")
    out.append("  snapshot     density  above capacity  above places in use  out of use  "
               "custodial vacancy  detainees per officer  small-scale (detainees)")
    for day, n, published, above, above_in_use, vacancy, per_officer, out_of_use in rows:
        s = small.get(day, (0, None, None))
        out.append(
            f"  {day}  {_fmt(national.get(day)):>7}  {above:>5} of {published:<7} "
            f"{above_in_use:>5} of {published:<12} {_fmt(100 * out_of_use):>5} %  "
            f"{_fmt(100 * vacancy):>13} %  {_fmt(per_officer, 2):>21}  "
            f"{s[0]} ({_fmt(s[1])}, {_fmt(100 * s[2], 2) if s[2] is not None else '-'} %)")
        if published < n:
            out.append(f"    ({n - published} institutions' population withheld by disclosure "
                       "control, flag c)")
    return out


def united_states(con: duckdb.DuckDBPyConnection, report: SourceReport | None) -> list[str]:
    facts = {r[0]: r[1:] for r in con.execute("""
        SELECT scale_class, facilities, facilities_small_optimal, population,
               share_of_facilities, share_of_population, facilities_with_population,
               reference_date
        FROM marts.mart_scale_class_facts
        WHERE jurisdiction = 'US' AND source = 'reference_register'""").fetchall()}
    if not facts:
        return []
    known = sum(facts[c][0] for c in ("small", "medium", "large") if c in facts)
    pop_known = sum(facts[c][2] or 0 for c in ("small", "medium", "large") if c in facts)
    small = facts.get("small", (0, 0, 0, 0.0, 0.0, 0, None))
    out = ["United States - HIFLD Prison Boundaries register (capacity and population of "
           "unstated date)"]
    if report:
        out.append(f"  adapter: {_rules(report)}")
    out.append(f"  open facilities: {facts['all'][0]:,}, of which {known:,} with known capacity "
               f"(closed and status-unknown facilities are not counted)")
    out.append(f"  small-scale by RESCALED (<= 30 places): {small[0]:,} "
               f"({_fmt(100 * small[3])} % of those with known capacity), "
               f"{small[1]:,} of them with 8-25 places")
    out.append(f"  detainees in small-scale facilities: {_fmt(small[2])} of {_fmt(pop_known)} "
               f"({_fmt(100 * small[4], 2)} %) in open facilities with known capacity and "
               "population")
    return out


def iowa(con: duckdb.DuckDBPyConnection, report: SourceReport | None) -> list[str]:
    rows = con.execute("""
        SELECT release_year, cohort_size, return_to_prison_rate
        FROM marts.mart_return_to_prison_cohort
        WHERE jurisdiction = 'US-IA' AND group_type = 'all' ORDER BY release_year""").fetchall()
    if not rows:
        return []
    by_type = con.execute("""
        SELECT group_value, sum(returned) / sum(cohort_size), sum(cohort_size)
        FROM marts.mart_return_to_prison_cohort
        WHERE jurisdiction = 'US-IA' AND group_type = 'release_type' AND returned IS NOT NULL
        GROUP BY group_value ORDER BY 3 DESC LIMIT 4""").fetchall()
    out = ["Iowa - DOC releases FY2010-2015, three-year return to prison"]
    if report:
        out.append(f"  adapter: {_rules(report)}")
    out.append("  by release year (fiscal): " + "  ".join(
        f"FY{y} {_fmt(100 * r)} % (n={n:,})" for y, n, r in rows))
    out.append("  by release type (published cells, all years): " + "  ".join(
        f"{t} {_fmt(100 * r)} %" for t, r, _ in by_type))
    return out


def eurostat(con: duckdb.DuckDBPyConnection, report: SourceReport | None) -> list[str]:
    cells = con.execute("SELECT count(*), count(value) FROM marts.mart_national_reference "
                        "WHERE dataset = 'crim_pris_cap'").fetchone()
    if not cells[0]:
        return []
    it = con.execute("""
        SELECT period, source, density, reference_date FROM marts.mart_national_density_comparison
        WHERE geo = 'IT' ORDER BY period, source""").fetchall()
    top = con.execute("""
        SELECT geo, density FROM marts.mart_national_density_comparison
        WHERE source = 'eurostat:crim_pris_cap' AND period = '2020' AND density IS NOT NULL
        ORDER BY density DESC LIMIT 5""").fetchall()
    out = ["National density next to Eurostat crim_pris_cap (persons held per 100 official "
           "places)"]
    if report:
        out.append(f"  adapter: {_rules(report)}; {cells[0]:,} cells, {cells[1]:,} with a "
                   "value")
    out.append("  Italy, Eurostat: " + "  ".join(
        f"{p} {_fmt(d)}" for p, s, d, _ in it if s.startswith("eurostat")))
    out.append("  Italy, penstat from the ministry's institutions: " + "  ".join(
        f"{r} {_fmt(d)}" for _, s, d, r in it if s.startswith("penstat")))
    out.append("  highest in 2020 (Eurostat): " + "  ".join(f"{g} {_fmt(d)}" for g, d in top))
    return out


def summary(publication: Path, reports: Mapping[str, SourceReport] | None = None) -> str:
    reports = reports or {}
    con = connect(Path(publication) / "published.duckdb", read_only=True)
    try:
        sections = [
            california(con, reports.get("california")),
            italy(con, reports.get("italy")),
            united_states(con, reports.get("hifld")),
            iowa(con, reports.get("iowa")),
            eurostat(con, reports.get("eurostat")),
        ]
    finally:
        con.close()
    return "\n\n".join("\n".join(s) for s in sections if s)
