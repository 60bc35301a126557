"""Build the linked tables (cells.LinkedCells) from the warehouse's values before disclosure.

Two families of linked tables are published:

* **Population**: facility-day populations (mart_facility_daily) add up to the
  facility-month's person-days (mart_facility_monthly: average daily population x days
  reported), which add up, with the days of facilities that changed class within the
  month, to the national class rows (mart_national_monthly: ADP x census days), which add
  up, with the days of no class (a hidden cell: 'all' minus the classes gives it), to
  the 'all' row; the overcrowded person-days of a class or of 'all' (share in
  overcrowded x ADP x census days) are the sum of its overcrowded days. A facility-month with no day
  and no month to protect (and one class all month) enters the national sums as a known
  constant: its days are published, so the attacker knows its sum anyway.
* **Release cohorts**: for each cohort year and each count (released, reoffenders 2y
  general and custodial, proven reoffenders 1y), the groups of every group type
  (scale_class, facility_type, small_scale_days) are margins of one hidden cross
  table (the releases by all three attributions), with the cohort total known. So the
  facility types nest in the scale classes exactly as far as the data say, and the
  attacker is given every structural zero of that table (stronger than a real one).

Keys of cells name the quantity: a provisional month's sum carries the last day it
covers (`month|F|2024-03|2024-03-09`), so the ledger's sums of earlier days become
facts about today's cells (ledger.py).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass

import duckdb

from penstat.publication.disclosure.cells import LinkedCells
from penstat.publication.disclosure.ledger import (
    HISTORY,
    PUBLISHED_CLASSES,
    PUBLISHED_DAY_CLASSES,
)

HIDDEN = ("hidden",)  # a unit never published: cells only the attacker's unknowns
# the key prefix of a value withheld by an earlier publication and revised since
THEN = "then|"
COHORT_COUNTS = {  # count name -> the outcome flag counted (None: every release)
    "cohort_size": None,
    "reoffenders_2y_general": "recid_2y_general",
    "reoffenders_2y_custodial": "recid_2y_custodial",
    "proven_reoffenders_1y": "proven_reoffending_1y",
}
GROUP_ATTRIBUTIONS = {  # group_type -> column of int_release_outcomes
    "scale_class": "scale_class",
    "facility_type": "facility_type",
    "small_scale_days": "small_scale_days_group",
}


@dataclass(frozen=True)
class Thresholds:
    min_person_count: int
    min_rate_denominator: int
    min_recidivism_cohort: int
    protection_interval: float  # persons
    min_interval: float  # persons: the width any other withheld value keeps


def _small(value: float, scale: float, t: Thresholds) -> bool:
    """A count (or an average count over `scale` days) of 1..min_person_count - 1 persons:
    strictly between 0 and the threshold."""
    return scale > 0 and 0 < value / scale < t.min_person_count


# RESCALED's optimal size (8..25 places): a national row that overlaps 'small'
OPTIMAL = "small_optimal"
UNKNOWN = "unknown"  # the facility-days of no scale class: in the 'all' row only


def _table_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, table = relation.split(".")[-2:]
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'wh' "
        "AND table_schema = ? AND table_name = ?", [schema, table]).fetchall()[0][0])


def _then_cell(cells: LinkedCells, key: str, value: float, t: Thresholds,
               need: float | None) -> str:
    """A cell as earlier publications withheld it, revised since (`key`: the cell's key
    and the vintage its state began): an unknown of its own (never published, like the
    cross table) with the value it had then, named by every fact of those
    publications. The value then is protected as it was: with the protection interval
    it had (`need`, kept by the ledger), or, not known (an older ledger), the
    protection interval if it is a person count of 1..4."""
    name = f"{THEN}{key}"
    if name not in cells.index:
        hidden = cells.unit(HIDDEN)
        cells.units[hidden].withheld = True
        if need is None:
            need = t.protection_interval if _small(value, 1, t) else 0.0
        cells.cell(name, value, unit=hidden, need=need)
    return name


# A sum published before: (the name of its fact, its ledger key, value, the vintage its
# state began, the last vintage that published it)
Sum = tuple[str, str, float, int, int]
# A facility-day's states in the ledger: (since, until, value published or None,
# value withheld or None, the protection interval it had when withheld), `until` None
# for the current state
DayState = tuple[int, int | None, float | None, float | None, float | None]


def _earlier(con: duckdb.DuckDBPyConnection) -> tuple[set[str], list[Sum]]:
    """From the ledger (temp tables `ledger` and HISTORY): the days published with
    another value than today's (corrections: their facility-months are read day by
    day), and the population sums published before, in their current state (fact
    `key`) and in every superseded one (fact `key|v<vintage>`), for earlier_facts."""
    changed = {k for (k,) in con.execute("""
        SELECT l.key FROM ledger l
        JOIN wh.intermediate.int_facility_days d
          ON l.key = 'day|' || d.facility_id || '|' || d.census_date::VARCHAR
        WHERE l.key LIKE 'day|%' AND l.value IS NOT NULL
          AND d.population::DOUBLE IS DISTINCT FROM l.value""").fetchall()}
    kinds = "(key LIKE 'month|%' OR key LIKE 'national|%' OR key LIKE 'overcrowded|%')"
    sums = [(key, key, value, since, staged) for key, value, since, staged in con.execute(f"""
        SELECT key, value, since, staged FROM ledger WHERE value IS NOT NULL AND {kinds}
        ORDER BY key""").fetchall()]
    sums += [(f"{key}|v{staged}", key, value, since, staged)
             for key, value, since, staged in con.execute(f"""
        SELECT key, value, since, staged FROM {HISTORY} WHERE value IS NOT NULL AND {kinds}
        ORDER BY key, staged""").fetchall()]
    return changed, sums


def _day_states(con: duckdb.DuckDBPyConnection) -> dict[str, list[DayState]]:
    """The ledger's states (current and superseded) of the facility-days of the
    facility-months read day by day (temp table `active_fm`) and of every day with a
    superseded state."""
    states: dict[str, list[DayState]] = defaultdict(list)
    for key, since, until, value, withheld, need in con.execute(f"""
            WITH days AS (
                SELECT 'day|' || d.facility_id || '|' || d.census_date::VARCHAR AS key
                FROM wh.intermediate.int_facility_days d
                SEMI JOIN active_fm a
                  ON a.facility_id = d.facility_id AND a.m = strftime(d.month, '%Y-%m')
                UNION SELECT key FROM {HISTORY} WHERE key LIKE 'day|%')
            SELECT l.key, l.since, l.until, l.value, l.withheld_value, l.withheld_need
            FROM (SELECT key, since, NULL::INTEGER AS until, value, withheld_value,
                         withheld_need
                  FROM ledger WHERE key LIKE 'day|%'
                  UNION ALL
                  SELECT key, since, until, value, withheld_value, withheld_need
                  FROM {HISTORY} WHERE key LIKE 'day|%') l
            SEMI JOIN days USING (key)""").fetchall():
        states[key].append((since, until, value, withheld, need))
    return states


def _state_at(states: list[DayState], vintage: int) -> DayState | None:
    """The state that held at `vintage` (None: the key was not in the ledger then)."""
    for state in states:
        since, until = state[:2]
        if since <= vintage and (until is None or vintage <= until):
            return state
    return None


def _withheld_before_months(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """The facility-months (facility, 'YYYY-MM') with a day or a month sum withheld in an
    earlier publication (ledger value NULL, now or in a superseded state): read day by
    day, so that it stays withheld and the sums of then can name its days."""
    return {(f, m) for f, m in con.execute(f"""
        SELECT DISTINCT split_part(key, '|', 2), left(split_part(key, '|', 3), 7)
        FROM (SELECT key, value FROM ledger
              UNION ALL SELECT key, value FROM {HISTORY} WHERE key LIKE 'day|%')
        WHERE value IS NULL AND (key LIKE 'day|%' OR key LIKE 'month|%')
        """).fetchall()}


def population(cells: LinkedCells, con: duckdb.DuckDBPyConnection, t: Thresholds) -> None:
    """The population family (docs in the module), with the sums published before.

    Only the facility-months with something to protect (a small day or month, a change
    of class, a correction, an earlier partial sum) are read day by day; the others
    enter as their sums, computed by DuckDB."""
    pi = t.protection_interval
    if not all(_table_exists(con, f"intermediate.{m}") for m in (
            "int_facility_days", "int_facility_month_kpis", "int_national_month_kpis")):
        return
    changed, sums = _earlier(con)
    min_count = float(t.min_person_count)
    fm_rows = con.execute("""
        SELECT d.facility_id, strftime(d.month, '%Y-%m'), max(d.census_date)::VARCHAR,
               count(DISTINCT coalesce(d.scale_class, 'unknown')),
               min(coalesce(d.scale_class, 'unknown')),
               bool_or(d.population > 0 AND d.population < ?),
               sum(d.population)::DOUBLE, any_value(k.population_days)::DOUBLE,
               any_value(k.days_reported)::DOUBLE
        FROM wh.intermediate.int_facility_days d
        LEFT JOIN wh.intermediate.int_facility_month_kpis k
          ON k.facility_id = d.facility_id AND k.month = d.month
         AND k.average_daily_population IS NOT NULL AND k.days_reported > 0
        WHERE d.population IS NOT NULL
        GROUP BY d.facility_id, d.month ORDER BY d.facility_id, d.month""",
        [min_count]).fetchall()
    active = {(k.split("|")[1], k.split("|")[2][:7]) for k in changed}
    active |= _withheld_before_months(con)
    for f, m, _, n_classes, _, small_day, _, s, d in fm_rows:
        if small_day or n_classes > 1 or (s is not None and _small(s, d, t)):
            active.add((f, m))
    # An earlier sum of a facility-month (yesterday's provisional month) says something
    # only about its days withheld today, and a day is withheld only in an active
    # facility-month: the sums of the others are facts about published values. So the
    # ledger's month sums do not make a facility-month active by themselves; otherwise
    # every month ever published would be read day by day, and the step's cost would
    # grow with the history (the ledger keeps every provisional sum).
    # a national class or overcrowded sum that is small on average: its facility-months
    # are read day by day, so that their days can protect it
    small_groups = con.execute("""
        WITH sums AS (
            SELECT strftime(d.month, '%Y-%m') AS m, coalesce(d.scale_class, 'unknown') AS c,
                   sum(d.population) AS total,
                   coalesce(sum(d.population) FILTER (WHERE d.density > 100), 0) AS over
            FROM wh.intermediate.int_facility_days d WHERE d.population IS NOT NULL
            GROUP BY ALL
            UNION ALL
            SELECT strftime(d.month, '%Y-%m'), 'small_optimal', sum(d.population),
                   coalesce(sum(d.population) FILTER (WHERE d.density > 100), 0)
            FROM wh.intermediate.int_facility_days d
            WHERE d.population IS NOT NULL AND coalesce(d.is_small_optimal, false)
            GROUP BY ALL),
        days AS (SELECT strftime(month, '%Y-%m') AS m, census_days
                 FROM wh.intermediate.int_national_month_kpis WHERE scale_class = 'all')
        SELECT DISTINCT d.facility_id, strftime(d.month, '%Y-%m')
        FROM wh.intermediate.int_facility_days d
        JOIN sums s ON s.m = strftime(d.month, '%Y-%m')
                   AND (s.c = coalesce(d.scale_class, 'unknown') OR (s.c = 'small_optimal'
                        AND coalesce(d.is_small_optimal, false)))
        JOIN days n ON n.m = s.m
        WHERE (s.total > 0 AND s.total < ? * n.census_days)
           OR (s.over > 0 AND s.over < ? * n.census_days AND d.density > 100)
        """, [min_count, min_count]).fetchall()
    active |= {(f, m) for f, m in small_groups}
    # a facility-month with a day the last publication put in another class (a register
    # revision): read day by day, so that the sums of then count its days in their class
    # then
    active |= {(f, m) for f, m in con.execute(f"""
        SELECT DISTINCT d.facility_id, strftime(d.month, '%Y-%m')
        FROM wh.intermediate.int_facility_days d
        JOIN {PUBLISHED_DAY_CLASSES} p
          ON p.facility_id = d.facility_id AND p.census_date = d.census_date
        WHERE d.population IS NOT NULL
          AND p.scale_class <> coalesce(d.scale_class, 'unknown')""").fetchall()}
    import pandas as pd

    con.register("active_fm", pd.DataFrame(sorted(active), columns=["facility_id", "m"]))
    try:
        days = con.execute(f"""
            SELECT d.facility_id, d.census_date::VARCHAR, strftime(d.month, '%Y-%m'),
                   coalesce(d.scale_class, 'unknown'), d.population::DOUBLE,
                   coalesce(d.density > 100, false), coalesce(d.is_small_optimal, false),
                   coalesce(p.scale_class, d.scale_class, 'unknown')
            FROM wh.intermediate.int_facility_days d
            LEFT JOIN {PUBLISHED_DAY_CLASSES} p
              ON p.facility_id = d.facility_id AND p.census_date = d.census_date
            SEMI JOIN active_fm a
              ON a.facility_id = d.facility_id AND a.m = strftime(d.month, '%Y-%m')
            WHERE d.population IS NOT NULL
            ORDER BY d.facility_id, d.census_date""").fetchall()
        states = _day_states(con)
        # the days not read one by one that were corrected once (published with another
        # value before): the national sums of then count them as they were
        outside: dict[tuple[str, str], list[tuple[str, str, float, bool]]] = \
            defaultdict(list)
        for f, m, date, c, pop, over, optimal in con.execute(f"""
                SELECT d.facility_id, strftime(d.month, '%Y-%m'), d.census_date::VARCHAR,
                       coalesce(d.scale_class, 'unknown'), d.population::DOUBLE,
                       coalesce(d.density > 100, false), coalesce(d.is_small_optimal, false)
                FROM wh.intermediate.int_facility_days d
                SEMI JOIN (SELECT DISTINCT key FROM {HISTORY} WHERE key LIKE 'day|%') h
                  ON h.key = 'day|' || d.facility_id || '|' || d.census_date::VARCHAR
                ANTI JOIN active_fm a
                  ON a.facility_id = d.facility_id AND a.m = strftime(d.month, '%Y-%m')
                WHERE d.population IS NOT NULL
                ORDER BY d.facility_id, d.census_date""").fetchall():
            for g in ((m, c), (m, "all"), *(((m, OPTIMAL),) if optimal else ())):
                outside[g].append((date, f"day|{f}|{date}", pop, over))
    finally:
        con.unregister("active_fm")
    by_fm: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in days:
        by_fm[(row[0], row[2])].append(row)
    # national rows: (month, class) -> census days; their sums over all facility-days
    national, small_scale = {}, {}
    for m, c, days_n, small_avg in con.execute("""
            SELECT strftime(month, '%Y-%m'), scale_class, census_days::DOUBLE,
                   avg_small_scale_population::DOUBLE
            FROM wh.intermediate.int_national_month_kpis
            WHERE average_daily_population IS NOT NULL ORDER BY 1, 2""").fetchall():
        national[(m, c)] = days_n
        if c == "all" and small_avg is not None:
            small_scale[m] = small_avg * days_n
    # the sums of every class (and small_optimal) over all facility-days, and the last day
    # of each month
    totals = _DayTotals(con)
    nat_value: dict[tuple[str, str], float] = defaultdict(float)
    over_value: dict[tuple[str, str], float] = defaultdict(float)
    last_day: dict[str, str] = {}
    for (m, c), dates in totals.days.items():
        if c != "all":
            nat_value[(m, c)] = totals.up_to(m, c, dates[-1], False)
            over_value[(m, c)] = totals.up_to(m, c, dates[-1], True)
            last_day[m] = max(last_day.get(m, ""), dates[-1])
    nat_parts: dict[tuple[str, str], list[str]] = defaultdict(list)
    nat_const: dict[tuple[str, str], float] = dict(nat_value)
    over_parts: dict[tuple[str, str], list[str]] = defaultdict(list)
    over_const: dict[tuple[str, str], float] = dict(over_value)
    nat_days: dict[tuple[str, str], list[tuple[str, str | None, float, bool]]] = \
        defaultdict(list)  # (month, class) -> the active days: (date, key, population, over)
    nat_then: dict[tuple[str, str], list[tuple[str, str | None, float, bool]]] = \
        defaultdict(list)  # the same by the class the last publication gave them
    for f, m, last, n_classes, c0, _, _, s, d in fm_rows:
        month_key = f"month|{f}|{m}|{last}"
        if (f, m) not in active:
            if s is not None:
                cells.cell(month_key, s, unit=None, scale=d)  # its days are all published
            continue
        rows = by_fm[(f, m)]
        day_keys = []
        for _, date, _, c, pop, over, optimal, c_then in rows:
            key = f"day|{f}|{date}"
            for group, g in ((nat_days, c), (nat_then, c_then), (nat_days, "all"),
                             (nat_then, "all")):
                group[(m, g)].append((date, key, pop, over))
            if optimal:  # the overlapping class, always by its days
                nat_days[(m, OPTIMAL)].append((date, key, pop, over))
                nat_parts[(m, OPTIMAL)].append(key)
                nat_const[(m, OPTIMAL)] -= pop
                if over:
                    over_parts[(m, OPTIMAL)].append(key)
                    over_const[(m, OPTIMAL)] -= pop
            small = _small(pop, 1, t)
            unit = cells.unit(("mart_facility_daily", (f, date), "population"), primary=small)
            cells.cell(key, pop, unit=unit, need=pi if small else 0.0)
            day_keys.append(key)
            nat_const[(m, c)] -= pop
            if over:
                over_parts[(m, c)].append(key)
                over_const[(m, c)] -= pop
        if s is not None:
            small = _small(s, d, t)
            unit = cells.unit(("mart_facility_monthly", (f, f"{m}-01"), "population"),
                              primary=small)
            cells.cell(month_key, s, unit=unit, scale=d, need=pi * d if small else 0.0)
            cells.relation(month_key, day_keys)
        if n_classes == 1 and s is not None:
            nat_parts[(m, c0)].append(month_key)
        else:
            for key, r in zip(day_keys, rows, strict=True):
                nat_parts[(m, r[3])].append(key)
    by_month: dict[str, list[str]] = defaultdict(list)
    over_keys: dict[str, list[str]] = defaultdict(list)  # the overcrowded class cells
    for (m, c), census_days in national.items():
        if c == "all":
            continue
        key = f"national|{m}|{c}|{last_day.get(m, '')}"
        small = _small(nat_value[(m, c)], census_days, t)
        unit = cells.unit(("mart_national_monthly", (f"{m}-01", c), "population"),
                          primary=small)
        cells.cell(key, nat_value[(m, c)], unit=unit, scale=census_days,
                   need=pi * census_days if small else 0.0)
        cells.relation(key, nat_parts[(m, c)], nat_const.get((m, c), 0.0))
        if c != OPTIMAL:  # a subset of 'small': never a part of the 'all' total
            by_month[m].append(key)
            over_keys[m].append(f"overcrowded|{m}|{c}|{last_day.get(m, '')}")
        over_key = f"overcrowded|{m}|{c}|{last_day.get(m, '')}"
        small = _small(over_value[(m, c)], census_days, t)
        over_unit = cells.unit(("mart_national_monthly", (f"{m}-01", c), "overcrowded"),
                               primary=small)
        cells.require(over_unit, unit)
        # withheld when small on average, but a sum of facility-days that are protected
        # one by one: its interval must be `pi` person-days wide (not pi x days)
        cells.cell(over_key, over_value[(m, c)], unit=over_unit, scale=census_days,
                   need=pi if small else 0.0)
        cells.relation(over_key, over_parts[(m, c)], over_const.get((m, c), 0.0))
    for m, keys in by_month.items():
        if (m, "all") not in national:
            continue
        census_days = national[(m, "all")]
        last = last_day.get(m, "")
        if (m, UNKNOWN) in nat_value and (m, UNKNOWN) not in national:
            # the days of no class: in the 'all' row, in no class row, so the 'all' row
            # minus the classes gives their sum: a hidden cell, protected if small
            for kind, value, parts, rest, need in (
                    ("national", nat_value, nat_parts, nat_const, pi * census_days),
                    ("overcrowded", over_value, over_parts, over_const, pi)):
                hidden_key = f"{kind}|{m}|{UNKNOWN}|{last}"
                small = _small(value[(m, UNKNOWN)], census_days, t)
                cells.cell(hidden_key, value[(m, UNKNOWN)], unit=cells.unit(HIDDEN),
                           scale=census_days, need=need if small else 0.0)
                cells.units[cells.unit(HIDDEN)].withheld = True
                cells.relation(hidden_key, parts[(m, UNKNOWN)], rest.get((m, UNKNOWN), 0.0))
                if kind == "national":
                    keys = [*keys, hidden_key]
                else:
                    over_keys[m].append(hidden_key)
        total = sum(cells.values[cells.index[k]] for k in keys)
        key = f"national|{m}|all|{last}"
        unit = cells.unit(("mart_national_monthly", (f"{m}-01", "all"), "population"),
                          primary=_small(total, census_days, t))
        cells.cell(key, total, unit=unit, scale=census_days)
        cells.relation(key, keys)
        share = cells.unit(("mart_national_monthly", (f"{m}-01", "all"), "small_share"),
                           primary=_small(small_scale.get(m, 0.0), census_days, t))
        cells.require(share, unit)
        small_row = ("mart_national_monthly", (f"{m}-01", "small"), "population")
        if small_row in cells.unit_index:
            cells.require(share, cells.unit_index[small_row])
        over_all = cells.unit(("mart_national_monthly", (f"{m}-01", "all"), "overcrowded"))
        cells.require(over_all, unit)
        # the overcrowded person-days of all facility-days: the classes' and those of no
        # class (a sum of facility-days protected one by one, as the classes')
        over_total = sum(cells.values[cells.index[k]] for k in over_keys[m])
        over_key = f"overcrowded|{m}|all|{last}"
        cells.cell(over_key, over_total, unit=over_all, scale=census_days,
                   need=pi if _small(over_total, census_days, t) else 0.0)
        cells.relation(over_key, over_keys[m])
    # after today's cells, so that a sum published before with today's value is known
    # (known_cells) rather than a fact to build
    nat_then.update({g: v for g, v in nat_days.items() if g[1] == OPTIMAL})
    _earlier_facts(cells, t, sums, states, by_fm, (nat_days, nat_then, outside), totals)


def _earlier_facts(cells: LinkedCells, t: Thresholds, sums: list[Sum],
                   states: dict[str, list[DayState]],
                   by_fm: dict[tuple[str, str], list[tuple]],
                   nat: tuple[dict[tuple[str, str], list[tuple]], ...],
                   totals: _DayTotals) -> None:
    """Each population sum published before, as facts about today's cells: the sum of
    the days it covered as they were (_composition) at the last vintage that published
    it, and at each vintage before one of its days changed while the sum kept its value
    (the same total, another composition). The current state of a sum with today's
    total and today's days is today's relation (known): it is not repeated. A national
    sum counts the days of its class then (`nat`: the active days by today's class and
    by the last publication's, and the days not read one by one that were corrected
    once)."""
    nat_days, nat_then, outside = nat
    for name, key, value, since, vintage in sums:
        kind, *rest = key.split("|")
        constant, corrected, moved = 0.0, [], False
        if kind == "month":
            f, m, last = rest
            members = [(r[1], f"day|{f}|{r[1]}", r[4], r[5]) for r in by_fm.get((f, m), [])
                       if r[1] <= last]
        else:
            m, c, last = rest
            over_only = kind == "overcrowded"
            members, today, corrected = (
                [r for r in group.get((m, c), []) if r[0] <= last and (r[3] or not over_only)]
                for group in (nat_then, nat_days, outside))
            if members:
                # the days not read one by one (all published), as a constant: `totals`
                # has the active days by today's class
                constant = totals.up_to(m, c, last, over_only) - sum(r[2] for r in today)
            # days of another class then than today: not today's composition
            moved = {r[1] for r in members} != {r[1] for r in today}
        if not members:
            continue  # all its days published, as they were: nothing withheld to name
        i = cells.index.get(key)
        is_today = name == key and i is not None and abs(cells.values[i] - value) <= 1e-6
        at = {vintage} | {state[0] - 1 for _, day_key, *_ in (*members, *corrected)
                           for state in states.get(day_key, ()) if since < state[0] <= vintage}
        made = set()
        for v in sorted(at, reverse=True):
            parts, total, differs = _composition(cells, t, members, states, v, constant)
            shift = _corrected_at(corrected, states, v)
            if shift is None:
                continue  # a corrected day withheld then: not expressible without its cell
            signature = (tuple(parts), round(total + shift, 6))
            if not parts or (is_today and not (differs or moved or abs(shift) > 1e-6)) \
                    or signature in made:
                continue
            made.add(signature)
            cells.earlier_fact(name if v == vintage else f"{name}|at{v}", value, parts,
                               total + shift)


def _corrected_at(days: list[tuple], states: dict[str, list[DayState]],
                  vintage: int) -> float | None:
    """How much the days not read one by one but corrected once (published then) differ
    at `vintage` from today's values, which the constant of a national sum counts
    (None: one was withheld then)."""
    shift = 0.0
    for _, day_key, pop, _ in days:
        then = _state_at(states.get(day_key, []), vintage)
        if then is None:
            shift -= pop  # not published then: not in the sum
        elif then[2] is None:
            return None
        else:
            shift += then[2] - pop
    return shift


def _composition(cells: LinkedCells, t: Thresholds, members: list[tuple],
                 states: dict[str, list[DayState]], vintage: int,
                 constant: float) -> tuple[list[str], float, bool]:
    """A sum's days as they were at `vintage`: (the unknowns, the constant, whether any
    day differs from today). Published then with another value than today's: a
    constant; withheld then with another value: its own unknown (_then_cell); not in
    the ledger then (delivered later): not in the sum."""
    parts: list[str] = []
    differs = False
    for _, day_key, pop, _ in members:
        then = _state_at(states.get(day_key, []), vintage)
        if then is None:
            differs = True
            continue
        since, _, published, withheld, need = then
        if published is not None and abs(published - pop) > 1e-6:
            constant += published
            differs = True
        elif published is None and withheld is not None and abs(withheld - pop) > 1e-6:
            parts.append(_then_cell(cells, f"{day_key}|{since}", withheld, t, need))
            differs = True
        elif day_key in cells.index:
            parts.append(day_key)
        else:
            constant += pop
    return parts, constant, differs


class _DayTotals:
    """Today's population of every class (and small_optimal, and all) by month and day,
    summed up to a day: the national sums' days not read one by one, in one query."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.days: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.sums: dict[tuple[str, str, bool], list[float]] = defaultdict(list)
        for m, c, day, total, over in con.execute("""
                SELECT strftime(month, '%Y-%m'), coalesce(scale_class, 'unknown'),
                       census_date::VARCHAR, sum(population)::DOUBLE,
                       coalesce(sum(population) FILTER (WHERE density > 100), 0)::DOUBLE
                FROM wh.intermediate.int_facility_days WHERE population IS NOT NULL
                GROUP BY ALL
                UNION ALL
                SELECT strftime(month, '%Y-%m'), 'small_optimal', census_date::VARCHAR,
                       sum(population)::DOUBLE,
                       coalesce(sum(population) FILTER (WHERE density > 100), 0)::DOUBLE
                FROM wh.intermediate.int_facility_days
                WHERE population IS NOT NULL AND coalesce(is_small_optimal, false)
                GROUP BY ALL
                UNION ALL
                SELECT strftime(month, '%Y-%m'), 'all', census_date::VARCHAR,
                       sum(population)::DOUBLE,
                       coalesce(sum(population) FILTER (WHERE density > 100), 0)::DOUBLE
                FROM wh.intermediate.int_facility_days WHERE population IS NOT NULL
                GROUP BY ALL
                ORDER BY 1, 2, 3""").fetchall():
            self.days[(m, c)].append(day)
            for over_only, value in ((False, total), (True, over)):
                cumulative = self.sums[(m, c, over_only)]
                cumulative.append((cumulative[-1] if cumulative else 0.0) + value)

    def up_to(self, m: str, c: str, last: str, over_only: bool) -> float:
        n = bisect.bisect_right(self.days.get((m, c), []), last)
        return self.sums[(m, c, over_only)][n - 1] if n else 0.0


