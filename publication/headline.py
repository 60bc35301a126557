"""The headline comparison by scale class, read from the current publication (read-only)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingestion.settings import Paths

# Ratios of sums over the publication's last 12 months (never means of rates).
CONDITIONS_SQL = """
WITH last_year AS (
    SELECT * FROM marts.mart_national_monthly
    WHERE month > (SELECT max(month) FROM marts.mart_national_monthly) - INTERVAL 12 MONTH
),
staff AS (
    SELECT scale_class,
           sum(average_daily_population) AS adp,
           sum(average_daily_population / nullif(detainees_per_custodial_fte, 0)) AS custodial_fte
    FROM marts.mart_facility_monthly
    WHERE month > (SELECT max(month) FROM marts.mart_facility_monthly) - INTERVAL 12 MONTH
      AND detainees_per_custodial_fte IS NOT NULL
    GROUP BY scale_class
)
SELECT n.scale_class,
       round(avg(n.facilities), 1) AS facilities,
       round(avg(n.average_daily_population), 1) AS avg_daily_population,
       round(100 * sum(n.average_daily_population) / sum(n.capacity_places), 1) AS density,
       round(s.adp / s.custodial_fte, 2) AS detainees_per_custodial_fte
FROM last_year n LEFT JOIN staff s USING (scale_class)
GROUP BY n.scale_class, s.adp, s.custodial_fte
ORDER BY CASE n.scale_class WHEN 'small' THEN 1 WHEN 'medium' THEN 2 WHEN 'large' THEN 3 ELSE 4 END
"""

RECIDIVISM_SQL = """
SELECT group_value AS scale_class,
       sum(cohort_size) AS released,
       string_agg(DISTINCT cohort_year::VARCHAR, ',' ORDER BY cohort_year::VARCHAR) AS cohorts,
       round(100 * sum(recid_2y_general * cohort_size) / sum(cohort_size), 1)
           AS recid_2y_general_pct,
       round(100 * sum(adjusted_rate * cohort_size) / nullif(sum(
           CASE WHEN adjusted_rate IS NOT NULL THEN cohort_size END), 0), 1) AS adjusted_pct
FROM marts.mart_recidivism_cohort
WHERE group_type = 'scale_class' AND recid_2y_general IS NOT NULL
GROUP BY group_value
ORDER BY CASE group_value WHEN 'small' THEN 1 WHEN 'medium' THEN 2 WHEN 'large' THEN 3 ELSE 4 END
"""


def _table(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    rel = con.sql(sql)
    cols = rel.columns
    rows = [["" if v is None else str(v) for v in r] for r in rel.fetchall()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def headline(publication: Path | None = None) -> str:
    folder = publication or Paths.from_env().current_publication
    con = duckdb.connect(str(folder / "published.duckdb"), read_only=True)
    try:
        return (
            "Conditions and staffing by scale class (last 12 months, ratios of sums)\n"
            + _table(con, CONDITIONS_SQL)
            + "\n\nTwo-year general recidivism by scale class of the facility of final "
              "discharge (mature cohorts; raw = unadjusted)\n"
            + _table(con, RECIDIVISM_SQL)
        )
    finally:
        con.close()
