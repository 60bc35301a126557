"""Rules that need more than the delivery itself: the register, the ledger, the calendar.

Each rule is one SQL query over a staged (typed) table that returns the
offending rows; the first few become Problems naming file, row, column and rule.
Two kinds of rule look beyond the rows of the file: the manifest's created_at
against the warehouse clock, and a register delivery against the rows already
loaded (a register may not orphan them, or every later build fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from penstat.contract.feeds import (
    CREATED_AT_MAX_SKEW,
    EXTRACTION,
    FEEDS,
    MANIFEST,
    MAX_DENSITY,
    raw_table_name,
)
from penstat.contract.manifest import Manifest
from penstat.contract.problems import Problem
from penstat.core.clock import utc_now
from penstat.ingestion.typed_tables import q, sql_str

# Facility ids a register's rows name in a problem's message at most.
_NAMED_IDS = 10

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


def _not_after_rules(feed: str, stem: str, manifest: Manifest) -> list[Rule]:
    """Limits.not_after of the contract: no value after the extraction date (the
    manifest's created_at) or after another date of the same row."""
    extraction = f"DATE {sql_str(manifest.created_at.date().isoformat())}"
    rules = []
    for col in FEEDS[feed].file(stem).columns:
        bound = col.limits.not_after if col.limits else None
        if bound is None:
            continue
        if bound == EXTRACTION:
            name = "after_extraction"
            other, said = extraction, "the extraction date (manifest created_at)"
        else:
            name = f"after_{bound}"
            other, said = f"s.{q(bound)}", bound
        if col.type == "month":
            value = _month_start(f"s.{q(col.name)}")
        elif col.type == "int":  # a year
            value, other, said = f"s.{q(col.name)}", f"year({other})", f"the year of {said}"
        else:
            value = f"s.{q(col.name)}"
        rules.append(Rule(name, col.name, f"{col.name} is after {said}",
                          f"WHERE {value} > {other}"))
    return rules


def rules_for(feed: str, stem: str, manifest: Manifest, today: date,
              max_population_factor: float) -> list[Rule]:
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
        rules.append(Rule(
            "density_implausible", "population",
            f"population is more than {MAX_DENSITY / 100:g} times the capacity_places in "
            f"force that day (density above {MAX_DENSITY} per 100 places, which is never "
            "published)",
            f"WHERE s.population * 100 > {MAX_DENSITY} * "
            f"{in_force.format(col='capacity_places')}"))
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
    elif (feed, stem) == ("reference_register", "facilities"):
        rules.append(Rule(
            "density_implausible", "population",
            f"population is more than {MAX_DENSITY / 100:g} times capacity_places (density "
            f"above {MAX_DENSITY} per 100 places, which is never published)",
            f"WHERE s.capacity_places > 0 AND s.population * 100 > {MAX_DENSITY} * "
            "s.capacity_places"))
    rules += _not_after_rules(feed, stem, manifest)
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


def created_at_problems(manifest: Manifest, now: datetime) -> list[Problem]:
    """created_at later than the warehouse clock (plus CREATED_AT_MAX_SKEW): a delivery
    from the future would become the extraction date and publish immature cohorts."""
    if manifest.created_at <= now + CREATED_AT_MAX_SKEW:
        return []
    skew = int(CREATED_AT_MAX_SKEW.total_seconds() // 60)
    return [Problem(
        rule="created_at_in_future", file=MANIFEST, column="created_at",
        value=manifest.created_at.isoformat() + "Z",
        message=f"created_at is more than {skew} minutes after the time the warehouse "
                f"received the delivery ({now.replace(microsecond=0).isoformat()}Z): it must "
                "be when the data were extracted, in UTC")]


# The rows a build needs the register to keep (dbt relationships tests of
# mart_facility_daily and mart_facility_monthly on int_facility_history; the mart gate's
# capacity_places on every facility-day): every facility with loaded census days, regime
# or staffing rows stays in the register, and every loaded census day stays covered by a
# register row valid that day. Releases need neither (their facility's attributes may
# be unknown: the recidivism marts count them as 'unknown').
_LOADED_FACILITIES = " UNION ".join(
    f"SELECT DISTINCT facility_id, {sql_str(feed)} AS feed FROM {raw_table_name(feed, stem)}"
    for feed, stem in (("occupancy", "occupancy"), ("occupancy", "regime"),
                       ("staffing", "staffing")))
_LOADED_CENSUS_DAYS = (f"SELECT DISTINCT facility_id, census_date "
                       f"FROM {raw_table_name('occupancy', 'occupancy')}")


def _named(ids: list[str], total: int) -> str:
    more = f" and {total - len(ids)} more" if total > len(ids) else ""
    return ", ".join(ids) + more


def register_orphan_problems(con: duckdb.DuckDBPyConnection, table: str,
                             file: str) -> list[Problem]:
    """A register (a full snapshot) that would orphan loaded rows, with the ids named."""
    problems = []
    dropped = con.execute(f"""
        SELECT facility_id, string_agg(DISTINCT feed, ', ' ORDER BY feed)
        FROM ({_LOADED_FACILITIES}) loaded
        WHERE facility_id NOT IN (SELECT facility_id FROM {table})
        GROUP BY facility_id ORDER BY facility_id""").fetchall()
    if dropped:
        shown = [f"{fid} ({feeds})" for fid, feeds in dropped[:_NAMED_IDS]]
        problems.append(Problem(
            rule="register_drops_loaded_facility", file=file, column="facility_id",
            value=dropped[0][0], rows_affected=len(dropped),
            message="the register leaves out facilities whose rows are already loaded: "
                    f"{_named(shown, len(dropped))}. A register delivery is the full "
                    "register: keep every facility, and end a closed one with valid_to"))
    uncovered = con.execute(f"""
        SELECT d.facility_id, min(d.census_date), max(d.census_date), count(*),
               (SELECT min(_row) FROM {table} r WHERE r.facility_id = d.facility_id)
        FROM ({_LOADED_CENSUS_DAYS}) d
        WHERE d.facility_id IN (SELECT facility_id FROM {table})
          AND NOT EXISTS (SELECT 1 FROM {table} r
                          WHERE r.facility_id = d.facility_id
                            AND r.valid_from <= d.census_date
                            AND (r.valid_to IS NULL OR r.valid_to >= d.census_date))
        GROUP BY d.facility_id ORDER BY d.facility_id""").fetchall()
    if uncovered:
        shown = [f"{fid} ({first}..{last}, {days} days)"
                 for fid, first, last, days, _ in uncovered[:_NAMED_IDS]]
        problems.append(Problem(
            rule="register_uncovers_loaded_days", file=file, row=int(uncovered[0][4]),
            column="valid_from, valid_to", value=uncovered[0][0],
            rows_affected=len(uncovered),
            message="no row of the register is valid on census days already loaded for "
                    f"{_named(shown, len(uncovered))}: the facility's validity intervals "
                    "must cover every day it has census data for"))
    return problems


def warehouse_rule_problems(con: duckdb.DuckDBPyConnection, feed: str, stem: str, table: str,
                            file: str, manifest: Manifest, today: date,
                            max_population_factor: float,
                            now: datetime | None = None) -> list[Problem]:
    """Every broken warehouse rule of one staged file. `now` is the warehouse clock when
    the delivery was received (naive UTC; the clock now if not given)."""
    problems: list[Problem] = []
    if stem == manifest.files[0].stem:  # the manifest's own rules, once per delivery
        problems += created_at_problems(manifest, now or utc_now())
    if (feed, stem) == ("facility_register", "facilities"):
        problems += register_orphan_problems(con, table, file)
    rules = rules_for(feed, stem, manifest, today, max_population_factor)
    dup = duplicate_rule(feed, stem, manifest.replaces)
    if dup:
        rules.append(dup)
    personal = {c.name for c in FEEDS[feed].file(stem).columns if c.personal}
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
