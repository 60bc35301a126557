"""The price of disclosure protection: cells withheld and information lost, before (the
marts' own dbt rules) and after the publisher's disclosure step, on a built warehouse.

    python -m benchmarks.disclosure_price HOME [HOME ...]

For each home (PENSTAT_HOME with a finished dbt build) it copies the warehouse's marts
into an in-memory publication, runs penstat.publication.disclosure.step on it (with an
empty ledger: a first publication) and prints one Markdown row per home: withheld values
per mart, the share of person-days in withheld facility-days, the share of releases in
cohort groups whose rates are withheld, and the step's seconds. docs/kpis.md quotes it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from penstat.contract.layout import Paths
from penstat.contract.published import MART_KEYS, VALUE_FLAG_COLUMNS, WAREHOUSE_MART_COLUMNS
from penstat.core.database import connect
from penstat.publication.disclosure import step
from penstat.publication.disclosure.spec import SPECS

MARTS = ("mart_facility_daily", "mart_facility_monthly", "mart_national_monthly",
         "mart_recidivism_cohort", "mart_facility_recidivism")


def withheld_values(con, catalog: str, mart: str) -> int:
    """Values NULL in the published mart where the source has one."""
    spec = SPECS[mart]
    source_cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'wh' "
        "AND table_schema = ? AND table_name = ?", spec.source.split(".")).fetchall()}
    cols = [c for c in VALUE_FLAG_COLUMNS[mart] if c in source_cols]
    on = " AND ".join(f'm."{k}" = s."{k}"' for k in MART_KEYS[mart])
    terms = " + ".join(f'(m."{c}" IS NULL AND s."{c}" IS NOT NULL)::INT' for c in cols)
    return int(con.execute(f"SELECT coalesce(sum({terms}), 0) FROM {catalog}.marts.{mart} m "
                           f"JOIN wh.{spec.source} s ON {on}").fetchone()[0])


def losses(con, catalog: str) -> tuple[float, float]:
    person_days = con.execute(f"""
        SELECT sum(s.population) FILTER (WHERE m.population IS NULL) / sum(s.population)
        FROM {catalog}.marts.mart_facility_daily m
        JOIN wh.intermediate.int_facility_days s USING (facility_id, census_date)""").fetchone()[0]
    releases = con.execute(f"""
        SELECT sum(s.cohort_size) FILTER (WHERE m.recid_2y_general IS NULL) / sum(s.cohort_size)
        FROM {catalog}.marts.mart_recidivism_cohort m
        JOIN wh.intermediate.int_recidivism_groups s
          USING (cohort_year, group_type, group_value)""").fetchone()[0]
    return float(person_days or 0), float(releases or 0)


def measure(home: Path) -> str:
    con = connect()
    con.execute(f"ATTACH '{Paths(home).warehouse}' AS wh (READ_ONLY)")
    con.execute("ATTACH ':memory:' AS pub")
    con.execute("CREATE SCHEMA pub.marts")
    for mart in MARTS:
        cols = ", ".join(f'"{c}"' for c in WAREHOUSE_MART_COLUMNS[mart])
        con.execute(f"CREATE TABLE pub.marts.{mart} AS SELECT {cols} FROM wh.marts.{mart}")
    before = [withheld_values(con, "wh", m) for m in MARTS]
    loss_before = losses(con, "wh")
    with tempfile.TemporaryDirectory() as scratch:  # an empty ledger: a first publication
        started = time.perf_counter()
        report = step.run(con, Paths(Path(scratch)), catalog="pub")
        seconds = time.perf_counter() - started
    after = [withheld_values(con, "pub", m) for m in MARTS]
    loss_after = losses(con, "pub")
    rows = con.execute("SELECT count(*) FROM wh.marts.mart_facility_daily").fetchone()[0]
    con.close()
    cells = " | ".join(f"{b} -> {a}" for b, a in zip(before, after, strict=True))
    return (f"| {home.name} | {rows} | {cells} | {loss_before[0]:.4%} -> {loss_after[0]:.4%} "
            f"| {loss_before[1]:.2%} -> {loss_after[1]:.2%} | {report.primary_units} / "
            f"{report.secondary_units} | {'pass' if report.as_dict()['success'] else 'FAIL'} "
            f"| {seconds:.1f} s |")


def main(argv: list[str]) -> int:
    print("| home | facility-days | withheld values: daily | monthly | national | cohort "
          "| facility recidivism "
          "| person-days withheld | releases with rates withheld | primary / secondary units "
          "| audit | step time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for home in argv:
        print(measure(Path(home)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
