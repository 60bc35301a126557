"""Read a delivery's data files into DuckDB temporary tables and check their types.

Two steps per file, both with DuckDB's own readers:

1. `stage_text`: the file as text columns (one VARCHAR per contract column)
   plus `_row`, the data row number. Person identifiers are replaced by their
   keyed hash in the same statement that reads them (with a flag saying whether
   the identifier had the contract's format), so the clear identifier is never
   stored, not even in a temporary table.
2. `stage_typed`: every value checked against its contract type; on success a
   typed temporary table, on failure a DeliveryRejected naming file, row,
   column and rule.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from penstat.contract.feeds import DATE_MAX, DATE_MIN, Column, FileSpec, Limits
from penstat.contract.manifest import Dialect, FileEntry
from penstat.contract.problems import DeliveryRejected, Problem
from penstat.core.faults import kill_point
from penstat.ingestion.pseudonymise import UDF_NAME
from penstat.warehouse.session import machine_failure

_CHUNK = 1 << 20
# A contract file has a dozen columns; a header far wider is not one of them, and
# each of its names would become part of the read statement.
_MAX_HEADER_COLUMNS = 1000
_DUCKDB_LINE = re.compile(r"CSV Error on Line: (\d+)")


def q(identifier: str) -> str:
    """Quote an SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class StagedFile:
    entry: FileEntry
    spec: FileSpec
    text_table: str
    present_columns: tuple[str, ...]
    rows: int
    # the manifest's contract_version: from v3 some required columns may be empty (unknown)
    contract_version: str = "1"


