"""The disclosure-control step of a publication: protect, apply, audit.

Run by the publisher on the draft (publish._write_draft) after the marts are copied
from the warehouse and before anything is written to Parquet, validated or exported, so
the gate, the Parquet files, published.duckdb and the SDMX file all hold what this step
decided. It

1. builds the linked tables of every published breakdown (linked.py) with the facts of
   earlier publications (ledger.py);
2. withholds the primary units and solves secondary suppression (secondary.py);
3. audits the result as an attacker (audit.py): every withheld cell's interval must be
   at least its protection interval; the report goes into the gate's report and a
   failure fails the gate;
4. rewrites the marts of the draft: a unit's columns take the value before disclosure
   control, or NULL where withheld; every value column gets its own `<column>_flag`
   (c where withheld) and the row's `flag` carries c when any of its values is withheld;
5. stages the published cells for the ledger (merged once the publication is current).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import duckdb
import pandas as pd

from penstat.contract.layout import Paths
from penstat.contract.published import MART_COLUMNS, VALUE_FLAG_COLUMNS
from penstat.core.collector import collector_paused
from penstat.core.config import Config
from penstat.publication.disclosure import audit, ledger, linked, secondary
from penstat.publication.disclosure.cells import LinkedCells
from penstat.publication.disclosure.spec import MARTS, MartSpec

log = logging.getLogger(__name__)

PENDING = "published_cells"  # temp table: the cells this publication makes public
MEMO = "audited"  # beside the ledger: fingerprints of components that passed (audit.Memo)
# cells of the attacker's programme that no publication shows: never in the ledger
NEVER_PUBLISHED = ("earlier|", "cross|", "pool|", linked.THEN)


@dataclass
class Report:
    cells: int = 0
    days_examined: int = 0  # facility-days read one by one (the rest enter as sums)
    relations: int = 0
    relations_not_holding: int = 0
    known_from_earlier: int = 0
    # values withheld before and revised since: unknowns of their own in the facts then
    revised_while_withheld: int = 0
    primary_units: int = 0
    secondary_units: int = 0
    withheld_cells: int = 0
    audited: int = 0
    exposed: list[str] = field(default_factory=list)
    revealed_earlier: list[str] = field(default_factory=list)
    unprotectable: list[str] = field(default_factory=list)
    rounds: int = 0
    remembered: int = 0  # components that passed before, met again unchanged (no LP)
    regions_withheld: int = 0  # region-months holding a facility-month withheld here
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        return [f"disclosure audit: withheld cell {k} is pinned to an interval narrower "
                f"than its protection interval" for k in self.exposed]

    def as_dict(self) -> dict:
        return {**asdict(self), "success": not self.failures}


def thresholds(config: Config | None = None) -> linked.Thresholds:
    d = (config or Config.load()).values["disclosure"]
    return linked.Thresholds(
        min_person_count=int(d["min_person_count"]),
        min_rate_denominator=int(d["min_rate_denominator"]),
        min_recidivism_cohort=int(d["min_recidivism_cohort"]),
        protection_interval=float(d["protection_interval"]),
        min_interval=float(d["min_interval"]))


def build_cells(con: duckdb.DuckDBPyConnection, t: linked.Thresholds) -> LinkedCells:
    """The linked tables of the warehouse attached as `wh`, with the ledger's facts
    (temp table `ledger`)."""
    cells = LinkedCells()
    linked.population(cells, con, t)
    linked.cohorts(cells, con, t)
    linked.regime(cells, con, t)
    linked.known_cells(cells, con)
    linked.withheld_before(cells, con)
    kept_units(cells)
    return cells


def kept_units(cells: LinkedCells) -> int:
    """For every unit a `kept` unit requires (spec.UnitSpec.kept), the kept unit of the
    same row, withheld with it; how many."""
    made = 0
    wanted = {(spec.mart, need): unit.name for spec in MARTS for unit in spec.units
              if unit.kept for need in unit.requires}
    for key, i in list(cells.unit_index.items()):
        name = wanted.get((key[0], key[-1])) if len(key) == 3 else None
        if name is not None:
            cells.require(cells.unit((key[0], key[1], name)), i)
            made += 1
    return made


def audit_cells(cells: LinkedCells, report: Report, cache: audit.Cache | None = None,
                memo: audit.Memo | None = None) -> None:
    found = audit.intervals(cells, cache=cache, memo=memo)
    report.audited = len(found)
    earlier = set(audit.revealed_earlier(cells))
    report.revealed_earlier = [cells.keys[c] for c in sorted(earlier)]
    report.exposed = [cells.keys[iv.cell] for iv in audit.exposed(cells, found)]


def run(con: duckdb.DuckDBPyConnection, paths: Paths, config: Config | None = None,
        catalog: str = "pub") -> Report:
    """Protect, apply and audit the marts of `catalog` (the draft's published.duckdb,
    holding the warehouse's columns) from the warehouse attached as `wh`."""
    # building the cells makes many small objects without cycles; the pause covers the
    # whole step, whose cycles (pandas, DuckDB results) are collected when it ends
    with collector_paused():
        return _run(con, paths, config, catalog)


def _run(con: duckdb.DuckDBPyConnection, paths: Paths, config: Config | None,
         catalog: str) -> Report:
    report = Report()
    t0 = time.perf_counter()
    ledger.read(con, paths)
    limits = thresholds(config)
    cells = build_cells(con, limits)
    report.cells, report.relations = len(cells.keys), len(cells.relations)
    report.days_examined = sum(1 for k in cells.keys if k.startswith("day|"))
    report.relations_not_holding = cells.rejected_relations
    report.known_from_earlier = len(cells.known)
    named = {p for _, parts, _ in cells.relations for p in parts}
    report.revised_while_withheld = sum(1 for i in named
                                        if cells.keys[i].startswith(linked.THEN))
    report.primary_units = sum(u.primary for u in cells.units if u.key != linked.HIDDEN)
    t1 = time.perf_counter()
    secret = ledger.secret(paths)
    memo = audit.Memo.load(ledger.folder(paths) / MEMO, secret)
    outcome = secondary.protect(cells, secret, memo)
    report.secondary_units, report.rounds = outcome.secondary_units, outcome.rounds
    report.unprotectable = outcome.unprotectable
    t2 = time.perf_counter()
    audit_cells(cells, report, outcome.solved, memo)
    memo.save(ledger.folder(paths) / MEMO)
    report.remembered = len(memo.passed & memo.met)
    t3 = time.perf_counter()
    report.withheld_cells = int(cells.withheld_cells().sum()) - sum(
        1 for u in cells.cell_unit if u >= 0 and cells.units[u].key == linked.HIDDEN)
    for spec in MARTS:
        apply(con, catalog, spec, cells)
    report.regions_withheld = withhold_regions(con, catalog)
    stage_ledger(con, catalog, cells, paths, limits)
    t4 = time.perf_counter()
    report.seconds = {"build": round(t1 - t0, 3), "protect": round(t2 - t1, 3),
                      "audit": round(t3 - t2, 3), "apply": round(t4 - t3, 3)}
    log.info("disclosure control: %d cells, %d primary and %d secondary units withheld, "
             "%d audited, %d exposed", report.cells, report.primary_units,
             report.secondary_units, report.audited, len(report.exposed))
    return report


REGIONAL = "mart_regional_monthly"
REGIONAL_PERSON_COLUMNS = ("average_daily_population", "density", "share_in_small_scale")


def withhold_regions(con: duckdb.DuckDBPyConnection, catalog: str) -> int:
    """A region-month's person figures only where every facility-month in it publishes
    its average daily population as decided here: a regional sum is then the sum of
    published values and gives nothing back (the rule of mart_regional_monthly, applied
    to this step's decisions, which may withhold more than dbt's). The rows withheld."""
    table = f"{catalog}.marts.{REGIONAL}"
    monthly = f"{catalog}.marts.mart_facility_monthly"
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND "
        "table_schema = 'marts' AND table_name IN (?, 'mart_facility_monthly')",
        [catalog, REGIONAL]).fetchall()[0][0] == 2
    if not exists or not all(linked._table_exists(con, f"intermediate.{t}") for t in (
            "int_facility_history", "int_facility_days")):
        return 0
    nulls = ", ".join(f'"{c}" = NULL' for c in REGIONAL_PERSON_COLUMNS)
    letters = "string_split(coalesce(flag, '') || 'c', '')"
    return int(con.execute(f"""
        WITH region_members AS (
            SELECT DISTINCT d.month, h.region, d.facility_id
            FROM wh.intermediate.int_facility_days d
            JOIN wh.intermediate.int_facility_history h USING (facility_version_key)
            WHERE h.region IS NOT NULL),
        withheld AS (
            SELECT DISTINCT r.month, r.region
            FROM region_members r JOIN {monthly} m
              ON m.facility_id = r.facility_id AND m.month = r.month
            WHERE m.average_daily_population IS NULL
              AND coalesce(m.average_daily_population_flag, '') LIKE '%c%')
        UPDATE {table} t SET {nulls},
            flag = array_to_string(list_sort(list_distinct({letters})), '')
        FROM withheld w WHERE t.month = w.month AND t.region = w.region
          AND t.average_daily_population IS NOT NULL""").fetchall()[0][0])