def known_cells(cells: LinkedCells, con: duckdb.DuckDBPyConnection) -> int:
    """Mark the cells whose last published value is today's as known; how many. (An
    older state with today's value is not: the attacker cannot tell the value came
    back.)"""
    import pandas as pd

    frame = pd.DataFrame({"key": cells.keys, "i": range(len(cells.keys)),
                          "value": cells.values})
    con.register("disclosure_cells", frame)
    try:
        hits = con.execute("""
            SELECT c.i FROM disclosure_cells c JOIN ledger l USING (key)
            WHERE abs(c.value - l.value) <= 1e-6""").fetchall()
    finally:
        con.unregister("disclosure_cells")
    cells.known.update(int(i) for (i,) in hits)
    return len(hits)


def withheld_before(cells: LinkedCells, con: duckdb.DuckDBPyConnection) -> int:
    """Withhold again every unit whose cell was withheld before (ledger value NULL), so
    that a value once confidential stays so and a republication of the same data is the
    same publication (consistency across vintages); how many units."""
    import pandas as pd

    frame = pd.DataFrame({"key": cells.keys, "i": range(len(cells.keys))})
    con.register("disclosure_cells", frame)
    try:
        hits = con.execute("""
            SELECT c.i FROM disclosure_cells c JOIN ledger l USING (key)
            WHERE l.value IS NULL""").fetchall()
    finally:
        con.unregister("disclosure_cells")
    units = {cells.cell_unit[int(i)] for (i,) in hits} - {-1}
    for u in units:
        cells.units[u].withheld = True
    return len(units)


