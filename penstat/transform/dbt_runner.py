"""Run the dbt project in-process against the warehouse under PENSTAT_HOME.

dbt reads the project and its profile from ``dbt_project/`` in the checkout
but writes nothing there: the target path (compiled SQL, manifest, partial
parse state) is ``$PENSTAT_HOME/dbt/target`` and the logs go to
``$PENSTAT_HOME/logs/dbt``, so the checkout may be read-only. The target path
is the same on every run, which keeps partial parsing effective.

Thresholds reach dbt as vars (``<section>_<key>`` from config/penstat.toml,
see penstat.core.config.Config.dbt_vars) plus ``as_of_date`` for lateness.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner, dbtRunnerResult

from penstat.core.config import Config
from penstat.core.env import scoped_env
from penstat.core.locations import DBT_PROJECT_DIR

log = logging.getLogger(__name__)

PROJECT_DIR = DBT_PROJECT_DIR

MEMORY_LIMIT_ENV = "PENSTAT_DUCKDB_MEMORY_LIMIT"
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
# dbt subcommands that take no --target-path option.
_COMMANDS_WITHOUT_TARGET_PATH = frozenset({"debug", "deps", "init"})


class DbtBuildFailed(RuntimeError):
    """dbt build did not succeed; the message names every failing node."""

    def __init__(self, message: str, failures: list[NodeOutcome] | None = None):
        super().__init__(message)
        self.failures = failures or []


@dataclass(frozen=True)
class NodeOutcome:
    unique_id: str
    resource_type: str
    status: str
    message: str | None
    execution_time: float
    failures: int | None = None


@dataclass(frozen=True)
class BuildReport:
    success: bool
    elapsed_seconds: float
    nodes: list[NodeOutcome] = field(default_factory=list)

    def count(self, resource_type: str | None = None, status: str | None = None) -> int:
        return sum(
            1
            for n in self.nodes
            if (resource_type is None or n.resource_type == resource_type)
            and (status is None or n.status == status)
        )

    @property
    def by_type_and_status(self) -> dict[tuple[str, str], int]:
        return dict(Counter((n.resource_type, n.status) for n in self.nodes))


def target_path(home: Path) -> Path:
    return Path(home) / "dbt" / "target"


def log_path(home: Path) -> Path:
    return Path(home) / "logs" / "dbt"


def default_vars(as_of_date: dt.date | str | None = None) -> dict[str, Any]:
    """The toml's thresholds as dbt vars, plus as_of_date (default: today)."""
    out: dict[str, Any] = dict(Config.load().dbt_vars)
    if as_of_date is None:
        as_of_date = dt.date.today()
    out["as_of_date"] = str(as_of_date)
    return out


def run_dbt(
    args: list[str], *, home: Path, vars: dict[str, Any] | None = None
) -> dbtRunnerResult:
    """Invoke dbt in-process with the project, profile, target and log paths set."""
    home = Path(home).resolve()
    (home / "warehouse").mkdir(parents=True, exist_ok=True)
    cli = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--log-path", str(log_path(home)),
    ]
    if not args or args[0] not in _COMMANDS_WITHOUT_TARGET_PATH:
        cli += ["--target-path", str(target_path(home))]
    if vars:
        cli += ["--vars", json.dumps(vars, sort_keys=True, default=str)]
    # profiles.yml reads both
    with scoped_env(PENSTAT_HOME=str(home),
                    **{MEMORY_LIMIT_ENV: Config.load().duckdb_memory_limit}):
        try:
            return dbtRunner().invoke(cli)
        finally:
            _release_warehouse()


def _release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process.

    dbt-duckdb caches its DuckDB instance at class level; left open, it holds
    the warehouse file's lock after the run, so nothing else (validation,
    publication, the next ingestion) could open the warehouse.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - adapter not installed
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def _outcomes(result: dbtRunnerResult) -> list[NodeOutcome]:
    results = getattr(result.result, "results", None) or []
    out = []
    for r in results:
        node = r.node
        out.append(
            NodeOutcome(
                unique_id=node.unique_id,
                resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
                status=str(getattr(r.status, "value", r.status)),
                message=r.message,
                execution_time=float(r.execution_time or 0.0),
                failures=r.failures,
            )
        )
    return out