def _private_text_file(path: Path) -> io.TextIOWrapper:
    """A new UTF-8 text file readable by its owner only (it may hold identifiers)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return open(fd, "w", encoding="utf-8", newline="")


def _scan_encoding(path: Path, codec: str, out: Path | None) -> None:
    """Decode the whole file strictly (and copy it as UTF-8 to `out` if given).

    Raises a Problem naming the line where the bytes are not valid in the
    declared encoding, or where a NUL byte appears.
    """
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    line = 1
    sink = _private_text_file(out) if out else None
    try:
        with open(path, "rb") as fh:
            while True:
                block = fh.read(_CHUNK)
                final = not block
                try:
                    text = decoder.decode(block, final=final)
                except UnicodeDecodeError as exc:
                    good = block[: exc.start].decode(codec, errors="ignore")
                    raise DeliveryRejected([Problem(
                        rule="encoding", file=path.name, row=max(line + good.count("\n") - 1, 0),
                        message=f"bytes that are not valid {codec} text (declare the file's "
                                "encoding in manifest.json dialect.encoding)")]) from None
                if "\x00" in text:
                    nul_line = line + text[: text.index("\x00")].count("\n")
                    raise DeliveryRejected([Problem(
                        rule="nul_byte", file=path.name, row=max(nul_line - 1, 0),
                        message="the file contains a NUL byte, which is never valid in CSV text")])
                line += text.count("\n")
                if sink:
                    sink.write(text)
                    sink.flush()
                    kill_point("ingest.decoding")  # a partial clear copy is on disk
                if final:
                    break
    finally:
        if sink:
            sink.close()


def _read_header(path: Path, codec: str, delimiter: str, file: str) -> list[str]:
    """The header row's names. A field beyond the csv module's size limit (128 KB) or
    a header of more than _MAX_HEADER_COLUMNS names is a rejection, not a crash."""
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=codec, newline="")
        try:
            header = next(csv.reader(text, delimiter=delimiter, quotechar='"'))
        except StopIteration:
            return []
        except csv.Error:
            raise DeliveryRejected([Problem(
                rule="header", file=file, row=0,
                message=f"the header row cannot be read: a column name is longer than "
                        f"{csv.field_size_limit()} characters or not valid CSV")]) from None
    if len(header) > _MAX_HEADER_COLUMNS:
        raise DeliveryRejected([Problem(
            rule="header", file=file, row=0,
            message=f"the header row has {len(header)} columns; a file of the contract has "
                    "a few dozen at most")])
    return [h.strip() for h in header]


def _check_header(header: list[str], spec: FileSpec, file: str, delimiter: str) -> None:
    if not header:
        raise DeliveryRejected([Problem(rule="empty_file", file=file,
                                        message="the file is empty: a header row is required")])
    problems: list[Problem] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(rule="duplicate_column", file=file, row=0, column=name,
                                    message="column appears twice in the header"))
        seen.add(name)
    known = set(spec.column_names)
    unknown = [h for h in header if h not in known]
    missing = [c.name for c in spec.columns if c.required and c.name not in seen]
    if len(header) == 1 and len(spec.columns) > 1 and delimiter not in header[0]:
        problems.append(Problem(
            rule="delimiter", file=file, row=0,
            message=f"the header has one column only: the file is not delimited by "
                    f"{delimiter!r} as declared (manifest.json dialect.delimiter)"))
    else:
        for name in unknown:
            problems.append(Problem(rule="unexpected_column", file=file, row=0,
                                    column=name[:80],
                                    message="column is not part of the contract for this file"))
        for name in missing:
            problems.append(Problem(rule="missing_column", file=file, row=0, column=name,
                                    message="required column is missing from the header"))
    if problems:
        raise DeliveryRejected(problems)


def _select_list(spec: FileSpec, present: tuple[str, ...], source_types: str) -> str:
    """Text columns; personal columns become (pseudonym, format-ok flag)."""
    parts = []
    for col in spec.columns:
        if col.name not in present:
            parts.append(f"CAST(NULL AS VARCHAR) AS {q(col.name)}")
            continue
        src = q(col.name) if source_types == "VARCHAR" else f"CAST({q(col.name)} AS VARCHAR)"
        if col.personal:
            pattern = col.pattern or ".*"
            parts.append(f"{UDF_NAME}({src}) AS {q(col.name)}")
            parts.append(
                f"({src} IS NULL OR regexp_full_match({src}, {sql_str(pattern)})) "
                f"AS {q(col.name + '__format_ok')}")
        else:
            parts.append(f"{src} AS {q(col.name)}")
    return ", ".join(parts)


def stage_text(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    entry: FileEntry,
    spec: FileSpec,
    dialect: Dialect,
    work_dir: Path,
    contract_version: str = "1",
) -> StagedFile:
    """Read one data file into a text table; its row count must be the declared one.

    Reading stops one row past the declared count: a file that holds more rows
    than manifest.json says is rejected without being read whole (a small file
    can expand to millions of rows). `folder` holds the checked copy of the file.
    """
    path = folder / entry.name
    table = f"stage_{spec.stem}_text"
    if entry.is_parquet:
        present = _stage_parquet(con, path, entry, spec, table)
    else:
        present = _stage_csv(con, path, entry, spec, dialect, work_dir, table)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    _check_row_count(rows, entry)
    return StagedFile(entry=entry, spec=spec, text_table=table, present_columns=present, rows=rows,
                      contract_version=contract_version)


def _check_row_count(rows: int, entry: FileEntry) -> None:
    if rows > entry.rows:
        raise DeliveryRejected([Problem(
            rule="row_count_mismatch", file=entry.name,
            message=f"the file has more than {entry.rows} data rows (reading stopped there), "
                    f"manifest.json says {entry.rows}")])
    if rows != entry.rows:
        raise DeliveryRejected([Problem(
            rule="row_count_mismatch", file=entry.name,
            message=f"the file has {rows} data rows, manifest.json says {entry.rows}")])
    if rows == 0:
        raise DeliveryRejected([Problem(
            rule="no_data_rows", file=entry.name,
            message="the file has a header but no data rows; leave the file out instead")])


def _unreadable_parquet(entry: FileEntry, what: str) -> DeliveryRejected:
    return DeliveryRejected([Problem(rule="parquet", file=entry.name, message=what)])


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, entry: FileEntry,
                   spec: FileSpec, table: str) -> tuple[str, ...]:
    """The row count in the file's metadata is compared before any row is read."""
    source = sql_str(str(path))
    try:
        names = [r[0] for r in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({source})").fetchall()]
        declared_in_file = con.execute(
            f"SELECT sum(num_rows) FROM parquet_file_metadata({source})").fetchone()[0]
    except duckdb.Error as exc:
        if machine_failure(exc):
            raise
        raise _unreadable_parquet(entry, "not a readable Parquet file: it is damaged, "
                                  "or not Parquet") from None
    _check_header(names, spec, entry.name, ",")
    if declared_in_file is not None and declared_in_file > entry.rows:
        _check_row_count(entry.rows + 1, entry)
    present = tuple(c for c in spec.column_names if c in names)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT file_row_number + 1 AS _row, "
            f"{_select_list(spec, present, 'ANY')} "
            f"FROM read_parquet({source}, file_row_number = true) LIMIT {entry.rows + 1}")
    except duckdb.Error as exc:
        if machine_failure(exc):
            raise
        raise _unreadable_parquet(entry, "a data page of the Parquet file cannot be read: "
                                  "the file is damaged") from None
    return present


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, entry: FileEntry, spec: FileSpec,
               dialect: Dialect, work_dir: Path, table: str) -> tuple[str, ...]:
    source = path
    if dialect.codec != "utf-8-sig":
        # the UTF-8 copy lives in the session's private scratch inside PENSTAT_HOME
        source = work_dir / f"{entry.name}.utf8"
        _scan_encoding(path, dialect.codec, source)
    else:
        _scan_encoding(path, dialect.codec, None)
    header = _read_header(source, "utf-8-sig", dialect.delimiter, entry.name)
    _check_header(header, spec, entry.name, dialect.delimiter)
    present = tuple(c for c in spec.column_names if c in header)
    columns = "{" + ", ".join(f"{sql_str(h)}: 'VARCHAR'" for h in header) + "}"
    read = (
        f"read_csv({sql_str(str(source))}, header = true, auto_detect = false, "
        f"columns = {columns}, delim = {sql_str(dialect.delimiter)}, quote = '\"', "
        f"escape = '\"', strict_mode = true, null_padding = false, encoding = 'utf-8')"
    )
    try:
        # Person identifiers are hashed in this very statement: the temporary
        # table never holds a clear identifier. Insertion order is preserved,
        # so its rowid follows the file's record order.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_read AS "
                    f"SELECT {_select_list(spec, present, 'VARCHAR')} FROM {read} "
                    f"LIMIT {entry.rows + 1}")
    except duckdb.Error as exc:
        if machine_failure(exc):
            raise
        raise DeliveryRejected([_csv_error(exc, entry.name, dialect.delimiter)]) from None
    finally:
        if source != path:
            source.unlink(missing_ok=True)  # the clear UTF-8 copy is not kept a moment longer
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT rowid + 1 AS _row, * "
        f"FROM {table}_read")
    con.execute(f"DROP TABLE {table}_read")
    return present