def cohorts(cells: LinkedCells, con: duckdb.DuckDBPyConnection, t: Thresholds) -> None:
    """The release-cohort family (docs in the module)."""
    pi = t.protection_interval
    if not _table_exists(con, "intermediate.int_recidivism_groups"):
        return
    hidden = cells.unit(HIDDEN)
    cells.units[hidden].withheld = True
    groups = con.execute("""
        SELECT cohort_year::VARCHAR, group_type, group_value, cohort_size::DOUBLE,
               reoffenders_2y_general::DOUBLE, reoffenders_2y_custodial::DOUBLE,
               proven_reoffenders_1y::DOUBLE, coalesce(is_proven_mature, false)
        FROM wh.intermediate.int_recidivism_groups
        ORDER BY 1, 2, 3""").fetchall()
    counts = list(COHORT_COUNTS)
    mature: dict[str, bool] = defaultdict(lambda: True)
    for row in groups:
        mature[row[0]] = mature[row[0]] and row[7]
    # a cohort year of fewer persons than the protection interval cannot be protected
    # against an attacker who knows its total: every count and rate of it is withheld,
    # and it enters no relation (nothing of it is published to link)
    year_size: dict[str, float] = defaultdict(float)
    for year, gt, _, size, *_ in groups:
        if gt == "scale_class" and size is not None:
            year_size[year] += size
    tiny = {year for year, n in year_size.items() if n < pi}
    for year, gt, gv, size, *measures, _ in groups:
        key = ("mart_recidivism_cohort", (year, gt, gv))
        if year in tiny:
            size_unit = cells.unit((*key, "size"), primary=True)
            for part in ("rates", "frequency"):
                cells.require(cells.unit((*key, part), primary=True), size_unit)
            continue
        size_unit = cells.unit((*key, "size"), primary=_small(size, 1, t))
        values = dict(zip(counts, (size, *measures), strict=True))
        small_counts = [n for n in counts[1:] if values[n] is not None
                        and (_small(values[n], 1, t) or _small(size - values[n], 1, t))]
        rates_unit = cells.unit((*key, "rates"),
                                primary=size < t.min_recidivism_cohort or bool(small_counts))
        cells.require(rates_unit, size_unit)
        proven = values["proven_reoffenders_1y"]
        frequency = cells.unit((*key, "frequency"),
                               primary=proven is not None and proven < t.min_rate_denominator)
        cells.require(frequency, rates_unit)
        cells.cell(f"cohort|{year}|{gt}|{gv}|cohort_size", size, unit=size_unit,
                   need=pi if _small(size, 1, t) else 0.0)
        for n in counts[1:]:
            if values[n] is None or (n == "proven_reoffenders_1y" and not mature[year]):
                continue
            need = pi if n in small_counts else (
                t.min_interval if cells.units[rates_unit].primary else 0.0)
            cells.cell(f"cohort|{year}|{gt}|{gv}|{n}", values[n], unit=rates_unit, need=need)
    if not _table_exists(con, "intermediate.int_release_outcomes"):
        return
    windows = _facility_windows(cells, con, t, tiny)
    by_facility = ", coalesce(facility_id::VARCHAR, 'unknown') AS facility" if windows else ""
    attributions = ", ".join(f"coalesce({col}::VARCHAR, 'unknown') AS {gt}"
                             for gt, col in GROUP_ATTRIBUTIONS.items()) + by_facility
    tallies = ", ".join(
        "count(*)::DOUBLE" if flag is None
        else f"(count(*) FILTER (WHERE {flag}))::DOUBLE" for flag in COHORT_COUNTS.values())
    cross = con.execute(f"""
        SELECT cohort_year::VARCHAR, {attributions}, {tallies}
        FROM wh.intermediate.int_release_outcomes
        WHERE is_cohort_mature AND coalesce(is_cohort_member, true)
        GROUP BY ALL ORDER BY ALL""").fetchall()
    n_attr = len(GROUP_ATTRIBUTIONS) + bool(windows)
    members: dict[str, list[str]] = defaultdict(list)
    totals: dict[str, float] = defaultdict(float)
    for row in cross:
        year, attrs, tally = row[0], row[1:1 + n_attr], row[1 + n_attr:]
        if year in tiny:
            continue
        for n, value in zip(counts, tally, strict=True):
            if value == 0:
                continue  # a structural zero, as the attacker is granted
            key = f"cross|{year}|{'|'.join(attrs)}|{n}"
            cells.cell(key, value, unit=hidden)
            totals[f"{year}|{n}"] += value
            members[f"cohort|{year}|total|total|{n}"].append(key)
            for gt, gv in zip(GROUP_ATTRIBUTIONS, attrs[:len(GROUP_ATTRIBUTIONS)],
                              strict=True):
                members[f"cohort|{year}|{gt}|{gv}|{n}"].append(key)
            if windows and n in FACILITY_COUNTS.values() and year in windows:
                members[f"frec|{windows[year]}|{attrs[-1]}|{n}"].append(key)
    for year_n, value in totals.items():
        year, n = year_n.split("|")
        cells.cell(f"cohort|{year}|total|total|{n}", value, unit=None)
    for key, parts in members.items():
        if key in cells.index:
            cells.relation(key, parts)
    if windows:
        _window_pools(cells, windows, hidden)


