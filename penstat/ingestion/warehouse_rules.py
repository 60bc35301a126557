"""Rules that need more than the delivery itself: the register, the ledger, the calendar.

Each rule is one SQL query over a staged (typed) table that returns the
offending rows; the first few become Problems naming file, row, column and rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from penstat.contract.feeds import FEEDS, raw_table_name
from penstat.contract.manifest import Manifest
from penstat.contract.problems import Problem
from penstat.ingestion.typed_tables import q, sql_str

# The register in force: the rows of the latest accepted register delivery.
CURRENT_REGISTER = f"""
    SELECT * FROM {raw_table_name('facility_register', 'facilities')}
    WHERE _delivery_seq = (SELECT max(_delivery_seq)
                           FROM {raw_table_name('facility_register', 'facilities')})
"""


@dataclass(frozen=True)
class Rule:
    name: str
    column: str
    message: str
    where: str  # SQL FROM ... WHERE ... over alias s (the staged table), selecting rows


def _facility_rules(date_expr: str, date_column: str) -> list[Rule]:
    return [
        Rule("unknown_facility", "facility_id",
             "facility_id is not in the facility register",
             f"WHERE s.facility_id NOT IN (SELECT facility_id FROM ({CURRENT_REGISTER}))"),
        Rule("facility_not_valid_on_date", date_column,
             "the facility exists in the register but no register row is valid on this date",
             f"""WHERE s.facility_id IN (SELECT facility_id FROM ({CURRENT_REGISTER}))
                AND NOT EXISTS (SELECT 1 FROM ({CURRENT_REGISTER}) r
                    WHERE r.facility_id = s.facility_id AND r.valid_from <= {date_expr}
                      AND (r.valid_to IS NULL OR r.valid_to >= {date_expr}))"""),
    ]


def _month_start(col: str) -> str:
    return f"CAST({col} || '-01' AS DATE)"


def rules_for(feed: str, stem: str, manifest: Manifest, today: date,
              max_population_factor: float) -> list[Rule]:
    extraction = sql_str(manifest.created_at.date().isoformat())
    rules: list[Rule] = []
    if (feed, stem) == ("facility_register", "facilities"):
        rules.append(Rule(
            "overlapping_interval", "valid_from",
            "two register rows of the same facility are valid on the same day",
            """WHERE EXISTS (SELECT 1 FROM {table} o WHERE o.facility_id = s.facility_id
                 AND o._row <> s._row AND o.valid_from <= coalesce(s.valid_to, DATE '9999-12-31')
                 AND s.valid_from <= coalesce(o.valid_to, DATE '9999-12-31'))"""))
    elif (feed, stem) == ("occupancy", "occupancy"):
        rules += _facility_rules("s.census_date", "census_date")
        rules.append(Rule("future_date", "census_date", "census_date is in the future",
                          f"WHERE s.census_date > DATE {sql_str(today.isoformat())}"))
        in_force = f"""(SELECT r.{{col}} FROM ({CURRENT_REGISTER}) r
                 WHERE r.facility_id = s.facility_id AND r.valid_from <= s.census_date
                   AND (r.valid_to IS NULL OR r.valid_to >= s.census_date) LIMIT 1)"""
        rules.append(Rule(
            "out_of_use_exceeds_capacity", "places_out_of_use",
            "places_out_of_use is larger than the capacity_places in force that day",
            f"WHERE s.places_out_of_use > {in_force.format(col='capacity_places')}"))
        rules.append(Rule(
            "population_implausible", "population",
            f"population is more than {max_population_factor:g} times the operational "
            "capacity in force that day (a unit or keying error?)",
            f"WHERE s.population > {max_population_factor} * "
            f"{in_force.format(col='operational_capacity')}"))
    elif stem in ("regime", "staffing"):
        month_start = _month_start("s.month")
        month_end = f"(CAST({month_start} + INTERVAL 1 MONTH AS DATE) - 1)"
        rules.append(Rule(
            "unknown_facility", "facility_id", "facility_id is not in the facility register",
            f"WHERE s.facility_id NOT IN (SELECT facility_id FROM ({CURRENT_REGISTER}))"))
        rules.append(Rule(
            "facility_not_valid_in_month", "month",
            "no register row of the facility is valid in this month",
            f"""WHERE s.facility_id IN (SELECT facility_id FROM ({CURRENT_REGISTER}))
                AND NOT EXISTS (SELECT 1 FROM ({CURRENT_REGISTER}) r
                  WHERE r.facility_id = s.facility_id AND r.valid_from <= {month_end}
                    AND (r.valid_to IS NULL OR r.valid_to >= {month_start}))"""))
        rules.append(Rule("future_date", "month", "month is in the future",
                          f"WHERE {month_start} > DATE {sql_str(today.isoformat())}"))
    elif (feed, stem) == ("recidivism", "releases"):
        rules += _facility_rules("s.release_date", "release_date")
        rules.append(Rule("after_extraction", "release_date",
                          "release_date is after the extraction date (manifest created_at)",
                          f"WHERE s.release_date > DATE {extraction}"))
    elif (feed, stem) == ("recidivism", "reconvictions"):
        rules.append(Rule("after_extraction", "conviction_date",
                          "conviction_date is after the extraction date (manifest created_at)",
                          f"WHERE s.conviction_date > DATE {extraction}"))
    if manifest.period_start and manifest.period_end and FEEDS[feed].file(stem).period_column \
            and feed in ("occupancy", "staffing"):
        col = FEEDS[feed].file(stem).period_column
        start, end = manifest.period_start.isoformat(), manifest.period_end.isoformat()
        value = _month_start(f"s.{col}") if col == "month" else f"s.{col}"
        lo = f"date_trunc('month', DATE {sql_str(start)})" if col == "month" else \
            f"DATE {sql_str(start)}"
        rules.append(Rule("outside_period", col,
                          f"the row's {col} is outside the manifest period {start}..{end}",
                          f"WHERE {value} < {lo} OR {value} > DATE {sql_str(end)}"))
    return rules


def duplicate_rule(feed: str, stem: str, replaces: str | None) -> Rule | None:
    """A key already delivered is a duplicate, unless this delivery replaces its source."""
    spec = FEEDS[feed].file(stem)
    if spec.full_snapshot:
        return None
    raw = raw_table_name(feed, stem)
    key_cols = ["person_pseudonym" if k == "person_ref" else k for k in spec.key]
    join = " AND ".join(f"c.{q(rk)} = s.{q(k)}" for rk, k in zip(key_cols, spec.key, strict=True))
    partition = ", ".join(q(k) for k in key_cols)
    allowed = f"AND c._delivery_id <> {sql_str(replaces)}" if replaces else ""
    return Rule(
        "duplicate_key", spec.key[0],
        f"the key ({', '.join(spec.key)}) was already delivered in an earlier delivery; send a "
        "correction with manifest.json replaces = that delivery_id",
        f"""WHERE EXISTS (SELECT 1 FROM (SELECT * FROM {raw}
                QUALIFY row_number() OVER (PARTITION BY {partition}
                                           ORDER BY _delivery_seq DESC) = 1) c
              WHERE {join} {allowed})""")


def warehouse_rule_problems(con: duckdb.DuckDBPyConnection, feed: str, stem: str, table: str,
                     file: str, manifest: Manifest, today: date,
                     max_population_factor: float) -> list[Problem]:
    rules = rules_for(feed, stem, manifest, today, max_population_factor)
    dup = duplicate_rule(feed, stem, manifest.replaces)
    if dup:
        rules.append(dup)
    personal = {c.name for c in FEEDS[feed].file(stem).columns if c.personal}
    problems = []
    for rule in rules:
        where = rule.where.replace("{table}", table)
        count, first = con.execute(
            f"SELECT count(*), min(s._row) FROM {table} s {where}").fetchone()
        if not count:
            continue
        value = None
        if rule.column not in personal:
            value = con.execute(f"SELECT CAST({q(rule.column)} AS VARCHAR) FROM {table} "
                                "WHERE _row = ?", [first]).fetchone()[0]
        problems.append(Problem(rule=rule.name, message=rule.message, file=file, row=int(first),
                                column=rule.column, value=value, rows_affected=int(count)))
    return problems