_CSV_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _csv_error(exc: duckdb.Error, file: str, delimiter: str) -> Problem:
    """Turn DuckDB's CSV error into a Problem.

    DuckDB's message quotes the offending line (and, for an unclosed quote,
    the lines after it), which may hold personal data: only the line number
    and the recognised kind of error are kept, never any text of the file.
    """
    text = str(exc)
    match = _DUCKDB_LINE.search(text)
    line = int(match.group(1)) if match else None
    fields = _CSV_FIELDS.search(text)
    if fields:
        expected, found = fields.groups()
        what = (f"the record has {found} fields where the header has {expected} (check the "
                f"delimiter {delimiter!r} and quote any value that contains it)")
    elif "unterminated quote" in text:
        what = 'a quoted value is not closed: a `"` is missing'
    elif "quote" in text.lower():
        what = 'a `"` inside a quoted value must be doubled ("")'
    else:
        what = f"it does not parse as CSV with delimiter {delimiter!r} and quote '\"'"
    at = f" (line {line} of the file)" if line else ""
    return Problem(rule="csv_structure", file=file,
                   row=line - 1 if line and line > 1 else None,
                   message=f"the file is not valid CSV{at}: {what}")


# --- types -----------------------------------------------------------------

_INT = r"[0-9]+"
_NEG_INT = r"-[0-9]+"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_MONTH = r"[0-9]{4}-(0[1-9]|1[0-2])"
# Without a contract range, a number must still fit the raw layer's type (BIGINT).
_BIGINT = Limits(0, 2**63 - 1, why="a whole number the warehouse can store")
_DOUBLE = Limits(-10**15, 10**15, why="a number the warehouse can store exactly")
_DATES = Limits(DATE_MIN, DATE_MAX)


