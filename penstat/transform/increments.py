"""Plan a dbt build: what the deliveries since the last finished build touch.

The ledger (meta.deliveries) is the truth about what has arrived; meta.builds
records, per finished build, the ledger position it built from and the
project fingerprint it was built with. A build plan is either

    full         every model rebuilt from the whole raw layer (`dbt build
                 --full-refresh`): the first build, `make rebuild`, a register
                 delivery (the register version in force re-labels every day
                 of a facility) or a changed project (models, macros or
                 thresholds: incremental tables built by older SQL are stale);
    incremental  only the models downstream of the feeds that delivered
                 (`dbt build --select source:<feed>+ ...`), and in the period
                 models only the calendar months those deliveries touch
                 (macros/incremental.sql), replaced whole.

A build that was killed leaves no finished record, so the next plan starts
from the last *finished* build and re-processes whatever the killed one had
half done (delete+insert by month is idempotent).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb

from penstat.contract.feeds import FEEDS, raw_table_name
from penstat.core.locations import DBT_PROJECT_DIR

PROJECT_DIR = DBT_PROJECT_DIR

# Feeds whose rows reach the period models (int_facility_days and everything
# built from it by month): their new rows name the months to rebuild. The test
# tests/integration/test_incremental.py checks this against the dbt manifest.
PERIOD_FEEDS = ("occupancy", "staffing")
# Feeds that re-label history: any delivery of one forces a full refresh.
FULL_REFRESH_FEEDS = ("facility_register",)
# Always rebuilt: it depends on the ledger and on today's date, and is small.
ALWAYS_SELECTED = ("mart_delivery_status",)

# dbt vars that change between builds without changing what a model means.
_RUN_VARS = frozenset({"as_of_date", "months_from_ledger"})


@dataclass(frozen=True)
class BuildPlan:
    mode: Literal["full", "incremental"]
    reason: str
    since_delivery_seq: int  # the last finished build's ledger position (0: none)
    up_to_delivery_seq: int  # the ledger position this build builds from
    fingerprint: str
    feeds: tuple[str, ...] = ()  # feeds with deliveries since the last finished build
    months: tuple[date, ...] = field(default=())  # months the period models rebuild

    @property
    def select(self) -> list[str]:
        """dbt node selection for an incremental build (empty for a full build)."""
        if self.mode == "full":
            return []
        return [f"source:{feed}+" for feed in self.feeds] + list(ALWAYS_SELECTED)

    @property
    def dbt_vars(self) -> dict[str, Any]:
        """The period models read the months from the build's meta.builds row (the
        same on every build, so dbt's partial parsing survives)."""
        return {"months_from_ledger": True}

    def describe(self) -> str:
        if self.mode == "full":
            return f"full rebuild ({self.reason})"
        months = ", ".join(f"{m:%Y-%m}" for m in self.months) or "none"
        feeds = ", ".join(self.feeds) or "none"
        return (f"incremental build of deliveries {self.since_delivery_seq + 1}.."
                f"{self.up_to_delivery_seq} (feeds: {feeds}; months: {months})")


def project_fingerprint(dbt_vars: dict[str, Any], project_dir: Path = PROJECT_DIR) -> str:
    """A hash over the dbt project's files and the vars that shape its results."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        if not path.is_file() or path.suffix not in (".sql", ".py", ".yml", ".yaml", ".csv"):
            continue
        relative = path.relative_to(project_dir)
        if relative.parts[0] in ("target", "logs", "dbt_packages"):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    shaping = {k: v for k, v in sorted(dbt_vars.items()) if k not in _RUN_VARS}
    digest.update(json.dumps(shaping, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _last_finished_build(con: duckdb.DuckDBPyConnection) -> tuple[int, str | None] | None:
    row = con.execute(
        "SELECT max_delivery_seq, project_fingerprint FROM meta.builds "
        "WHERE finished_at IS NOT NULL ORDER BY build_id DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), row[1])


def touched_months(con: duckdb.DuckDBPyConnection, since_delivery_seq: int,
                   up_to_delivery_seq: int) -> tuple[date, ...]:
    """Calendar months named by the period-feed rows loaded in (since, up_to]."""
    selects = []
    for feed in PERIOD_FEEDS:
        for spec in FEEDS[feed].files:
            if spec.period_column is None:
                continue
            column = f'"{spec.period_column}"'
            # month columns stay 'YYYY-MM' text in the raw layer; dates are DATE
            as_month = (f"strptime({column}, '%Y-%m')" if
                        spec.column(spec.period_column).type == "month"
                        else f"date_trunc('month', {column})")
            selects.append(
                f"SELECT DISTINCT CAST({as_month} AS DATE) AS month "
                f"FROM {raw_table_name(feed, spec.stem)} "
                f"WHERE _delivery_seq > {int(since_delivery_seq)} "
                f"AND _delivery_seq <= {int(up_to_delivery_seq)}")
    if not selects:
        return ()
    rows = con.execute(
        f"SELECT DISTINCT month FROM ({' UNION ALL '.join(selects)}) "
        "WHERE month IS NOT NULL ORDER BY month").fetchall()
    return tuple(r[0] for r in rows)


def plan_build(con: duckdb.DuckDBPyConnection, up_to_delivery_seq: int, fingerprint: str,
               *, full_refresh: bool = False) -> BuildPlan:
    """Decide what the build of the ledger up to `up_to_delivery_seq` must do."""
    last = _last_finished_build(con)
    since = last[0] if last else 0

    def full(reason: str) -> BuildPlan:
        return BuildPlan("full", reason, since, up_to_delivery_seq, fingerprint)

    if full_refresh:
        return full("requested")
    if last is None:
        return full("no finished build yet")
    if last[1] != fingerprint:
        return full("the dbt project or its thresholds changed since the last build")
    feeds = tuple(r[0] for r in con.execute(
        "SELECT DISTINCT feed FROM meta.deliveries WHERE delivery_seq > ? "
        "AND delivery_seq <= ? ORDER BY feed", [since, up_to_delivery_seq]).fetchall())
    register = [f for f in feeds if f in FULL_REFRESH_FEEDS]
    if register:
        return full(f"a {register[0]} delivery re-labels the history")
    months = touched_months(con, since, up_to_delivery_seq)
    return BuildPlan("incremental", "new deliveries", since, up_to_delivery_seq,
                     fingerprint, feeds, months)
