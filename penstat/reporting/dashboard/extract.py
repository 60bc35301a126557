"""Read the figures of the dashboard out of a publication's `published.duckdb` (read-only).

Nothing here recomputes a published figure: values are read as published, with the flags
that apply to them (penstat.reporting.dashboard.flags). The few things that are not a
published column are said to be so where they are shown: counts of published rows (days
a facility was overcrowded, deliveries by status), and the comparison with the previous
publication when the publication holds no `revisions` table.

Column lists come from the publication itself (duckdb_columns(), with their comments),
so a mart with added columns or rows, or a mart that a later publication adds (e.g.
`mart_facility_recidivism`), needs no change here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from penstat.contract.published import MART_KEYS
from penstat.core.database import connect
from penstat.reporting.dashboard.flags import Cell, flag_column, is_flag_column

PUBLISHED_DB = "published.duckdb"  # = penstat.publication.publish.PUBLISHED_DB
MANIFEST = "manifest.json"
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                 "DECIMAL", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
SCALE_CLASSES = ("small", "medium", "large", "all")
# Columns a reader filters the facility table by, when the publication has them.
FACILITY_FILTERS = ("scale_class", "facility_type", "region", "jurisdiction")
OVERCROWDED_TIERS = ("over", "severe", "critical")
OVERCROWDING_WINDOW_MONTHS = 12
CHANGED_KEYS_SHOWN = 20
# Identifier-like columns of a mart the published interface does not (yet) name.
KEY_LIKE = ("jurisdiction", "feed", "month", "census_date", "cohort_year", "release_year",
            "group_type", "group_value", "scale_class", "period", "reference_date")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str = ""

    @property
    def numeric(self) -> bool:
        return self.type.upper().startswith(NUMERIC_TYPES)

    @property
    def unit(self) -> str | None:
        """'share' (0..1, shown as percent) or 'per100', as the column's comment says."""
        text = self.comment.lower()
        if "share 0..1" in text:
            return "share"
        if "per 100" in text:
            return "per100"
        return None


@dataclass
class Table:
    """Rows of a mart (or of a query on one): each value with its flags."""

    mart: str
    columns: list[Column]
    keys: tuple[str, ...]
    rows: list[dict[str, Cell]] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def key_of(self, row: dict[str, Cell]) -> str:
        return "|".join(str(row[k].value) for k in self.keys if k in row)