def _window_pools(cells: LinkedCells, windows: dict[str, str], hidden: int) -> None:
    """For each window, group and count: a hidden cell, the sum of the group's cohort
    rows over the window's years and, as well, of its facilities' windows (a facility
    whose releases in the window fall in more than one group, or that has no window,
    enters by its cross cells). Implied by the cross table, so they tell the attacker
    nothing new, but they put the facilities of a group and the group's rows in one
    relation: the secondary suppression then finds another facility of the group to
    protect a facility with."""
    n_attr = len(GROUP_ATTRIBUTIONS)
    # (window, count) -> facility -> its cross cells in the window's years
    cross: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key in cells.keys:
        if key.startswith("cross|"):
            _, year, *attrs, facility, n = key.split("|")
            if len(attrs) == n_attr and year in windows and n in FACILITY_COUNTS.values():
                cross[(windows[year], n)][facility].append(key)
    years_of: dict[str, list[str]] = defaultdict(list)
    for year, w in windows.items():
        years_of[w].append(year)
    for (w, n), by_facility in cross.items():
        for position, gt in enumerate((*GROUP_ATTRIBUTIONS, "total")):
            def group(x: str, position: int = position) -> str:
                return "total" if position == n_attr else x.split("|")[2 + position]
            parts: dict[str, list[str]] = defaultdict(list)
            for facility, xs in by_facility.items():
                window = f"frec|{w}|{facility}|{n}"
                seen = {group(x) for x in xs}
                if len(seen) == 1 and window in cells.index:
                    parts[seen.pop()].append(window)
                else:
                    for x in xs:
                        parts[group(x)].append(x)
            for gv, pool_parts in parts.items():
                rows = [r for r in (f"cohort|{y}|{gt}|{gv}|{n}" for y in years_of[w])
                        if r in cells.index]
                if not rows:
                    continue
                key = f"pool|{w}|{gt}|{gv}|{n}"
                cells.cell(key, sum(cells.values[cells.index[r]] for r in rows), unit=hidden)
                cells.relation(key, rows)
                cells.relation(key, pool_parts)