def _limits(col: Column) -> Limits | None:
    """The column's range, or the range of its type where the contract states none."""
    if col.limits is not None:
        return col.limits
    return {"int": _BIGINT, "dec": _DOUBLE, "date": _DATES, "month": _DATES}.get(col.type)


def _sql_bound(value: int | date) -> str:
    return f"DATE '{value.isoformat()}'" if isinstance(value, date) else str(value)


def _range_rule(col: Column, decimal: str) -> tuple[str, str, str] | None:
    """out_of_range: a well-formed value outside the column's range (feeds.md, Ranges).

    Only values that pass the type rules are judged (a value breaks one rule, not two);
    a number too long for the warehouse's types counts as out of range."""
    limits = _limits(col)
    if limits is None:
        return None
    v = q(col.name)
    lo, hi = _sql_bound(limits.low), _sql_bound(limits.high)
    shown = limits.describe(col.type).split(",")[0].replace("..", " and ")
    why = f" ({limits.why})" if limits.why else ""
    message = f"must be between {shown}{why}"
    if col.type == "int":
        digits = _INT if isinstance(limits.low, int) and limits.low >= 0 else f"-?{_INT}"
        value = f"TRY_CAST({v} AS HUGEINT)"
        well_formed = f"regexp_full_match({v}, '{digits}')"
    elif col.type == "dec":
        sep = "[.]" if decimal == "." else ","
        text = f"replace({v}, ',', '.')" if decimal == "," else v
        value = f"TRY_CAST({text} AS DOUBLE)"
        well_formed = f"regexp_full_match({v}, '-?[0-9]+({sep}[0-9]+)?')"
    elif col.type == "date":
        value = f"TRY_CAST({v} AS DATE)"
        well_formed = f"regexp_full_match({v}, '{_DATE}') AND {value} IS NOT NULL"
    elif col.type == "month":
        value = f"TRY_CAST({v} || '-01' AS DATE)"
        well_formed = f"regexp_full_match({v}, '{_MONTH}')"
    else:
        return None
    # NOT BETWEEN is NULL for a value no type can hold (TRY_CAST gives NULL): out too;
    # an infinite double is outside every range
    return ("out_of_range",
            f"{well_formed} AND coalesce({value} NOT BETWEEN {lo} AND {hi}, true)", message)


