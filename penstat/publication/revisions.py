"""What changed since the previous publication: the revisions table and the flag `r`.

Every publication compares its marts with those of the publication that was current
when it was made (manifest `previous_version`), mart by mart, on the mart's key
(penstat.contract.published.MART_KEYS), in DuckDB: one FULL OUTER JOIN per mart of
the draft's table with the previous publication's `<mart>.parquet`. Both sides are
published values only (the previous publication's files, the draft after disclosure
control), so a value withheld by disclosure control is empty on its side and never
appears in the revisions, old or new.

Per mart it finds the keys

    added     in the new publication, not in the previous one
    removed   in the previous publication, not in the new one
    changed   in both, with at least one column whose published value differs
              (IS DISTINCT FROM: null = null; floats exactly, as published)

and writes them to `meta.revisions` of `published.duckdb` and `revisions.parquet`:
one row per added or removed key (column_name, old_value and new_value empty), and
one row per changed column of a changed key, with the old and new published value as
text (DuckDB's cast: dates ISO 8601, doubles in their shortest exact form).

A first publication has nothing to compare with: its revisions are empty (not every
row `added`). A mart or column new in the interface since the previous publication is
not a revision: a mart without a previous Parquet file has all its keys `added`, and a
column the previous file lacks is not compared.

Flag `r` (Eurostat: revised value). A changed value is revised: the flag column that
covers it gets the letter `r`, added to its letters in alphabetical order without
duplicates (`p` -> `pr`, `cp` -> `cpr`, empty -> `r`). Which flag column covers which
value column is a mapping (`flag_targets`): today one row-level `flag` covers every
value of its row; a per-value `<column>_flag` column, where a mart has one, covers its
column alone (found by name, so the switch to per-value flags needs no change here).
The letter says "revised in this publication": the next publication sets it again only
on values it revises, and a flag is compared without `r` (so its own letter does not
count as a change). A row only added, or whose only change is its flag (a provisional
month becoming final), is not revised. Marts whose flags are another publisher's letters
as published (SOURCE_FLAGGED_MARTS) get no `r`.

`changed_cells` gives the keys and columns whose values changed, for code that sets
flags of its own (disclosure control's per-value flags).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from penstat.contract.published import MART_COLUMNS, MART_KEYS, REVISION_FLAG

REVISIONS_TABLE = "revisions"  # in schema meta of published.duckdb
REVISIONS_FILE = "revisions.parquet"
ROW_FLAG_COLUMN = "flag"
PER_VALUE_FLAG_SUFFIX = "_flag"  # a per-value flag column <column>_flag, when a mart has one
CHANGES = ("added", "removed", "changed")
# Marts whose flag holds another publisher's status letters as published (Eurostat's
# OBS_FLAG, which has its own `r`): penstat adds no letter to them.
SOURCE_FLAGGED_MARTS = frozenset({"mart_national_reference", "mart_national_density_comparison"})

REVISIONS_COLUMNS: dict[str, tuple[str, str]] = {
    "mart": ("VARCHAR", "The mart (schema marts, and <mart>.parquet)."),
    "change": ("VARCHAR", "added (key new in this publication), removed (key no longer "
                          "published) or changed (a published value of the key differs)."),
    "key": ("VARCHAR", "The row's key as a JSON object of the mart's key columns "
                       "(meta.marts.key_columns), e.g. {\"facility_id\":\"NL-0042\","
                       "\"census_date\":\"2026-11-01\"}."),
    "column_name": ("VARCHAR", "For changed: the column whose published value differs; "
                               "empty for added and removed."),
    "old_value": ("VARCHAR", "For changed: the value in the previous publication, as text; "
                             "empty when it was empty (withheld or not available)."),
    "new_value": ("VARCHAR", "For changed: the value in this publication, as text; empty "
                             "when it is empty (withheld or not available)."),
}
REVISIONS_COMMENT = ("What changed since the previous publication (meta.publication."
                     "previous_version): per mart, the keys added and removed, and each "
                     "changed column with its old and new published value. Empty for a "
                     "first publication. Withheld values are empty on both sides.")


def add_flag_letter(flag: str | None, letter: str = REVISION_FLAG) -> str:
    """`flag` with `letter`, letters alphabetical and each once (Python twin of flag_sql)."""
    return "".join(sorted(set(flag or "") | {letter}))


def flag_sql(expr: str, letter: str = REVISION_FLAG) -> str:
    """SQL: the flag `expr` with `letter` added, letters alphabetical and each once."""
    return (f"array_to_string(list_sort(list_distinct(string_split("
            f"coalesce({expr}, '') || '{letter}', ''))), '')")


def _without_letter(expr: str, letter: str = REVISION_FLAG) -> str:
    return f"nullif(replace({expr}, '{letter}', ''), '')"


def flag_targets(mart: str, columns: tuple[str, ...] | None = None,
                 flag_column: str = ROW_FLAG_COLUMN,
                 per_value_suffix: str = PER_VALUE_FLAG_SUFFIX) -> dict[str, str]:
    """{value column: the flag column that gets `r` when the value is revised}.

    A value column `<c>` with a per-value flag column `<c>_flag` maps to it; any other
    column that is neither a key nor a flag column maps to the row-level `flag_column`
    if the mart has one (today: every column maps to `flag`). Empty for a mart with
    another publisher's flags (SOURCE_FLAGGED_MARTS) or without flag columns.
    """
    columns = MART_COLUMNS[mart] if columns is None else columns
    if mart in SOURCE_FLAGGED_MARTS:
        return {}
    keys = set(MART_KEYS[mart])
    present = set(columns)
    flag_columns = {c for c in columns if c == flag_column or (
        c.endswith(per_value_suffix) and c[:-len(per_value_suffix)] in present)}
    out: dict[str, str] = {}
    for c in columns:
        if c in keys or c in flag_columns:
            continue
        if f"{c}{per_value_suffix}" in present:
            out[c] = f"{c}{per_value_suffix}"
        elif flag_column in present:
            out[c] = flag_column
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class MartRevisions:
    """The comparison of one mart: its temporary diff table and counts of keys."""
    mart: str
    table: str
    keys: tuple[str, ...]
    flags: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)
    comparable: bool = True  # the previous file had exactly the new file's columns

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, ...]:
    return tuple(r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({_literal(str(path))})").fetchall())


def diff_mart(con: duckdb.DuckDBPyConnection, mart: str, new: str, old: Path | None, *,
              columns: tuple[str, ...] | None = None,
              flags: Mapping[str, str] | None = None) -> MartRevisions:
    """Compare the published rows `new` (a table or view name) with the previous
    publication's Parquet file `old` (None: the mart is new, every key is added).

    Creates the temporary table `_revisions_<mart>`: the key columns, `change`, `cells`
    (a list of {pos, column_name, old_value, new_value} for changed keys) and one boolean
    `_revise_<flag>` per flag column of `flags` (true when a value it covers changed).
    """
    if columns is None:  # the columns the table has (the interface's, when published)
        columns = tuple(d[0] for d in con.execute(f"SELECT * FROM {new} LIMIT 0").description)
    keys = MART_KEYS[mart]
    flags = flag_targets(mart, columns) if flags is None else dict(flags)
    flag_columns = sorted(set(flags.values()))
    table = f"_revisions_{mart}"
    old_columns = parquet_columns(con, old) if old is not None else ()
    comparable = old is not None and old_columns == tuple(columns)
    compared = [c for c in columns if c not in keys and c in old_columns]
    old_rel = (f"read_parquet({_literal(str(old))})" if old is not None else
               f"(SELECT * FROM {new} LIMIT 0)")
    on = " AND ".join(f"n.{_q(k)} IS NOT DISTINCT FROM o.{_q(k)}" for k in keys)

    def differs(c: str) -> str:
        if c in flag_columns:  # its own letter r is not a change
            return f"{_without_letter(f'n.{_q(c)}')} IS DISTINCT FROM " \
                   f"{_without_letter(f'o.{_q(c)}')}"
        return f"n.{_q(c)} IS DISTINCT FROM o.{_q(c)}"

    revise = {f: " OR ".join(differs(c) for c, g in flags.items() if g == f and c in compared)
              or "false" for f in flag_columns}

    def new_value(c: str) -> str:
        if c in flag_columns:  # as it will be published, with its r
            return (f"CASE WHEN {revise[c]} THEN {flag_sql(f'n.{_q(c)}')} "
                    f"ELSE n.{_q(c)} END")
        return f"CAST(n.{_q(c)} AS VARCHAR)"

    cells = ", ".join(
        f"CASE WHEN {differs(c)} THEN {{'pos': {i}, 'column_name': {_literal(c)}, "
        f"'old_value': CAST(o.{_q(c)} AS VARCHAR), 'new_value': {new_value(c)}}} END"
        for i, c in enumerate(compared, 1))
    any_change = " OR ".join(differs(c) for c in compared) or "false"
    both = "n._in IS NOT NULL AND o._in IS NOT NULL"
    key_select = ", ".join(f"coalesce(n.{_q(k)}, o.{_q(k)}) AS {_q(k)}" for k in keys)
    cells_select = (f"CASE WHEN {both} THEN list_filter([{cells}], lambda x: x IS NOT NULL) END"
                    if compared else "NULL")
    revise_select = "".join(f", coalesce({both} AND ({revise[f]}), false) AS "
                            f"{_q('_revise_' + f)}" for f in flag_columns)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_q(table)} AS
        SELECT {key_select},
               CASE WHEN o._in IS NULL THEN 'added' WHEN n._in IS NULL THEN 'removed'
                    ELSE 'changed' END AS change,
               {cells_select} AS cells{revise_select}
        FROM (SELECT *, true AS _in FROM {new}) n
        FULL OUTER JOIN (SELECT *, true AS _in FROM {old_rel}) o ON {on}
        WHERE n._in IS NULL OR o._in IS NULL OR ({any_change})""")
    counts = dict.fromkeys(CHANGES, 0)
    for change, n in con.execute(f"SELECT change, count(*) FROM {_q(table)} GROUP BY change"
                                 ).fetchall():
        counts[change] = int(n)
    return MartRevisions(mart, table, keys, flags, counts, comparable)