# mart_facility_recidivism: its counts, as the cohort counts they pool
FACILITY_COUNTS = {"releases": "cohort_size", "reoffenders": "reoffenders_2y_general"}
FACILITY_WINDOWS = "intermediate.int_facility_recidivism_funnel"


def _facility_windows(cells: LinkedCells, con: duckdb.DuckDBPyConnection, t: Thresholds,
                      tiny: set[str]) -> dict[str, str]:
    """The facility windows of mart_facility_recidivism (releases and two-year general
    reoffenders of a facility pooled over a window of cohort years): cells
    `frec|<last year>|<facility>|<cohort count>`, each the sum of the hidden cross
    table's cells of that facility in the window's years (cohorts adds the facility to
    the cross table's attributions and the relations). So the facilities of a window add
    up, year by year, to the cohort mart's groups, as they truly do. The primary rules
    are the cohort mart's: releases of 1..4, and rates on fewer releases than the
    cohort or rate minimum or with 1..4 reoffenders or non-reoffenders. A window holding
    a cohort year too small to protect is withheld whole. Returns cohort year -> the
    last cohort year of its window (empty when the mart is not built)."""
    if not _table_exists(con, FACILITY_WINDOWS):
        return {}
    pi = t.protection_interval
    rows = con.execute(f"""
        SELECT facility_id::VARCHAR, last_cohort_year::VARCHAR, first_cohort_year,
               last_cohort_year, releases::DOUBLE, reoffenders::DOUBLE
        FROM wh.{FACILITY_WINDOWS} WHERE facility_id IS NOT NULL
        ORDER BY 2, 1""").fetchall()
    window_of: dict[str, str] = {}
    for f, w, first, last, releases, reoffenders in rows:
        years = [str(y) for y in range(int(first), int(last) + 1)]
        key = ("mart_facility_recidivism", (f, w))
        if any(y in tiny for y in years):
            size = cells.unit((*key, "size"), primary=True)
            cells.require(cells.unit((*key, "rates"), primary=True), size)
            continue
        window_of.update((y, w) for y in years)
        small_size = _small(releases, 1, t)
        size = cells.unit((*key, "size"), primary=small_size)
        small_counts = reoffenders is not None and (
            _small(reoffenders, 1, t) or _small(releases - reoffenders, 1, t))
        rates = cells.unit((*key, "rates"), primary=(
            releases < t.min_recidivism_cohort or releases < t.min_rate_denominator
            or small_counts))
        cells.require(rates, size)
        cells.cell(f"frec|{w}|{f}|cohort_size", releases, unit=size,
                   need=pi if small_size else 0.0)
        if reoffenders is not None:
            need = pi if small_counts else (
                t.min_interval if cells.units[rates].primary else 0.0)
            cells.cell(f"frec|{w}|{f}|reoffenders_2y_general", reoffenders, unit=rates,
                       need=need)
    return window_of