class Publication:
    """A publication folder, read through its published.duckdb (opened read-only)."""

    def __init__(self, folder: Path, temp_directory: Path | None = None):
        self.folder = Path(folder)
        database = self.folder / PUBLISHED_DB
        if not database.is_file():
            raise FileNotFoundError(f"no {PUBLISHED_DB} in publication {self.folder}")
        self.con = connect(database, read_only=True, temp_directory=temp_directory)
        self._columns: dict[tuple[str, str], list[Column]] = {}

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Publication:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ what it holds
    def tables(self, schema: str = "marts") -> list[str]:
        return [t for (t,) in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
            "AND database_name = current_database() ORDER BY table_name", [schema]).fetchall()]

    def has(self, table: str, schema: str = "marts") -> bool:
        return table in self.tables(schema)

    def columns(self, table: str, schema: str = "marts") -> list[Column]:
        if (schema, table) not in self._columns:
            self._columns[(schema, table)] = [Column(n, t, c or "") for n, t, c in self.con.execute(
                "SELECT column_name, data_type, comment FROM duckdb_columns() "
                "WHERE schema_name = ? AND table_name = ? AND database_name = current_database() "
                "ORDER BY column_index", [schema, table]).fetchall()]
        return self._columns[(schema, table)]

    def comment(self, table: str, schema: str = "marts") -> str:
        row = self.con.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
            "AND database_name = current_database()", [schema, table]).fetchone()
        return (row[0] or "") if row else ""

    def manifest(self) -> dict:
        try:
            return json.loads((self.folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    def meta(self) -> dict:
        """meta.publication's one row (version, previous_version, published_at, ...), or
        what the manifest says for a publication made before meta existed."""
        if self.has("publication", "meta"):
            cur = self.con.execute("SELECT * FROM meta.publication LIMIT 1")
            row = cur.fetchone()
            if row is not None:
                return {d[0]: v for d, v in zip(cur.description, row, strict=True)}
        m = self.manifest()
        return {k: m.get(k) for k in ("interface_version", "version", "previous_version",
                                      "published_at")} | {"deliveries": len(m.get("deliveries",
                                                                                  []))}

    # ------------------------------------------------------------ rows with flags
    def table(self, mart: str, where: str = "", params: Sequence = (), order: str = "",
              limit: int | None = None, schema: str = "marts",
              extra: Sequence[tuple[str, str, str]] = ()) -> Table:
        """The rows of `mart` (all its published columns, in order) as Cells.

        `extra`: (name, SQL expression, type) of computed columns added after the
        published ones (counts of published rows); they carry no flags."""
        published = self.columns(mart, schema)
        names = [c.name for c in published]
        select = ", ".join([f'"{n}"' for n in names] + [f"{sql} AS \"{n}\"" for n, sql, _ in extra])
        sql = f'SELECT {select} FROM {schema}."{mart}"'
        if where:
            sql += f" WHERE {where}"
        keys = self.keys(mart, schema)
        order = order or ", ".join(f'"{k}"' for k in keys if k in names)
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        shown = [c for c in published if not is_flag_column(c.name)]
        shown += [Column(n, t) for n, _, t in extra]
        table = Table(mart, shown, keys)
        flag_of = {c.name: flag_column(c.name, names) for c in shown}
        for values in self.con.execute(sql, list(params)).fetchall():
            raw = dict(zip([*names, *(n for n, _, _ in extra)], map(_plain, values),
                           strict=True))
            table.rows.append({c.name: Cell(raw[c.name], "" if c.name in table.keys
                                            or flag_of[c.name] is None
                                            else raw[flag_of[c.name]] or "")
                               for c in shown})
        return table

    def keys(self, mart: str, schema: str = "marts") -> tuple[str, ...]:
        """The columns that identify a row: as meta.marts of the publication says, else as
        the published interface says, else the identifier-like columns."""
        names = [c.name for c in self.columns(mart, schema)]
        if schema == "marts" and self.has("marts", "meta"):
            row = self.con.execute("SELECT key_columns FROM meta.marts WHERE mart = ?",
                                   [mart]).fetchone()
            if row and row[0]:
                return tuple(k for k in row[0] if k in names)
        if mart in MART_KEYS:
            return tuple(k for k in MART_KEYS[mart] if k in names)
        return tuple(n for n in names if n.endswith("_id") or n in KEY_LIKE)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()


def _plain(value: object) -> object:
    """DECIMAL values as float: one kind of number for charts and formatting."""
    return float(value) if isinstance(value, Decimal) else value


# ---------------------------------------------------------------- the sections' figures


def class_order(column: str = "scale_class") -> str:
    cases = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(SCALE_CLASSES))
    return f"CASE \"{column}\" {cases} ELSE {len(SCALE_CLASSES)} END"


def latest_complete_month(pub: Publication) -> object | None:
    """The latest month of mart_national_monthly with no provisional (`p`) row."""
    if not pub.has("mart_national_monthly"):
        return None
    names = [c.name for c in pub.columns("mart_national_monthly")]
    flag = flag_column("density", names)
    if flag is None:
        return pub.query("SELECT max(month) FROM marts.mart_national_monthly")[0][0]
    return pub.query(
        f"SELECT max(month) FROM marts.mart_national_monthly WHERE month NOT IN ("
        f"SELECT month FROM marts.mart_national_monthly WHERE coalesce(\"{flag}\", '') "
        "LIKE '%p%')")[0][0]


def national_series(pub: Publication) -> Table | None:
    if not pub.has("mart_national_monthly"):
        return None
    return pub.table("mart_national_monthly", order=f"month, {class_order()}")


def headline(pub: Publication, month: object) -> Table | None:
    if month is None:
        return None
    return pub.table("mart_national_monthly", "month = ?", [month], order=class_order())


def facilities(pub: Publication) -> tuple[Table | None, dict[str, list[Cell]]]:
    """Each facility's latest complete (not provisional) month of mart_facility_monthly
    (its latest month if it has no complete one), with its days overcrowded
    in the last OVERCROWDING_WINDOW_MONTHS months of mart_facility_daily (a count of
    published days: days whose overcrowding_tier is withheld are counted apart); and
    each facility's monthly density, for the sparkline."""
    if not pub.has("mart_facility_monthly"):
        return None, {}
    extra: list[tuple[str, str, str]] = []
    daily = pub.has("mart_facility_daily") and {"overcrowding_tier", "census_date"} <= {
        c.name for c in pub.columns("mart_facility_daily")}
    names = [c.name for c in pub.columns("mart_facility_monthly")]
    flag = flag_column("density", names)
    complete_month = (f"max(month) FILTER (WHERE coalesce(\"{flag}\", '') NOT LIKE '%p%')"
                      if flag else "max(month)")
    where = (f"(facility_id, month) IN (SELECT facility_id, coalesce({complete_month}, "
             "max(month)) FROM marts.mart_facility_monthly GROUP BY facility_id)")
    if daily:
        window = (f"census_date > (SELECT max(census_date) FROM marts.mart_facility_daily) "
                  f"- INTERVAL {OVERCROWDING_WINDOW_MONTHS} MONTH")
        tiers = ", ".join(f"'{t}'" for t in OVERCROWDED_TIERS)
        days = ("(SELECT count(*) FILTER (WHERE overcrowding_tier IN ({tiers})) "
                "FROM marts.mart_facility_daily d WHERE d.facility_id = "
                "mart_facility_monthly.facility_id AND {window})")
        extra.append(("days_overcrowded_12m", days.format(tiers=tiers, window=window),
                      "BIGINT"))
        extra.append(("days_withheld_12m",
                      "(SELECT count(*) FILTER (WHERE overcrowding_tier IS NULL) "
                      "FROM marts.mart_facility_daily d WHERE d.facility_id = "
                      f"mart_facility_monthly.facility_id AND {window})", "BIGINT"))
    table = pub.table("mart_facility_monthly", where, extra=extra, order="facility_id")
    sparks: dict[str, list[Cell]] = {}
    if "density" in names:
        flag_sql = f'"{flag}"' if flag else "NULL"
        for facility, values, flags in pub.query(
                f"SELECT facility_id, list(density ORDER BY month), "
                f"list(coalesce({flag_sql}, '') ORDER BY month) "
                "FROM marts.mart_facility_monthly GROUP BY facility_id"):
            sparks[facility] = [Cell(v, f) for v, f in zip(values, flags, strict=True)]
    return table, sparks


def recidivism(pub: Publication) -> Table | None:
    if not pub.has("mart_recidivism_cohort"):
        return None
    return pub.table("mart_recidivism_cohort",
                     order=f"group_type, {class_order('group_value')}, group_value, cohort_year")


def facility_recidivism(pub: Publication) -> Table | None:
    """The per-facility recidivism mart, when the publication has one."""
    return pub.table("mart_facility_recidivism") if pub.has("mart_facility_recidivism") else None


def return_to_prison(pub: Publication) -> Table | None:
    """mart_return_to_prison_cohort (publishers' own cohorts), when it has rows."""
    if not pub.has("mart_return_to_prison_cohort"):
        return None
    table = pub.table("mart_return_to_prison_cohort")
    return table if table.rows else None


def scale_class_facts(pub: Publication) -> Table | None:
    """mart_scale_class_facts at its latest reference date of each jurisdiction and source."""
    if not pub.has("mart_scale_class_facts"):
        return None
    names = {c.name for c in pub.columns("mart_scale_class_facts")}
    group = [c for c in ("jurisdiction", "source") if c in names]
    where = ""
    if "reference_date" in names:
        by = ", ".join(group)
        where = (f"({by + ', ' if by else ''}reference_date) IN (SELECT {by + ', ' if by else ''}"
                 f"max(reference_date) FROM marts.mart_scale_class_facts"
                 f"{' GROUP BY ' + by if by else ''})")
    order = ", ".join([*group, class_order()]) if "scale_class" in names else ""
    table = pub.table("mart_scale_class_facts", where, order=order)
    return table if table.rows else None


def delivery_status(pub: Publication) -> Table | None:
    if not pub.has("mart_delivery_status"):
        return None
    names = {c.name for c in pub.columns("mart_delivery_status")}
    order = "feed, facility_id NULLS FIRST" if {"feed", "facility_id"} <= names else ""
    return pub.table("mart_delivery_status", order=order)


def revisions(pub: Publication) -> Table | None:
    """The publication's own `revisions` table (schema meta or marts), when it has one."""
    for schema in ("meta", "marts"):
        if pub.has("revisions", schema):
            return pub.table("revisions", schema=schema)
    return None


@dataclass(frozen=True)
class MartChange:
    mart: str
    added: int
    removed: int
    changed: int
    examples: list[str]  # keys of changed, added or removed rows (up to CHANGED_KEYS_SHOWN)


def changes_since_previous(pub: Publication) -> tuple[str | None, list[MartChange] | None]:
    """(previous version, per-mart changes) by comparing the marts with the previous
    publication's, when it is still beside this one; (previous version, None) when it is
    gone, (None, None) for a first publication."""
    previous = pub.meta().get("previous_version")
    if not previous:
        return None, None
    other = pub.folder.parent / str(previous) / PUBLISHED_DB
    if not other.is_file():
        return str(previous), None
    ours = pub.manifest().get("marts", {})
    theirs: dict = {}
    with contextlib.suppress(OSError, ValueError):
        theirs = json.loads((other.parent / MANIFEST).read_text()).get("marts", {})
    quoted = str(other).replace("'", "''")
    pub.con.execute(f"ATTACH '{quoted}' AS previous (READ_ONLY)")
    try:
        previous_marts = set(t for (t,) in pub.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'previous' "
            "AND schema_name = 'marts'").fetchall())
        changes = [_mart_change(pub, mart, previous_marts, ours.get(mart), theirs.get(mart))
                   for mart in pub.tables()]
    finally:
        pub.con.execute("DETACH previous")
    return str(previous), changes