def _withheld_units(spec: MartSpec, cells: LinkedCells) -> pd.DataFrame:
    """One row per row of the mart with a withheld unit: key columns (as text) and one
    boolean per unit."""
    rows: dict[tuple, dict[str, bool]] = {}
    for unit in cells.units:
        if unit.withheld and unit.key[0] == spec.mart:
            rows.setdefault(tuple(unit.key[1]), {})[unit.key[2]] = True
    names = [u.name for u in spec.units]
    data = [(*key, *(flags.get(n, False) for n in names)) for key, flags in rows.items()]
    return pd.DataFrame(data, columns=[f"k_{k}" for k in spec.keys] + [f"w_{n}" for n in names])


def apply(con: duckdb.DuckDBPyConnection, catalog: str, spec: MartSpec,
          cells: LinkedCells) -> None:
    """Rewrite the mart: unit columns from the source (or NULL), value flags, row flag."""
    mart = spec.mart
    table = f"{catalog}.marts.{mart}"
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'marts' AND table_name = ?",
        [catalog, mart]).fetchall())
    schema, name = spec.source.split(".")
    source_columns = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'wh' "
        "AND table_schema = ? AND table_name = ?", [schema, name]).fetchall()}
    withheld = _withheld_units(spec, cells)
    con.register("withheld_units", withheld)
    units, kept = spec.unit_columns, spec.kept_columns
    flagged = VALUE_FLAG_COLUMNS.get(mart, ())
    source_cols = sorted((set(units) | set(kept) | set(flagged)) & source_columns)
    keys = spec.keys
    # the units' keys are text: cast to the mart's types on the small side of the join
    join_w = " AND ".join(f'm."{k}" = CAST(w.k_{k} AS {types[k]})' for k in keys)
    select_s = ", ".join(f'"{c}"' for c in (*keys, *source_cols))

    def by_mart(column: str) -> str:
        """Withheld by the mart's own rule (dbt)."""
        if column in source_columns:
            return f'(m."{column}" IS NULL AND s."{column}" IS NOT NULL)'
        return f"(m.\"{column}\" IS NULL AND coalesce(m.flag, '') LIKE '%c%')"

    def is_withheld(column: str) -> str:
        if column in kept:
            return (f'((coalesce(w.w_{kept[column]}, false) AND m."{column}" IS NOT NULL) '
                    f"OR {by_mart(column)})")
        if column in units:
            present = f's."{column}" IS NOT NULL' if column in source_columns else "true"
            return f"(coalesce(w.w_{units[column]}, false) AND {present})"
        return by_mart(column)

    letters = "replace(coalesce(m.flag, ''), 'c', '')"

    def flag_of(condition: str) -> str:
        return (f"nullif(array_to_string(list_sort(string_split(CASE WHEN {condition} "
                f"THEN {letters} || 'c' ELSE {letters} END, '')), ''), '')")

    out = []
    for column in MART_COLUMNS[mart]:
        if column in units and column in source_columns:
            out.append(f'CASE WHEN {is_withheld(column)} THEN NULL ELSE '
                       f'CAST(s."{column}" AS {types[column]}) END AS "{column}"')
        elif column in units:
            out.append(f'CASE WHEN {is_withheld(column)} THEN NULL ELSE m."{column}" END '
                       f'AS "{column}"')
        elif column in kept:
            out.append(f'CASE WHEN coalesce(w.w_{kept[column]}, false) THEN NULL '
                       f'ELSE m."{column}" END AS "{column}"')
        elif column == "flag":
            any_withheld = " OR ".join(is_withheld(c) for c in flagged) or "false"
            out.append(f"{flag_of(any_withheld)} AS flag")
        elif column.endswith("_flag") and column[:-5] in flagged:
            out.append(f'{flag_of(is_withheld(column[:-5]))} AS "{column}"')
        else:
            out.append(f'm."{column}"')
    order = ", ".join(f'"{k}"' for k in keys)
    source = (f"(SELECT {select_s} FROM wh.{spec.source})" if source_columns
              else f"(SELECT {', '.join(f'm.{k}' for k in keys)} FROM {table} m WHERE false)")
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE disclosed AS
            SELECT {", ".join(out)}
            FROM {table} m
            LEFT JOIN {source} s
                ON {" AND ".join(f'm."{k}" = s."{k}"' for k in keys)}
            LEFT JOIN withheld_units w ON {join_w}""")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM disclosed ORDER BY {order}")
        con.execute("DROP TABLE disclosed")
    finally:
        con.unregister("withheld_units")


def stage_ledger(con: duckdb.DuckDBPyConnection, catalog: str, cells: LinkedCells,
                 paths: Paths, t: linked.Thresholds) -> None:
    """ledger.pending(paths): every cell this publication makes public (the days of the
    daily mart, and the sums and counts of the linked tables), merged into the ledger
    once the publication is current (ledger.commit)."""
    withheld = cells.withheld_cells()
    frame = pd.DataFrame(  # a withheld cell: value NULL (withheld again next time), and
        # its value and protection interval then (the ledger is owner-only)
        [(k, None, v, cells.needs[i]) if withheld[i] else (k, v, None, None)
         for i, (k, v) in enumerate(zip(cells.keys, cells.values, strict=True))
         if not k.startswith(NEVER_PUBLISHED)],
        columns=["key", "value", ledger.WITHHELD_VALUE, ledger.WITHHELD_NEED]).astype(
            {"key": "object", "value": "float64", ledger.WITHHELD_VALUE: "float64",
             ledger.WITHHELD_NEED: "float64"})
    con.register("published_sums", frame)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {PENDING} AS
            SELECT 'day|' || facility_id || '|' || census_date::VARCHAR AS key,
                   population::DOUBLE AS value, NULL::DOUBLE AS {ledger.WITHHELD_VALUE},
                   NULL::DOUBLE AS {ledger.WITHHELD_NEED}
            FROM {catalog}.marts.mart_facility_daily WHERE population IS NOT NULL
            UNION ALL
            SELECT * FROM published_sums
            WHERE key NOT LIKE 'day|%' AND key NOT LIKE 'regime%'
            UNION ALL
            SELECT * FROM published_sums WHERE key LIKE 'day|%' AND value IS NULL
            {_regime_ledger_rows(con, catalog, t)}""")
        ledger.stage(con, paths, PENDING)
    finally:
        con.unregister("published_sums")