# The staff and regime rates whose numerator is a count of persons: unit name ->
# (numerator, the facility-month's base, the national row's base). The published rate
# times its base gives the count back, so the base is taken as known to the attacker.
REGIME_COUNTS = {
    "work": ("in_paid_work", "avg_population", "work_avg_population"),
    "education": ("in_education", "avg_population", "education_avg_population"),
    "digital": ("with_digital_contact", "avg_population", "digital_avg_population"),
    "plan": ("releases_with_plan", "releases_total", "releases_total"),
    # trained staff: facility-months only (no national row publishes it)
    "trained": ("trained_last_24m", "headcount_with_training_reported", None),
}


def _rate_primary(count: float, base: float, t: Thresholds) -> tuple[bool, float]:
    """(primary?, protection interval) of a count behind a published rate: a count or its
    complement (base - count) of 1..min_person_count - 1 persons needs the protection
    interval; a base under min_rate_denominator is withheld and keeps min_interval."""
    if _small(count, 1, t) or _small(base - count, 1, t):
        return True, t.protection_interval
    if base < t.min_rate_denominator:
        return True, t.min_interval
    return False, 0.0


def _small_count_sql(count: str, base: str, t: Thresholds) -> str:
    few = float(t.min_person_count)
    return (f"(({count} > 0 AND {count} < {few}) "
            f"OR ({base} - {count} > 0 AND {base} - {count} < {few}))")


def rate_primary_sql(count: str, base: str, t: Thresholds) -> str:
    """_rate_primary's verdict in SQL, on the columns (or expressions) `count`, `base`."""
    return f"({_small_count_sql(count, base, t)} OR {base} < {float(t.min_rate_denominator)})"


def rate_need_sql(count: str, base: str, t: Thresholds) -> str:
    """_rate_primary's protection interval in SQL."""
    return (f"CASE WHEN {_small_count_sql(count, base, t)} THEN {float(t.protection_interval)}"
            f" WHEN {base} < {float(t.min_rate_denominator)} THEN {float(t.min_interval)}"
            f" ELSE 0.0 END")