def _type_rules(col: Column, decimal: str,
                contract_version: str = "1") -> list[tuple[str, str, str]]:
    """(rule, SQL predicate that is TRUE for a bad value, message) for one column.

    An empty cell of a column the delivery's contract version lets be unknown
    (feeds-v3.md) is kept as NULL; in earlier versions it breaks `required`."""
    v = q(col.name)
    rules: list[tuple[str, str, str]] = []
    if col.required_in(contract_version):
        message = "a value is required"
        if col.may_be_unknown("3"):
            message += " (an empty cell means unknown only from contract_version 3)"
        rules.append(("required", f"{v} IS NULL", message))
    if col.personal:
        rules.append(("format", f"NOT {q(col.name + '__format_ok')}",
                      f"must match {col.pattern} (value not shown: personal data)"))
        return rules
    if col.type == "int":
        limits = _limits(col)
        if limits is None or limits.low >= 0:
            rules.append(("non_negative", f"regexp_full_match({v}, '{_NEG_INT}')",
                          "must be a whole number >= 0"))
        rules.append(("type_int", f"NOT regexp_full_match({v}, '{_INT}') "
                      f"AND NOT regexp_full_match({v}, '{_NEG_INT}')",
                      "must be a whole number (digits only)"))
    elif col.type == "dec":
        sep = "[.]" if decimal == "." else ","
        other = "," if decimal == "." else "[.]"
        rules.append(("decimal_separator", f"regexp_full_match({v}, '-?[0-9]+{other}[0-9]+')",
                      f"decimal separator differs from the declared {decimal!r} "
                      "(manifest.json dialect.decimal)"))
        rules.append(("type_dec", f"NOT regexp_full_match({v}, '-?[0-9]+({sep}[0-9]+)?') "
                      f"AND NOT regexp_full_match({v}, '-?[0-9]+{other}[0-9]+')",
                      "must be a decimal number"))
    elif col.type == "date":
        rules.append(("type_date", f"NOT regexp_full_match({v}, '{_DATE}')",
                      "must be a date YYYY-MM-DD"))
        rules.append(("date_exists", f"regexp_full_match({v}, '{_DATE}') "
                      f"AND TRY_CAST({v} AS DATE) IS NULL", "is not a calendar date"))
    elif col.type == "month":
        rules.append(("type_month", f"NOT regexp_full_match({v}, '{_MONTH}')",
                      "must be a month YYYY-MM"))
    elif col.type == "bool":
        rules.append(("type_bool", f"{v} NOT IN ('true', 'false')", "must be true or false"))
    in_range = _range_rule(col, decimal)
    if in_range:
        rules.append(in_range)
    if col.allowed:
        allowed = ", ".join(sql_str(a) for a in col.allowed)
        rules.append(("allowed_values", f"{v} NOT IN ({allowed})",
                      f"must be one of {list(col.allowed)}"))
    if col.pattern:
        rules.append(("format", f"NOT regexp_full_match({v}, {sql_str(col.pattern)})",
                      f"must match {col.pattern}"))
    return rules


def _cast(col: Column, decimal: str) -> str:
    v = q(col.name)
    if col.type == "int":
        return f"CAST({v} AS BIGINT)"
    if col.type == "dec":
        return f"CAST(replace({v}, ',', '.') AS DOUBLE)" if decimal == "," else \
            f"CAST({v} AS DOUBLE)"
    if col.type == "date":
        return f"CAST({v} AS DATE)"
    if col.type == "bool":
        return f"({v} = 'true')"
    return v


def type_problems(con: duckdb.DuckDBPyConnection, staged: StagedFile, decimal: str,
                  limit_per_rule: int = 5) -> list[Problem]:
    problems: list[Problem] = []
    for col in staged.spec.columns:
        for rule, predicate, message in _type_rules(col, decimal, staged.contract_version):
            # NULL-safe: a missing value only breaks the `required` rule.
            where = predicate if rule == "required" else \
                f"{q(col.name)} IS NOT NULL AND ({predicate})"
            count, first = con.execute(
                f"SELECT count(*), min(_row) FROM {staged.text_table} WHERE {where}").fetchone()
            if not count:
                continue
            value = None
            if not col.personal and rule != "required":
                value = con.execute(
                    f"SELECT {q(col.name)} FROM {staged.text_table} WHERE _row = ?",
                    [first]).fetchone()[0]
                value = value[:80] if value is not None else None
            problems.append(Problem(rule=rule, message=message, file=staged.entry.name,
                                    row=int(first), column=col.name, value=value,
                                    rows_affected=int(count)))
            if len(problems) >= limit_per_rule * 10:
                return problems
    return problems


def stage_typed(con: duckdb.DuckDBPyConnection, staged: StagedFile, decimal: str) -> str:
    """Check every value's type; return the typed temp table's name."""
    problems = type_problems(con, staged, decimal)
    if problems:
        raise DeliveryRejected(problems)
    table = f"stage_{staged.spec.stem}"
    casts = ", ".join(f"{_cast(c, decimal)} AS {q(c.name)}" for c in staged.spec.columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS "
                f"SELECT _row, {casts} FROM {staged.text_table} ORDER BY _row")
    con.execute(f"DROP TABLE {staged.text_table}")
    return table