# (mart, unit name) -> the published rate column of each staff and regime count
REGIME_RATES = {(spec.mart, unit.name): unit.columns[0] for spec in MARTS
                for unit in spec.units if unit.name in linked.REGIME_COUNTS}


def _regime_ledger_rows(con: duckdb.DuckDBPyConnection, catalog: str,
                        t: linked.Thresholds) -> str:
    """SQL (`UNION ALL ...`) of every staff and regime count as published: its value
    where its rate is published, NULL where withheld (and the value and the protection
    interval of linked._rate_primary in withheld_value and withheld_need).
    All of them, not only the months built as linked tables, so that a month built
    later knows what was public."""
    if not all(linked._table_exists(con, f"intermediate.{table}") for table in (
            "int_facility_month_kpis", "int_national_month_kpis")):
        return ""
    parts = []
    for name, (count, base, national_base) in linked.REGIME_COUNTS.items():
        for mart, source, keys, base_column, facility in (
                ("mart_facility_monthly", "int_facility_month_kpis", "facility_id, month",
                 base, True),
                ("mart_national_monthly", "int_national_month_kpis", "month, scale_class",
                 national_base, False)):
            rate = REGIME_RATES.get((mart, name))
            if rate is None or base_column is None:
                continue
            need = linked.rate_need_sql(f"k.{count}", f"k.{base_column}", t)
            parts.append(f"""
                SELECT {linked.regime_keys(name, facility)} AS key,
                       CASE WHEN m.{rate} IS NULL THEN NULL ELSE k.{count}::DOUBLE END,
                       CASE WHEN m.{rate} IS NULL THEN k.{count}::DOUBLE END,
                       CASE WHEN m.{rate} IS NULL THEN {need} END
                FROM {catalog}.marts.{mart} m
                JOIN wh.intermediate.{source} k USING ({keys})
                WHERE k.{count} IS NOT NULL AND k.{base_column} > 0
                  AND (m.{rate} IS NOT NULL OR coalesce(m.{rate}_flag, '') LIKE '%c%')""")
    return "".join(f" UNION ALL {p}" for p in parts)
