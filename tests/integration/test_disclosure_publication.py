"""Disclosure control of whole publications (penstat.publication.disclosure), through the
real pipeline: synthetic deliveries ingested, dbt build, the publisher's disclosure step,
the GX gate and `current`.

Scenario (one module home, scale 0.1, seed 7, one year of daily occupancy, 2023, and
all release cohorts): a first publication; two consecutive daily deliveries (2024-01-01
and 2024-01-02: a provisional month one day, then two days long); a correction
(`replaces`) that turns one published facility-day into a count of 3; a correction of
a facility-day of 1-4 persons, withheld in a facility-month whose average was published
(revised while withheld). After each publication:

* the publisher's own audit (an LP over all linked tables and the ledger of what was
  published before) passed and is in the manifest and the gate report;
* an independent attacker (tests/integration/test_disclosure_attack.py's, written for
  the marts) recovers no withheld facility-day from the published marts;
* no published value, times its published denominator or days, is a person count of 1-4;
* every value flag says c exactly where the value is withheld, and the row flag carries c
  exactly when one of its values does;
* across vintages: no facility-month's published sums of two publications differ by a
  single withheld day.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import duckdb
import pytest

from penstat.contract.published import VALUE_FLAG_COLUMNS, flag_column
from penstat.ingestion.pipeline import ingest_feed
from penstat.orchestration import tasks
from penstat.publication.disclosure import ledger
from penstat.publication.publish import publish
from penstat.senders.delivery import write_delivery
from penstat.senders.synthetic import generate, next_day
from tests.integration.test_disclosure_attack import attack_days, pinned
from tests.reliability import penstat_home

SCALE, SEED, YEARS = 0.1, 7, 1
AS_OF = "2026-07-01"
FEEDS = ("facility_register", "occupancy", "staffing", "recidivism")
SMALL = (0, 5)  # a person count strictly between these is never published, in any form


def _run(paths, feeds=FEEDS) -> dict:
    for feed in feeds:
        outcomes = ingest_feed(feed, paths)
        assert {o.outcome for o in outcomes} <= {"loaded", "duplicate"}, outcomes
    tasks.build_marts(as_of_date=AS_OF)
    publication = publish(paths)
    return json.loads((publication.folder / "manifest.json").read_text())


def _correction(paths, population: int = 3, facility: str | None = None,
                day: str = "2023-06-14") -> tuple[str, str]:
    """Replace the population of one facility-day of the 2023 occupancy delivery (on
    `day`: `facility`'s, or a published one of at least 10) by `population`."""
    original = paths.archive / "occupancy" / "syn-occ-2023" / "occupancy.csv"
    rows = list(csv.DictReader(io.StringIO(original.read_text())))
    row = next(dict(r) for r in rows if r["census_date"] == day
               and (r["facility_id"] == facility if facility else int(r["population"]) >= 10))
    row["population"] = str(population)
    for column, value in row.items():  # the breakdowns stay within the population
        if column.startswith("population_") and value not in ("", None):
            row[column] = str(min(int(value), population))
    text = ",".join(row) + "\n" + ",".join(row.values()) + "\n"
    name = f"syn-occ-fix-{day}" + ("" if facility is None else f"-{facility}")
    write_delivery(paths.inbox, "occupancy", name,
                   {"occupancy.csv": text.encode()}, sender="TEST",
                   created_at=f"2026-01-0{3 if facility is None else 4}T02:00:00Z",
                   period=(day, day), replaces="syn-occ-2023", ring=False)
    return row["facility_id"], day


def _withheld_small_day(paths, version: str) -> tuple[str, str, int]:
    """A facility-day of 2023 of 1-4 persons, withheld in `version`, whose facility-month
    average was published: (facility, day, population)."""
    con = _con(paths, version)
    try:
        return con.execute("""
            SELECT d.facility_id, d.census_date::VARCHAR, w.population
            FROM marts.mart_facility_daily d
            JOIN marts.mart_facility_monthly m
              ON m.facility_id = d.facility_id AND m.month = date_trunc('month', d.census_date)
            JOIN intermediate.int_facility_days w
              ON w.facility_id = d.facility_id AND w.census_date = d.census_date
            WHERE d.population IS NULL AND m.average_daily_population IS NOT NULL
              AND year(d.census_date) = 2023 AND w.population BETWEEN 1 AND 4
            ORDER BY 1, 2 LIMIT 1""").fetchone()
    finally:
        con.close()


@pytest.fixture(scope="module")
def vintages(tmp_path_factory):
    """Five publications of one home: the manifest of each."""
    home = tmp_path_factory.mktemp("disclosure-vintages") / "home"
    out = []
    with penstat_home(home) as paths:
        generate(paths.inbox, scale=SCALE, seed=SEED, split="year", years=YEARS)
        out.append(_run(paths))
        for day in (date(2024, 1, 1), date(2024, 1, 2)):
            next_day(paths.inbox, scale=SCALE, seed=SEED, day=day, ring=False, years=YEARS,
                     created_at=f"{day.isoformat()}T23:00:00Z")
            out.append(_run(paths, ("occupancy",)))
        corrected = _correction(paths)
        out.append(_run(paths, ("occupancy",)))
        # a small day withheld beside a published month, corrected while withheld
        facility, day, population = _withheld_small_day(paths, out[-1]["version"])
        again = _correction(paths, population + 1 if population < 4 else population - 1,
                            facility=facility, day=day)
        out.append(_run(paths, ("occupancy",)))
        versions = [m["version"] for m in out]
        assert len(set(versions)) == 5, versions
        yield paths, out, (corrected, again)


def _con(paths, version: str) -> duckdb.DuckDBPyConnection:
    """The published marts as schema `marts` and the warehouse's intermediate models as
    schema `intermediate` (the attacker of test_disclosure_attack reads both)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{paths.published / version / 'published.duckdb'}' AS pub "
                "(READ_ONLY)")
    con.execute(f"ATTACH '{paths.warehouse}' AS wh (READ_ONLY)")
    for schema, catalog in (("marts", "pub"), ("intermediate", "wh")):
        con.execute(f"CREATE SCHEMA {schema}")
        for (table,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
                "AND table_schema = ?", [catalog, schema]).fetchall():
            con.execute(f"CREATE VIEW {schema}.{table} AS SELECT * FROM "
                        f"{catalog}.{schema}.{table}")
    return con


def test_every_publication_passed_its_disclosure_audit(vintages):
    _, manifests, _ = vintages
    for manifest in manifests:
        report = manifest["validation"]["disclosure"]
        assert report["success"] and report["exposed"] == [], report
        assert report["audited"] > 0 and report["cells"] > 0
    # the later publications knew what the earlier ones had made public
    assert all(m["validation"]["disclosure"]["known_from_earlier"] > 0 for m in manifests[1:])


def test_the_step_reads_day_by_day_only_what_the_new_deliveries_touch(vintages):
    """The ledger holds every sum published before, yet a daily publication examines one
    by one only the facility-days of the first publication's facility-months with
    something to protect, plus the new days (and the corrected month): the step's cost
    does not grow with the history."""
    paths, manifests, _ = vintages
    examined = [m["validation"]["disclosure"]["days_examined"] for m in manifests]
    facilities = duckdb.sql(
        f"SELECT count(DISTINCT facility_id) FROM read_parquet("
        f"'{paths.published / manifests[-1]['version'] / 'mart_facility_daily.parquet'}')"
    ).fetchall()[0][0]
    all_days = sum(m["marts"]["mart_facility_daily"]["rows"] for m in manifests[:1])
    assert 0 < examined[0] < all_days / 4, (examined, all_days)
    assert examined[1] <= examined[0] + facilities, examined  # + day 2024-01-01
    assert examined[2] <= examined[0] + 2 * facilities, examined  # + 2024-01-02
    assert examined[3] <= examined[2] + 31, examined  # + the corrected month
    assert examined[4] <= examined[3], examined  # a month withheld before


def test_the_ledger_holds_the_provisional_sums_of_each_day(vintages):
    paths, _, _ = vintages
    keys = [k for (k,) in duckdb.sql(
        f"SELECT key FROM read_parquet('{ledger.ledger_path(paths)}') "
        "WHERE key LIKE 'month|%|2024-01|%'").fetchall()]
    last_days = {k.rsplit("|", 1)[1] for k in keys}
    assert {"2024-01-01", "2024-01-02"} <= last_days, sorted(last_days)


def test_an_independent_attacker_recovers_no_withheld_day(vintages):
    paths, manifests, (corrected, _) = vintages
    for manifest in manifests:
        con = _con(paths, manifest["version"])
        try:
            results = attack_days(con)
        finally:
            con.close()
        recovered = {k: v for k, v in results.items() if pinned(v[0], v[1])}
        assert not recovered, (manifest["version"], recovered)
    # the corrected day (3, then 2) is among the withheld ones of the last publication
    assert (corrected[0], date.fromisoformat(corrected[1])) in results


def test_the_corrected_day_is_not_given_back_by_the_move_of_its_month(vintages):
    """Before the correction the day was published; after it, its month must not move by
    a published amount that, with the day published before, gives the new value."""
    paths, manifests, ((facility, day), _) = vintages
    con = _con(paths, manifests[3]["version"])
    try:
        adp = con.execute(
            "SELECT average_daily_population FROM marts.mart_facility_monthly "
            "WHERE facility_id = ? AND month = '2023-06-01'", [facility]).fetchone()[0]
        withheld = con.execute(
            "SELECT census_date::VARCHAR FROM marts.mart_facility_daily WHERE facility_id = ? "
            "AND date_trunc('month', census_date) = '2023-06-01' AND population IS NULL",
            [facility]).fetchall()
    finally:
        con.close()
    assert (day,) in withheld
    # published month and every other day published: 30 x ADP - the others = 3
    assert adp is None or len(withheld) >= 2, (adp, withheld)


# rate x base and (1 - rate) x base of each staff and regime rate on persons
_RATES = (("work", "work_participation", "k.avg_population", "k.work_avg_population"),
          ("education", "education_participation", "k.avg_population",
           "k.education_avg_population"),
          ("digital", "digital_contact_share", "k.avg_population", "k.digital_avg_population"),
          ("plan", "release_plan_coverage", "k.releases_total", "k.releases_total"))
REGIME_TERMS = ", ".join(
    f"('{n}', m.{rate} * {base}), ('not {n}', (1 - m.{rate}) * {base})"
    for n, rate, base, _ in _RATES) + (
    ", ('trained', m.staff_trained_share * k.headcount_with_training_reported)"
    ", ('not trained', (1 - m.staff_trained_share) * k.headcount_with_training_reported)")
NATIONAL_REGIME_TERMS = ", ".join(
    f"('{n}', m.{rate} * {base}), ('not {n}', (1 - m.{rate}) * {base})"
    for n, rate, _, base in _RATES)


def _small(x: float | None) -> bool:
    return x is not None and SMALL[0] + 1e-9 < x < SMALL[1] - 1e-9


def test_no_person_count_of_1_to_4_in_any_form(vintages):
    paths, manifests, _ = vintages
    for manifest in manifests:
        con = _con(paths, manifest["version"])
        try:
            found = con.execute("""
                SELECT 'day', facility_id || ' ' || census_date, population
                FROM marts.mart_facility_daily WHERE population BETWEEN 1 AND 4
                UNION ALL
                SELECT 'month ADP', facility_id || ' ' || month, average_daily_population
                FROM marts.mart_facility_monthly
                WHERE average_daily_population > 0 AND average_daily_population < 5
                UNION ALL
                SELECT 'national ' || k, month || ' ' || scale_class, v
                FROM (SELECT month, scale_class, 'ADP' AS k, average_daily_population AS v
                      FROM marts.mart_national_monthly
                      UNION ALL
                      SELECT n.month, n.scale_class, 'overcrowded',
                             n.share_in_overcrowded * n.average_daily_population
                      FROM marts.mart_national_monthly n
                      UNION ALL
                      SELECT n.month, n.scale_class, 'in small scale',
                             n.share_in_small_scale * n.average_daily_population
                      FROM marts.mart_national_monthly n)
                WHERE v > 1e-9 AND v < 5 - 1e-9
                UNION ALL
                SELECT 'cohort ' || k, cohort_year || ' ' || group_value, n
                FROM (SELECT cohort_year, group_value, 'size' AS k, cohort_size::DOUBLE AS n
                      FROM marts.mart_recidivism_cohort
                      UNION ALL
                      SELECT cohort_year, group_value, 'rate x size ' || r.k, r.v * cohort_size
                      FROM marts.mart_recidivism_cohort,
                           LATERAL (VALUES ('general', recid_2y_general),
                                           ('custodial', recid_2y_custodial),
                                           ('proven', proven_reoffending_1y)) r(k, v)
                      UNION ALL
                      SELECT cohort_year, group_value, 'non-reoffenders ' || r.k,
                             (1 - r.v) * cohort_size
                      FROM marts.mart_recidivism_cohort,
                           LATERAL (VALUES ('general', recid_2y_general),
                                           ('custodial', recid_2y_custodial),
                                           ('proven', proven_reoffending_1y)) r(k, v)
                      UNION ALL
                      SELECT cohort_year, group_value, 'O/E x expected',
                             observed_expected * (recid_2y_general * cohort_size
                                                  / nullif(observed_expected, 0))
                      FROM marts.mart_recidivism_cohort)
                WHERE n > 0.5 AND n < 4.5
                UNION ALL
                SELECT 'facility window ' || k, facility_id || ' ' || last_cohort_year, n
                FROM (SELECT facility_id, last_cohort_year, 'releases' AS k,
                             releases::DOUBLE AS n FROM marts.mart_facility_recidivism
                      UNION ALL
                      SELECT facility_id, last_cohort_year, 'reoffenders', reoffenders
                      FROM marts.mart_facility_recidivism
                      UNION ALL
                      SELECT facility_id, last_cohort_year, 'rate x releases',
                             observed_rate * releases FROM marts.mart_facility_recidivism
                      UNION ALL
                      SELECT facility_id, last_cohort_year, 'non-reoffenders',
                             (1 - observed_rate) * releases
                      FROM marts.mart_facility_recidivism)
                WHERE n > 0.5 AND n < 4.5""").fetchall()
            # monthly ADP x days reported (the days the daily mart lists for the month)
            months = con.execute("""
                SELECT m.facility_id, m.month, m.average_daily_population * d.days
                FROM marts.mart_facility_monthly m
                JOIN (SELECT facility_id, date_trunc('month', census_date) AS month,
                             count(*) AS days
                      FROM marts.mart_facility_daily GROUP BY ALL) d
                  USING (facility_id, month)""").fetchall()
            # the staff and regime rates times their base (taken as known), and the
            # complements (base - count): persons working, in education, ...
            regime = con.execute(f"""
                SELECT 'facility ' || r.k, m.facility_id || ' ' || m.month, r.n
                FROM marts.mart_facility_monthly m
                JOIN intermediate.int_facility_month_kpis k USING (facility_id, month),
                LATERAL (VALUES {REGIME_TERMS}) r(k, n)
                UNION ALL
                SELECT 'national ' || r.k, m.month || ' ' || m.scale_class, r.n
                FROM marts.mart_national_monthly m
                JOIN intermediate.int_national_month_kpis k USING (month, scale_class),
                LATERAL (VALUES {NATIONAL_REGIME_TERMS}) r(k, n)""").fetchall()
        finally:
            con.close()
        assert not found, (manifest["version"], found[:10])
        small = [r for r in regime if r[2] is not None and 0.5 < r[2] < 4.5]
        assert not small, (manifest["version"], small[:10])
        assert any(r[2] is not None for r in regime)  # not vacuous
        assert not [m for m in months if m[2] is not None and 0.5 < m[2] < 4.5], months


def test_all_minus_the_published_classes_gives_no_count_of_1_to_4(vintages):
    """The differencing attacker on the national rows: where `all` is published and at
    most one scale class is withheld, `all` minus the published classes is that class
    (with the days of no class, which are in `all` only). For the average daily
    population and the overcrowded persons (share x ADP), that difference is never a
    person count of 1-4 on average."""
    paths, manifests, _ = vintages
    for manifest in manifests:
        con = _con(paths, manifest["version"])
        try:
            rows = con.execute("""
                WITH n AS (
                    SELECT month, scale_class, 'ADP' AS k, average_daily_population AS v
                    FROM marts.mart_national_monthly
                    UNION ALL
                    SELECT month, scale_class, 'overcrowded',
                           share_in_overcrowded * average_daily_population
                    FROM marts.mart_national_monthly)
                SELECT a.month, a.k, a.v - coalesce(sum(c.v), 0) AS rest,
                       count(*) FILTER (WHERE c.v IS NULL) AS withheld
                FROM n a
                JOIN n c ON c.month = a.month AND c.k = a.k
                        AND c.scale_class NOT IN ('all', 'small_optimal')
                WHERE a.scale_class = 'all' AND a.v IS NOT NULL
                GROUP BY a.month, a.k, a.v""").fetchall()
        finally:
            con.close()
        assert rows  # not vacuous
        exposed = [r for r in rows if r[3] <= 1 and 1e-9 < r[2] < 5 - 1e-9]
        assert not exposed, (manifest["version"], exposed[:10])


def test_each_value_has_its_own_flag(vintages):
    paths, manifests, _ = vintages
    con = _con(paths, manifests[-1]["version"])
    try:
        for mart, columns in VALUE_FLAG_COLUMNS.items():
            for column in columns:
                flag = flag_column(column)
                bad = con.execute(f"""
                    SELECT count(*) FROM marts.{mart}
                    WHERE (coalesce({flag}, '') LIKE '%c%') AND {column} IS NOT NULL""")
                assert bad.fetchone()[0] == 0, (mart, column)
            any_c = " OR ".join(f"coalesce({flag_column(c)}, '') LIKE '%c%'" for c in columns)
            mismatched = con.execute(f"""
                SELECT count(*) FROM marts.{mart}
                WHERE (coalesce(flag, '') LIKE '%c%') <> ({any_c})""").fetchone()[0]
            assert mismatched == 0, mart
            withheld = con.execute(f"SELECT count(*) FROM marts.{mart} WHERE {any_c}"
                                   ).fetchone()[0]
            partly = con.execute(f"""
                SELECT count(*) FROM marts.{mart} WHERE flag LIKE '%c%' AND NOT
                ({" AND ".join(f"coalesce({flag_column(c)}, '') LIKE '%c%'" for c in columns)})
                """).fetchone()[0]
            if mart in ("mart_facility_monthly", "mart_recidivism_cohort"):
                assert withheld > 0, mart  # not vacuous
                assert partly > 0, mart  # a row's c no longer hides which value it is
    finally:
        con.close()


def test_no_staff_ratio_gives_a_withheld_population_back(vintages):
    """A staff ratio on a withheld average daily population would give it back: detainees
    per custodial FTE x custodial_fte, rehab_fte x 100 / rehab staff per 100 (national);
    a facility's rehab staff per 100 with the national rehab_fte and the other
    facilities' ratios x ADP. Each is withheld with the population."""
    paths, manifests, _ = vintages
    for manifest in manifests:
        con = _con(paths, manifest["version"])
        try:
            national = con.execute("""
                SELECT month, scale_class FROM marts.mart_national_monthly
                WHERE average_daily_population IS NULL
                  AND average_daily_population_flag LIKE '%c%'
                  AND ((detainees_per_custodial_fte IS NOT NULL AND custodial_fte IS NOT NULL)
                       OR (rehab_staff_per_100 IS NOT NULL AND rehab_fte IS NOT NULL))
                """).fetchall()
            facility = con.execute("""
                SELECT facility_id, month, rehab_staff_per_100_flag
                FROM marts.mart_facility_monthly
                WHERE average_daily_population_flag LIKE '%c%'""").fetchall()
        finally:
            con.close()
        assert national == [], (manifest["version"], national[:5])
        assert facility, "no facility-month population withheld: the test would be vacuous"
        assert [f for f in facility if "c" not in (f[2] or "")] == [], facility[:5]


def test_no_provisional_month_publishes_its_flows(vintages):
    """Turnover and length of stay are the month's flows over its population: published
    day after day while the month is open, consecutive values would give one day's
    admissions and releases back (often 1..4 persons). Both are withheld (flag c) while
    the month is provisional, and published once it is complete."""
    paths, manifests, _ = vintages
    for manifest in manifests[1:3]:  # the two daily deliveries: 2024-01 is open
        con = _con(paths, manifest["version"])
        rows, turnover, stay, flagged = con.execute("""
            SELECT count(*), count(m.turnover), count(m.avg_length_of_stay_days),
                   count(*) FILTER (WHERE coalesce(m.turnover_flag, '') LIKE '%c%')
            FROM marts.mart_facility_monthly m
            JOIN intermediate.int_facility_month_kpis k USING (facility_id, month)
            WHERE k.is_provisional AND k.turnover IS NOT NULL""").fetchone()
        assert rows > 0, "no provisional month with flows: the check would be vacuous"
        assert (turnover, stay) == (0, 0) and flagged == rows
        assert con.execute("""
            SELECT count(*) FROM marts.mart_facility_monthly m
            JOIN intermediate.int_facility_month_kpis k USING (facility_id, month)
            WHERE k.is_provisional AND coalesce(m.flag, '') NOT LIKE '%p%'""").fetchone()[0] == 0
        complete = con.execute("""
            SELECT count(m.turnover) FROM marts.mart_facility_monthly m
            JOIN intermediate.int_facility_month_kpis k USING (facility_id, month)
            WHERE NOT k.is_provisional""").fetchone()[0]
        assert complete > 0, "complete months publish their turnover"


def test_a_day_corrected_while_withheld_keeps_its_value_then_as_an_unknown(vintages):
    """The fifth publication corrects a withheld day of 1-4 persons whose month was
    published: the ledger had kept its value then (owner-only), and the month then
    names it as an unknown of its own in the fifth publication's audit."""
    paths, manifests, (_, (facility, day)) = vintages
    report = manifests[4]["validation"]["disclosure"]
    assert report["success"] and report["revised_while_withheld"] >= 1, report
    assert all(m["validation"]["disclosure"]["revised_while_withheld"] == 0
               for m in manifests[:4])
    path = ledger.ledger_path(paths)
    assert (path.stat().st_mode & 0o777) == 0o600
    today = duckdb.sql(f"SELECT value, withheld_value FROM read_parquet('{path}') "
                       f"WHERE key = 'day|{facility}|{day}' AND until IS NULL").fetchall()
    assert len(today) == 1 and today[0][0] is None and 1 <= today[0][1] <= 4, today
    then = duckdb.sql(f"SELECT value, withheld_value FROM read_parquet('{path}') "
                      f"WHERE key = 'day|{facility}|{day}' AND until IS NOT NULL").fetchall()
    assert len(then) == 1 and then[0][0] is None and 1 <= then[0][1] <= 4, then
    assert then[0][1] != today[0][1], "its state of the earlier vintages is kept, superseded"
    con = _con(paths, manifests[4]["version"])
    try:
        assert con.execute("SELECT population, population_flag FROM marts.mart_facility_daily "
                           "WHERE facility_id = ? AND census_date = ?",
                           [facility, day]).fetchall() == [(None, "c")]
    finally:
        con.close()