def changed_cells(diff: MartRevisions) -> str:
    """SQL for the changed values of a compared mart: its key columns and `column_name`,
    one row per changed column of a changed key (value and flag columns alike)."""
    keys = ", ".join(_q(k) for k in diff.keys)
    return (f"SELECT {keys}, c.column_name FROM (SELECT {keys}, unnest(cells) AS c "
            f"FROM {_q(diff.table)} WHERE change = 'changed')")


def mark_revised(con: duckdb.DuckDBPyConnection, target: str, diff: MartRevisions) -> int:
    """Add `r` to each flag column of `target` (the draft's mart table) on the rows whose
    values it covers were revised; the number of rows marked, summed over flag columns."""
    marked = 0
    targets = set(diff.flags.values())
    target_columns = [d[0] for d in con.execute(f"SELECT * FROM {target} LIMIT 0").description]
    if ROW_FLAG_COLUMN in target_columns and targets - {ROW_FLAG_COLUMN}:
        # the row's flag holds the letters of its values (docs/published.md): a revised
        # value's `r` is on the row's flag too
        con.execute(f"ALTER TABLE {_q(diff.table)} ADD COLUMN IF NOT EXISTS "
                    f"{_q('_revise_' + ROW_FLAG_COLUMN)} BOOLEAN DEFAULT false")
        any_revised = " OR ".join(_q("_revise_" + f) for f in sorted(targets))
        con.execute(f"UPDATE {_q(diff.table)} SET {_q('_revise_' + ROW_FLAG_COLUMN)} = "
                    f"({any_revised})")
        targets.add(ROW_FLAG_COLUMN)
    for flag in sorted(targets):
        revised = f"SELECT DISTINCT {', '.join(_q(k) for k in diff.keys)} FROM " \
                  f"{_q(diff.table)} WHERE {_q('_revise_' + flag)}"
        if con.execute(f"SELECT count(*) FROM ({revised})").fetchone()[0] == 0:
            continue
        on = " AND ".join(f"t.{_q(k)} IS NOT DISTINCT FROM r.{_q(k)}" for k in diff.keys)
        marked += con.execute(
            f"UPDATE {target} AS t SET {_q(flag)} = {flag_sql(f't.{_q(flag)}')} "
            f"FROM ({revised}) AS r WHERE {on}").fetchone()[0]
    return marked