def regime_keys(name: str, facility: bool) -> str:
    """SQL of the ledger key of a count's cell (facility-month or national row)."""
    if facility:
        return f"'regime|{name}|' || facility_id || '|' || strftime(month, '%Y-%m')"
    return f"'regimenat|{name}|' || strftime(month, '%Y-%m') || '|' || scale_class"


def regime(cells: LinkedCells, con: duckdb.DuckDBPyConnection, t: Thresholds) -> None:
    """The staff and regime family: for each count of REGIME_COUNTS, the facility-months'
    counts add up, by the facility-month's class, to the national class row's count
    (mart_national_monthly), and the classes to the 'all' row; 'small_optimal' is the
    sum of its own facility-months.

    Within a month, the facility-months withheld only for their small base (fewer than
    min_rate_denominator persons; not a count of 1..4) have the same coefficients in
    every relation as the others of their class (in or out of small_optimal): they
    enter as one pooled unknown per group, which keeps min_interval (each of them then
    lies in [0, at least the pool's upper end]); the published ones as at most
    REGIME_CANDIDATES candidates for secondary suppression, the rest as constants.
    This keeps the attacker's programme exact and its size independent of the number
    of facilities.

    A month of a count is built as linked tables only when it has something to withhold
    (a primary cell) and something the attacker has not seen with today's value (a new
    or changed cell). Any other month is either all published, or as it was in an
    earlier publication, whose audit it passed: its cells withheld before are withheld
    again (units without cells), and everything else is published as before. So a
    daily publication builds only the months its deliveries touched."""
    if not all(_table_exists(con, f"intermediate.{m}") for m in (
            "int_facility_month_kpis", "int_national_month_kpis")):
        return
    for name, (count, base, national_base) in REGIME_COUNTS.items():
        # key, month, class, optimal, value, base, ledger state (None: not in it; 0:
        # withheld before; 1: published with today's value; 2: published, another value)
        ledger_state = """CASE WHEN l.key IS NULL THEN NULL WHEN l.value IS NULL THEN 0
                          WHEN abs(l.value - r.value) <= 1e-6 THEN 1 ELSE 2 END"""
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE regime_facility AS
            WITH r AS (
                SELECT {regime_keys(name, True)} AS key, facility_id,
                       strftime(month, '%Y-%m') AS m, coalesce(scale_class, 'unknown') AS c,
                       coalesce(is_small_optimal, false) AS optimal,
                       {count}::DOUBLE AS value, {base}::DOUBLE AS base
                FROM wh.intermediate.int_facility_month_kpis
                WHERE {count} IS NOT NULL AND {base} IS NOT NULL AND {base} > 0)
            SELECT r.key, r.facility_id, r.m, r.c, r.optimal, r.value, r.base,
                   {ledger_state} AS state, l.value AS earlier_value,
                   l.value IS NULL AND abs(l.withheld_value - r.value) > 1e-6 AS revised
            FROM r LEFT JOIN ledger l USING (key)""")
        national = "SELECT NULL::VARCHAR AS key, NULL::VARCHAR AS m, NULL::VARCHAR AS c, " \
                   "NULL::DOUBLE AS value, NULL::DOUBLE AS base, NULL::INTEGER AS state, " \
                   "NULL::DOUBLE AS earlier_value, NULL::INTEGER AS staged WHERE false"
        if national_base is not None:
            national = f"""
            WITH r AS (
                SELECT {regime_keys(name, False)} AS key, strftime(month, '%Y-%m') AS m,
                       scale_class AS c, {count}::DOUBLE AS value,
                       {national_base}::DOUBLE AS base
                FROM wh.intermediate.int_national_month_kpis
                WHERE {count} IS NOT NULL AND {national_base} IS NOT NULL
                  AND {national_base} > 0)
            SELECT r.key, r.m, r.c, r.value, r.base, {ledger_state} AS state,
                   l.value AS earlier_value, l.staged
            FROM r LEFT JOIN ledger l USING (key)"""
        con.execute(f"CREATE OR REPLACE TEMP TABLE regime_national AS {national}")
        # the months built as linked tables (docstring): a primary cell (_rate_primary,
        # in SQL) and a cell the attacker has not seen with today's value (state NULL or 2)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE regime_active AS
            SELECT m FROM (SELECT m, value, base, state FROM regime_facility
                           UNION ALL SELECT m, value, base, state FROM regime_national)
            GROUP BY m
            HAVING bool_or({rate_primary_sql("value", "base", t)})
               AND bool_or(state IS NULL OR state = 2)""")
        active = {r[0] for r in con.execute("SELECT m FROM regime_active").fetchall()}
        # outside those months only the cells withheld before matter (withheld again)
        facility_rows = con.execute("""
            SELECT key, facility_id, m, c, optimal, value, base, state,
                   coalesce(revised, false)
            FROM regime_facility
            WHERE state = 0 OR m IN (SELECT m FROM regime_active) ORDER BY key""").fetchall()
        national_rows = con.execute("""
            SELECT key, m, c, value, base, state, earlier_value, staged FROM regime_national
            WHERE state = 0 OR m IN (SELECT m FROM regime_active) ORDER BY key""").fetchall()
        # the national rows published before in a state superseded since (and, below,
        # in their current state): facts (name, value, month, class, vintage)
        facts = con.execute(f"""
            SELECT key || '|v' || staged, value, split_part(key, '|', 3),
                   split_part(key, '|', 4), staged
            FROM {HISTORY}
            WHERE starts_with(key, ?) AND value IS NOT NULL
              AND split_part(key, '|', 3) IN (SELECT m FROM regime_active)
            ORDER BY ALL""", [f"regimenat|{name}|"]).fetchall()
        then_rows = _then_rows(con, name)
        con.execute("DROP TABLE regime_facility; DROP TABLE regime_national; "
                    "DROP TABLE regime_active")
        parts: dict[tuple[str, str], list[str]] = defaultdict(list)
        constant: dict[tuple[str, str], float] = defaultdict(float)
        # pooled twins withheld for their small base: (group, withheld before) -> sum
        pooled: dict[tuple[str, str, bool, bool], float] = defaultdict(float)
        # the part (a cell or a pool of them) of each facility-month withheld before with
        # today's value (one revised since is its own unknown in the sums of then)
        part_of: dict[str, str] = {}
        candidates: dict[tuple[str, str, bool], list[tuple[float, str, tuple]]] = \
            defaultdict(list)
        for key, f, m, c, optimal, value, b, state, revised in facility_rows:
            unit_key = ("mart_facility_monthly", (f, f"{m}-01"), name)
            if m not in active:
                if state == 0:  # withheld before: withheld again
                    cells.units[cells.unit(unit_key)].withheld = True
                continue
            primary, need = _rate_primary(value, b, t)
            group = (m, c, optimal)
            if primary and need <= t.min_interval and state != 1:
                # withheld for its small base, unknown to the attacker: pooled with its
                # twins (below), those withheld before apart from the others
                cells.units[cells.unit(unit_key, primary=True)].withheld = True
                before = state == 0 and not revised
                pooled[(*group, before)] += value
                if before:
                    part_of[key] = f"regimepool|{name}|{m}|{c}|{optimal}|before"
                continue
            if not primary and state == 1:  # published before with this value: a constant
                _fold(constant, m, c, optimal, value)
                continue
            if not primary and state != 0:
                candidates[group].append((value, key, unit_key))
                continue
            cells.cell(key, value, unit=cells.unit(unit_key, primary=primary), need=need)
            _add_part(parts, m, c, optimal, key)
            if state == 0 and not revised:
                part_of[key] = key
        for (m, c, optimal), listed in candidates.items():
            listed.sort()
            for value, key, unit_key in listed[:REGIME_CANDIDATES]:
                cells.cell(key, value, unit=cells.unit(unit_key))
                _add_part(parts, m, c, optimal, key)
            for value, *_ in listed[REGIME_CANDIDATES:]:
                _fold(constant, m, c, optimal, value)
        for (m, c, optimal, before), value in pooled.items():
            hidden = cells.unit(HIDDEN)
            cells.units[hidden].withheld = True
            key = f"regimepool|{name}|{m}|{c}|{optimal}" + ("|before" if before else "")
            cells.cell(key, value, unit=hidden, need=t.min_interval)
            _add_part(parts, m, c, optimal, key)
        by_month: dict[str, list[str]] = defaultdict(list)
        totals: dict[str, str] = {}
        for key, m, c, value, b, state, then, vintage in national_rows:
            unit_key = ("mart_national_monthly", (f"{m}-01", c), name)
            if m not in active:
                if state == 0:
                    cells.units[cells.unit(unit_key)].withheld = True
                continue
            if state in (1, 2):  # published before (revised or not): a fact as it was
                facts.append((key, then, m, c, vintage))
            primary, need = _rate_primary(value, b, t)
            cells.cell(key, value, unit=cells.unit(unit_key, primary=primary), need=need)
            if c == "all":
                totals[m] = key
            else:
                cells.relation(key, parts[(m, c)], constant[(m, c)])
                if c != OPTIMAL:
                    by_month[m].append(key)
        for m, key in totals.items():  # facility-months of no class are in 'all' only
            cells.relation(key, by_month[m] + parts[(m, "unknown")], constant[(m, "unknown")])
        # the national rows published before, each with the sums of its vintage
        sums_then = {v: _then_sums(cells, t, then_rows, part_of, v)
                     for v in sorted({fact[4] for fact in facts})}
        for fact, value, m, c, vintage in facts:
            _earlier_national(cells, fact, value, m, c, *sums_then[vintage])