def _failure_message(result: dbtRunnerResult, nodes: list[NodeOutcome]) -> str:
    failed = [n for n in nodes if n.status in FAILED_STATUSES]
    lines = ["dbt build failed"]
    if result.exception is not None:
        lines.append(f"  {type(result.exception).__name__}: {result.exception}")
    for n in failed:
        lines.append(f"  {n.unique_id} [{n.status}]: {(n.message or '').strip()}")
    skipped = sum(1 for n in nodes if n.status == "skipped")
    if skipped:
        lines.append(f"  ({skipped} downstream nodes skipped)")
    if len(lines) == 1:
        lines.append("  (dbt reported failure without a failing node; see the dbt log)")
    return "\n".join(lines)


def build(home: Path, vars: dict[str, Any] | None = None, *, docs: bool = True,
          unit_tests: bool = True, select: list[str] | None = None,
          full_refresh: bool = False) -> BuildReport:
    """`dbt build` (seeds, models, unit and data tests); raise DbtBuildFailed on failure.

    vars are merged over the toml's thresholds and as_of_date (today). With `docs`
    a successful build also regenerates the dbt docs site into
    $PENSTAT_HOME/reports/dbt_docs (write_docs); a docs failure is logged, never
    fails the build. unit_tests=False leaves the dbt unit tests out (they test the
    SQL, not the data: `make test` runs them, the pipeline's builds do not).
    `select` limits the build to those nodes (dbt selection syntax) and
    `full_refresh` rebuilds incremental models from scratch
    (penstat/transform/increments.py decides both).
    """
    merged = default_vars()
    merged.update(vars or {})
    started = time.monotonic()
    args = ["build"]
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if select:
        args += ["--select", *select]
    if full_refresh:
        args.append("--full-refresh")
    result = run_dbt(args, home=home, vars=merged)
    elapsed = time.monotonic() - started
    nodes = _outcomes(result)
    failed = [n for n in nodes if n.status in FAILED_STATUSES]
    if not result.success or failed or result.exception is not None:
        raise DbtBuildFailed(_failure_message(result, nodes), failed)
    if docs:
        try:
            # the build has just written a fresh manifest into the target path
            write_docs(home, merged, compile=False)
        except Exception:  # the docs site must never block the pipeline
            log.warning("dbt docs generation failed; the build itself succeeded", exc_info=True)
    return BuildReport(success=True, elapsed_seconds=elapsed, nodes=nodes)


def docs_generate(home: Path, vars: dict[str, Any] | None = None, *,
                  compile: bool = True) -> dbtRunnerResult:
    """`dbt docs generate --static` into the target path (catalog, manifest, index.html
    and the single-file static_index.html). compile=False reuses the manifest a build
    has just written (seconds faster)."""
    merged = default_vars()
    merged.update(vars or {})
    args = ["docs", "generate", "--static"] + ([] if compile else ["--no-compile"])
    result = run_dbt(args, home=home, vars=merged)
    if not result.success:
        raise DbtBuildFailed(f"dbt docs generate failed: {result.exception}")
    return result


def docs_path(home: Path) -> Path:
    return Path(home) / "reports" / "dbt_docs"


DOCS_FILES = ("index.html", "static_index.html", "manifest.json", "catalog.json")


def write_docs(home: Path, vars: dict[str, Any] | None = None, *, compile: bool = True) -> Path:
    """Generate the dbt docs and publish them into $PENSTAT_HOME/reports/dbt_docs.

    static_index.html is the whole site in one file (open it in a browser); index.html
    with manifest.json and catalog.json is the classic site (`python -m http.server`).
    The folder is replaced in one rename, so a reader never sees half a site."""
    docs_generate(home, vars, compile=compile)
    target = target_path(home)
    final = docs_path(home)
    final.parent.mkdir(parents=True, exist_ok=True)
    fresh = final.parent / f".dbt_docs-{os.getpid()}"
    if fresh.exists():
        shutil.rmtree(fresh)
    fresh.mkdir()
    for name in DOCS_FILES:
        if (target / name).is_file():
            shutil.copy2(target / name, fresh / name)
    old = final.parent / f".dbt_docs-old-{os.getpid()}"
    if final.exists():
        os.rename(final, old)
    os.rename(fresh, final)
    if old.exists():
        shutil.rmtree(old)
    return final