def revision_rows(diff: MartRevisions) -> str:
    """SQL for the mart's rows of the revisions table, ordered by key and column."""
    keys = ", ".join(_q(k) for k in diff.keys)
    key_json = ("CAST(to_json(struct_pack(" +
                ", ".join(f"{_q(k)} := {_q(k)}" for k in diff.keys) + ")) AS VARCHAR)")
    return f"""
        SELECT {_literal(diff.mart)} AS "mart", change AS "change", {key_json} AS "key",
               c.column_name AS "column_name", c.old_value AS "old_value",
               c.new_value AS "new_value"
        FROM (SELECT {keys}, change, unnest(cells) AS c FROM {_q(diff.table)}
              WHERE change = 'changed'
              UNION ALL BY NAME
              SELECT {keys}, change FROM {_q(diff.table)} WHERE change <> 'changed')
        ORDER BY {keys}, CASE change WHEN 'removed' THEN 0 WHEN 'added' THEN 1 ELSE 2 END,
                 c.pos"""


@dataclass(frozen=True)
class Revisions:
    """The revisions of a publication: per mart counts of keys, rows of the table."""
    previous_version: str | None
    marts: dict[str, dict[str, int]]
    rows: int
    comparable: bool  # every mart had a previous file with the same columns

    @property
    def none(self) -> bool:
        """Nothing added, removed or changed, in marts of unchanged columns."""
        return self.comparable and all(sum(c.values()) == 0 for c in self.marts.values())