def _mart_change(pub: Publication, mart: str, previous_marts: set[str], ours: dict | None,
                 theirs: dict | None) -> MartChange:
    if ours is not None and ours == theirs:
        return MartChange(mart, 0, 0, 0, [])
    new_cols = [c.name for c in pub.columns(mart)]
    if mart not in previous_marts:
        rows = pub.query(f'SELECT count(*) FROM marts."{mart}"')[0][0]
        return MartChange(mart, int(rows), 0, 0, [])
    old_cols = {n for (n,) in pub.query(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'previous' AND "
        "schema_name = 'marts' AND table_name = ?", [mart])}
    keys = [k for k in pub.keys(mart) if k in old_cols]
    shared = ", ".join(f'"{c}"' for c in new_cols if c in old_cols)
    if not keys:
        keys = [c for c in new_cols if c in old_cols]
    on = " AND ".join(f'n."{k}" IS NOT DISTINCT FROM o."{k}"' for k in keys)
    key_list = ", ".join(f'"{k}"' for k in keys)
    key_text = " || '|' || ".join(f"coalesce(CAST(\"{k}\" AS VARCHAR), '')" for k in keys)
    new, old = f'marts."{mart}"', f'previous.marts."{mart}"'
    pub.con.execute(
        f"CREATE OR REPLACE TEMP TABLE dashboard_diff AS "
        f"WITH n AS (SELECT {shared} FROM {new}), o AS (SELECT {shared} FROM {old}), "
        f"added AS (SELECT {key_list}, 'added' AS kind FROM n ANTI JOIN o ON {on}), "
        f"removed AS (SELECT {key_list}, 'removed' AS kind FROM o ANTI JOIN n ON {on}), "
        f"diff AS (SELECT * FROM n EXCEPT SELECT * FROM o), "
        f"changed AS (SELECT DISTINCT {key_list}, 'changed' AS kind FROM diff n "
        f"SEMI JOIN o ON {on}) "
        f"SELECT * FROM added UNION ALL SELECT * FROM removed UNION ALL SELECT * FROM changed")
    counts = dict(pub.query("SELECT kind, count(*) FROM dashboard_diff GROUP BY kind"))
    examples = [f"{kind}: {key}" for kind, key in pub.query(
        f"SELECT kind, {key_text} FROM dashboard_diff ORDER BY kind, {key_list} "
        f"LIMIT {CHANGED_KEYS_SHOWN}")]
    pub.con.execute("DROP TABLE dashboard_diff")
    return MartChange(mart, int(counts.get("added", 0)), int(counts.get("removed", 0)),
                      int(counts.get("changed", 0)), examples)


def gate_result(pub: Publication) -> dict:
    """The gate's verdict on this publication, as its manifest records it."""
    return pub.manifest().get("validation", {})