def _earlier_national(cells: LinkedCells, key: str, then: float, m: str, c: str,
                      parts: dict[tuple[str, str], list[str] | None],
                      constant: dict[tuple[str, str], float]) -> None:
    """The national row `key` as a publication published it (`then`; the sums of that
    vintage in `parts` and `constant`, _then_sums), a fact the attacker keeps: the sum
    of the facility-months of its class as they were then (the ones withheld then are
    today's unknowns or, revised since, unknowns of their own; the published ones their
    values then).
    Without it, a facility-month published then and revised today into a small count
    is the difference of today's sum and that one. The published parts are read from
    the ledger with their class then, also those with no row today; kept only if it
    holds on the true values (a facility-month withheld then and revised since makes it
    another sum); 'all' sums every class."""
    if c == "all":
        groups = [g for g in {*parts, *constant} if g[0] == m and g[1] != OPTIMAL]
    else:
        groups = [(m, c)]
    if any(g in parts and parts[g] is None for g in groups):
        return  # a facility-month withheld then has no cell today: another sum
    named = list(dict.fromkeys(k for g in groups for k in parts.get(g) or []))
    cells.earlier_fact(key, then, named, sum(constant.get(g, 0.0) for g in groups))


def _then_rows(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    """Every state in the ledger (current and superseded) of the facility-months of a
    built month (regime_active) for the count `name`, present today or not: (key,
    month, value then or None if withheld then, class then, small_optimal today, the
    value withheld then (None if published or not known), today's value (None if it
    has no row today), the vintages the state began and ended (None: current), the
    protection interval it had when withheld (None if not known)). The
    class then is the one the last publication gave it (ledger.PUBLISHED_CLASSES);
    today's where it gave none."""
    prefix = f"regime|{name}|"
    facility = f"substr(l.key, {len(prefix) + 1}, length(l.key) - {len(prefix) + 8})"
    return con.execute(f"""
        SELECT l.key, right(l.key, 7), l.value,
               coalesce(p.scale_class, r.c, 'unknown'), coalesce(r.optimal, false),
               l.withheld_value, r.value, l.since, l.until, l.withheld_need
        FROM (SELECT key, value, withheld_value, since, NULL::INTEGER AS until,
                     withheld_need FROM ledger
              UNION ALL
              SELECT key, value, withheld_value, since, until, withheld_need
              FROM {HISTORY}) l
        LEFT JOIN regime_facility r USING (key)
        LEFT JOIN {PUBLISHED_CLASSES} p
          ON p.facility_id = {facility} AND p.m = right(l.key, 7)
        WHERE starts_with(l.key, ?) AND right(l.key, 7) IN (SELECT m FROM regime_active)
        ORDER BY l.key, l.since""", [prefix]).fetchall()


def _then_sums(cells: LinkedCells, t: Thresholds, then_rows: list[tuple],
               part_of: dict[str, str], vintage: int
               ) -> tuple[dict[tuple[str, str], list[str] | None],
                          dict[tuple[str, str], float]]:
    """The national sums of the publication `vintage`, by (month, class), from the states
    the facility-months had then: the parts withheld then (today's cells or pools, once
    each; the value then as its own unknown where it was revised since or has no row
    today; None where that value is not known: a ledger written before it kept them)
    and the values it published."""
    parts: dict[tuple[str, str], list[str] | None] = defaultdict(list)
    constant: dict[tuple[str, str], float] = defaultdict(float)
    for key, m, then, c, optimal, withheld_then, today, since, until, need in then_rows:
        if since > vintage or (until is not None and until < vintage):
            continue  # another state of the key, or not published then
        if then is not None:
            _fold(constant, m, c, optimal, then)
            continue
        part = part_of.get(key)
        if withheld_then is not None and (part is None or today is None
                                          or abs(today - withheld_then) > 1e-6):
            # revised since (or back to its value then after another one): its own unknown
            part = _then_cell(cells, f"{key}|{since}", withheld_then, t, need)
        groups = [(m, c), (m, OPTIMAL)] if optimal else [(m, c)]
        for g in groups:
            if part is None:
                parts[g] = None
            elif parts[g] is not None and part not in parts[g]:
                parts[g].append(part)
    return parts, constant


# Published facility-months kept as candidates for secondary suppression in each group
# of twins (a month's class, in or out of small_optimal), the cheapest first; the others
# enter the national sums as constants. Withholding a cheaper one protects as much.
REGIME_CANDIDATES = 8


def _add_part(parts: dict, m: str, c: str, optimal: bool, key: str) -> None:
    parts[(m, c)].append(key)
    if optimal:
        parts[(m, OPTIMAL)].append(key)


def _fold(constant: dict, m: str, c: str, optimal: bool, value: float) -> None:
    constant[(m, c)] += value
    if optimal:
        constant[(m, OPTIMAL)] += value
