"""Quarantine reasons in the contract's own words, and with no personal data in them.

The Great Expectations delivery suite reports failures as expectation types
(`expect_column_pair_values_a_to_be_greater_than_b`) over a staged table; a
sender holding only the contract needs "row 2, column population_female:
must not be greater than population". And for person-level feeds nothing of
the file's content is ever quoted back: only file, row, column and rule.
"""

from __future__ import annotations

import dataclasses
import re

import duckdb

from penstat.contract.feeds import FEEDS, FileSpec
from penstat.contract.problems import Problem
from penstat.ingestion.typed_tables import q

# A header entry is echoed back only if it looks like a column name.
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,79}$")
_DIGIT_RUN = re.compile(r"[0-9]{5,}")
_MANIFEST_FIELD = re.compile(r"^[a-z_]+(\[[0-9]+\])?(\.[a-z_]+)?$")


def _expectation_kwargs(feed: str, spec: FileSpec, expectation: str,
                        columns: tuple[str, ...], contract_version: str = "1") -> dict:
    from penstat.validation.suites import delivery_suite  # imports GX: only when explaining

    for e in delivery_suite(feed, spec, contract_version).expectations:
        cfg = e.configuration
        if cfg.type != expectation:
            continue
        kwargs = dict(cfg.kwargs)
        cols = tuple(c for c in (kwargs.get("column"), kwargs.get("column_A"),
                                 kwargs.get("column_B")) if c)
        cols += tuple(kwargs.get("column_list") or ())
        if cols == columns:
            return kwargs
    return {}


def _values(con: duckdb.DuckDBPyConnection, table: str, row: int | None,
            columns: tuple[str, ...]) -> str | None:
    if row is None or not columns:
        return None
    select = ", ".join(f"CAST({q(c)} AS VARCHAR)" for c in columns)
    found = con.execute(f"SELECT {select} FROM {table} WHERE _row = ?", [row]).fetchone()
    if found is None:
        return None
    return ", ".join(f"{c}={v if v is not None else ''}" for c, v in zip(columns, found,
                                                                       strict=True))[:160]


def gate_problem(failure, file: str, feed: str, spec: FileSpec,
                 con: duckdb.DuckDBPyConnection, table: str,
                 contract_version: str = "1") -> Problem:
    """One failed delivery-suite expectation as a Problem a sender can act on."""
    rows = sorted(int(f["_row"]) for f in failure.first_failures if "_row" in f)
    first = rows[0] if rows else None
    cols = tuple(failure.columns)
    kind = failure.expectation
    kw = _expectation_kwargs(feed, spec, kind, cols, contract_version)
    count = failure.unexpected_count
    column = ", ".join(cols) or None
    value = None
    if kind == "expect_column_pair_values_a_to_be_greater_than_b" and len(cols) == 2:
        a, b = cols
        is_date = spec.column(a).type == "date"
        relation = "after" if is_date else "greater than"
        rule = "date_order" if is_date else "exceeds_other_column"
        message = f"{b} must not be {relation} {a} (contract: {a} >= {b})"
        column = f"{b}, {a}"
        value = _values(con, table, first, (b, a))
    elif kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
        rule = "duplicate_key_in_file"
        shown = f"rows {', '.join(map(str, rows[:5]))}" if len(rows) > 1 else "rows"
        message = (f"the key ({', '.join(cols)}) appears more than once in this file "
                   f"({shown} share a key); each key may appear once per delivery")
        # every row of a duplicated key fails; name the first repeat, not the original
        first = rows[1] if len(rows) > 1 else first
        value = _values(con, table, first, cols)
    elif kind == "expect_column_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        rule = "out_of_range"
        if lo is not None and hi is not None:
            message = f"must be between {lo:g} and {hi:g}"
        elif lo is not None:
            message = f"must be {lo:g} or more"
        else:
            message = f"must be {hi:g} or less"
        value = _values(con, table, first, cols)
    elif kind == "expect_column_values_to_not_be_null":
        rule, message = "required", "a value is required"
    elif kind == "expect_column_values_to_be_in_set":
        rule = "allowed_values"
        message = f"must be one of {list(kw.get('value_set') or [])}"
        value = _values(con, table, first, cols)
    elif kind == "expect_table_row_count_to_be_between":
        rule, message, column = "no_data_rows", "the file has no data rows", None
    else:
        rule = kind.removeprefix("expect_")
        message = f"breaks the contract rule {rule.replace('_', ' ')}"
    if failure.exception:
        message += " (the check could not be evaluated; the file's values are malformed)"
    if value is not None and "=" in value and len(cols) == 1:
        value = value.split("=", 1)[1]
    return Problem(rule=rule, message=message, file=file, row=first, column=column,
                   value=value, rows_affected=count)


def _safe_column(column: str | None, known: set[str]) -> str | None:
    if column is None:
        return None
    parts = [c.strip() for c in column.split(",")]
    if all(p in known or _MANIFEST_FIELD.fullmatch(p) for p in parts):
        return column
    if _COLUMN_NAME.fullmatch(column) and not _DIGIT_RUN.search(column):
        return column
    return "(a header entry, not shown: it may hold personal data)"


def redact(problems: list[Problem], feed: str) -> list[Problem]:
    """For person-level feeds: never quote a value, nor a header entry that is not
    a column name (a data row sent without a header would otherwise be echoed)."""
    if not FEEDS[feed].personal_data:
        return problems
    known = {c.name for f in FEEDS[feed].files for c in f.columns}
    return [dataclasses.replace(p, value=None, column=_safe_column(p.column, known))
            for p in problems]