def write_revisions(con: duckdb.DuckDBPyConnection, catalog: str, previous: Path | None,
                    previous_version: str | None, parquet: Path) -> Revisions:
    """Compare `catalog`.marts.* with the publication in folder `previous` (None: a first
    publication), add `r` to the revised rows' flags, and write `catalog`.meta.revisions
    and its copy `parquet`."""
    cols = ", ".join(f"{_q(c)} {t}" for c, (t, _) in REVISIONS_COLUMNS.items())
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {catalog}.meta")
    con.execute(f"CREATE TABLE {catalog}.meta.{REVISIONS_TABLE} ({cols})")
    con.execute(f"COMMENT ON TABLE {catalog}.meta.{REVISIONS_TABLE} IS "
                f"{_literal(REVISIONS_COMMENT)}")
    for c, (_, text) in REVISIONS_COLUMNS.items():
        con.execute(f"COMMENT ON COLUMN {catalog}.meta.{REVISIONS_TABLE}.{_q(c)} IS "
                    f"{_literal(text)}")
    marts: dict[str, dict[str, int]] = {}
    comparable = previous is not None
    if previous is not None:
        for mart in MART_COLUMNS:
            old = previous / f"{mart}.parquet"
            diff = diff_mart(con, mart, f"{catalog}.marts.{mart}",
                             old if old.is_file() else None)
            comparable = comparable and diff.comparable
            marts[mart] = diff.counts
            mark_revised(con, f"{catalog}.marts.{mart}", diff)
            con.execute(f"INSERT INTO {catalog}.meta.{REVISIONS_TABLE} {revision_rows(diff)}")
            con.execute(f"DROP TABLE {_q(diff.table)}")
    con.execute(f"COPY (SELECT * FROM {catalog}.meta.{REVISIONS_TABLE}) TO "
                f"{_literal(str(parquet))} (FORMAT parquet, COMPRESSION zstd)")
    rows = con.execute(f"SELECT count(*) FROM {catalog}.meta.{REVISIONS_TABLE}").fetchone()[0]
    return Revisions(previous_version, marts, int(rows), comparable)
