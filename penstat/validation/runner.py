"""Run a suite's checkpoint on a DataFrame and say, in plain terms, what failed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pandas as pd
from great_expectations.data_context import FileDataContext

from penstat.contract.problems import log_safe
from penstat.validation.gx_context import build_data_docs, get_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedExpectation:
    suite: str
    expectation: str  # e.g. expect_column_pair_values_a_to_be_greater_than_b
    columns: tuple[str, ...]
    unexpected_count: int | None
    # index values of the first failing rows: {"_row": 12} or a mart's key columns
    first_failures: tuple[dict, ...] = ()
    exception: str | None = None

    def describe(self) -> str:
        """One log-safe line (key values and GX's exception text may quote the data)."""
        cols = ", ".join(self.columns) or "table"
        where = ""
        if self.first_failures:
            where = " first at " + "; ".join(
                ", ".join(f"{k}={v}" for k, v in idx.items()) for idx in self.first_failures[:3])
        count = f" ({self.unexpected_count} rows)" if self.unexpected_count else ""
        error = f" raised {self.exception}" if self.exception else ""
        return log_safe(f"{self.suite}: {self.expectation} on {cols} failed{count}{where}{error}")


@dataclass(frozen=True)
class GateResult:
    suite: str
    success: bool
    evaluated: int
    failures: tuple[FailedExpectation, ...] = field(default=())
    # the stored validation results (ValidationResultIdentifier), for the Data Docs
    result_ids: tuple = field(default=())


def _columns(kwargs: dict) -> tuple[str, ...]:
    cols = []
    for key in ("column", "column_A", "column_B"):
        if kwargs.get(key):
            cols.append(kwargs[key])
    cols += list(kwargs.get("column_list") or [])
    return tuple(dict.fromkeys(cols))


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def run_suite(suite_name: str, frame: pd.DataFrame,
              context: FileDataContext | None = None,
              index_columns: tuple[str, ...] = ("_row",),
              hidden_columns: frozenset[str] = frozenset(),
              data_docs: bool = True) -> GateResult:
    """Validate `frame` with the suite's checkpoint.

    `hidden_columns` are never copied into the returned failures (personal data).
    With `data_docs` the result's Data Docs page is rendered now; a caller that
    validates several frames passes False and calls penstat.validation.gx_context.build_data_docs
    once with all the results.
    """
    ctx = context or get_context()
    result = ctx.checkpoints.get(suite_name).run(batch_parameters={"dataframe": frame})
    failures: list[FailedExpectation] = []
    evaluated = 0
    for run in result.run_results.values():
        for r in run.results:
            evaluated += 1
            if r.success:
                continue
            cfg = r.expectation_config
            index_list = (r.result or {}).get("unexpected_index_list") or []
            first = tuple(
                {k: _plain(v) for k, v in item.items()
                 if k in index_columns and k not in hidden_columns}
                for item in index_list[:5] if isinstance(item, dict))
            exc = None
            if r.exception_info and r.exception_info.get("raised_exception"):
                exc = str(r.exception_info.get("exception_message"))[:300]
            failures.append(FailedExpectation(
                suite=suite_name, expectation=cfg.type, columns=_columns(cfg.kwargs),
                unexpected_count=(r.result or {}).get("unexpected_count"),
                first_failures=first, exception=exc))
    ids = tuple(result.run_results.keys())
    gate = GateResult(suite=suite_name, success=bool(result.success) and not failures,
                      evaluated=evaluated, failures=tuple(failures), result_ids=ids)
    if evaluated == 0:
        # A suite that evaluated nothing has proven nothing.
        gate = GateResult(suite=suite_name, success=False, evaluated=0, failures=(
            FailedExpectation(suite=suite_name, expectation="(no expectation evaluated)",
                              columns=(), unexpected_count=None),), result_ids=ids)
    if data_docs:
        build_data_docs(ctx, [gate])
    for f in gate.failures:
        log.warning("gate failure: %s", f.describe())
    return gate


# The largest batch handed to Great Expectations at once (a pandas copy, in memory).
BATCH_ROWS = 1_000_000


def batches(con: duckdb.DuckDBPyConnection, sql: str, keys: tuple[str, ...],
            batch_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The rows of `sql` as DataFrames of at most about `batch_rows` rows, split by a
    hash of the key: all rows of one key are in the same batch, so a duplicated key
    is still seen by a suite's uniqueness rule. Bounds the memory of a validation."""
    batch_rows = batch_rows or BATCH_ROWS
    rows = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    parts = max(1, -(-rows // batch_rows))
    if parts == 1:
        yield con.execute(sql).df()
        return
    key = ", ".join(f'"{k}"' for k in keys)
    for part in range(parts):
        frame = con.execute(f"SELECT * FROM ({sql}) WHERE hash({key}) % {parts} = {part}").df()
        if len(frame):  # a hash may leave a part empty: that is no empty table
            yield frame
