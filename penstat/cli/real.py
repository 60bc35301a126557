"""`penstat real` (`make real`): five real public data sets through the pipeline.

The adapters (penstat/senders/real/) read each file of data/real/ as published and
send contract deliveries into the inbox of a scratch PENSTAT_HOME, exactly like any
sender. Then the same task bodies the Airflow DAGs run (penstat.orchestration.tasks)
ingest every feed (manifest, checksums, types, Great Expectations delivery suite,
warehouse rules, ledger), build the marts (a meta.builds row and the incremental plan,
a full build the first time) and gate and publish them.

One warehouse holds every source: California and Italy share the v1 facility register
(one register delivery, see penstat.senders.real.register), the US register, Iowa's
cohort and Eurostat's table come in the v2 feeds (docs/contract/feeds-v2.md).

The only configuration that differs from the default is the overlay config/real.toml
(the bound on population over operational capacity, with its reason).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from penstat.contract.layout import Paths, fresh_scratch_home
from penstat.core.config import OVERLAYS_ENV
from penstat.core.env import scoped_env
from penstat.core.locations import CONFIG_DIR, REPO_ROOT
from penstat.orchestration import tasks
from penstat.reporting.real_summary import summary
from penstat.senders.real import SourceReport
from penstat.senders.real.send import send_all

REAL_MARKER = ".penstat-real"
REAL_CONFIG = CONFIG_DIR / "real.toml"
DEFAULT_HOME = REPO_ROOT / ".penstat" / "real"
# Order of ingestion: the register first (the v1 feeds check facilities against it).
FEED_ORDER = ("facility_register", "occupancy", "staffing", "reference_register",
              "recidivism_cohort", "national_reference")


@dataclass
class RealRun:
    paths: Paths
    reports: dict[str, SourceReport]
    outcomes: list[dict] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    build: dict | None = None
    publication: dict | None = None
    dashboard: dict | None = None
    summary: str = ""


class RealRunFailed(RuntimeError):
    pass


def run_real(home: Path = DEFAULT_HOME, data: Path | None = None,
             as_of: str | None = None) -> RealRun:
    """Adapters -> inbox -> ingest -> dbt build -> gate -> publication, then the summary."""
    paths = Paths(Path(home).resolve())
    fresh_scratch_home(paths, REAL_MARKER, "make real")
    # config/real.toml on top of the default, and under any overlay the caller set
    overlays = os.pathsep.join(p for p in (str(REAL_CONFIG), os.environ.get(OVERLAYS_ENV)) if p)
    with scoped_env(PENSTAT_HOME=str(paths.home), **{OVERLAYS_ENV: overlays}):
        t = time.monotonic()
        reports = send_all(paths.inbox, data)
        run = RealRun(paths=paths, reports=reports)
        run.timings.append(("adapters: read 5 sources, write deliveries", time.monotonic() - t))

        t = time.monotonic()
        for feed in FEED_ORDER:
            run.outcomes += tasks.ingest(feed)
        bad = [o for o in run.outcomes if o["outcome"] not in ("loaded", "resend_ignored")]
        if bad:
            raise RealRunFailed("deliveries not loaded:\n" + "\n".join(
                f"  {o['feed']}/{o['delivery_id']}: {o['outcome']} - {o['reason']}"
                for o in bad))
        run.timings.append((f"ingest {len(run.outcomes)} deliveries (validation gate)",
                            time.monotonic() - t))

        t = time.monotonic()
        run.build = tasks.build_marts(as_of_date=as_of)
        run.timings.append(("dbt build", time.monotonic() - t))

        t = time.monotonic()
        run.publication = tasks.gate_and_publish()
        run.timings.append(("publication gate and switch", time.monotonic() - t))

        t = time.monotonic()
        run.dashboard = tasks.build_dashboard()  # what penstat_dashboard does
        run.timings.append(("dashboard", time.monotonic() - t))

    run.summary = summary(paths.current_publication, reports)
    _write_reports(run)
    return run


def _write_reports(run: RealRun) -> None:
    folder = run.paths.reports / "real"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapters.json").write_text(json.dumps(
        {s: r.as_dict() for s, r in run.reports.items()}, indent=2, ensure_ascii=False) + "\n")
    (folder / "set_aside.csv").write_bytes(b"".join(
        r.set_aside_csv() if i == 0 else r.set_aside_csv().split(b"\n", 1)[1]
        for i, r in enumerate(run.reports.values())))
    (folder / "summary.txt").write_text(run.summary + "\n")


def print_run(run: RealRun) -> None:
    print(run.summary)
    print()
    print(f"Publication {run.publication['version']} in {run.paths.current_publication}")
    if run.dashboard:
        print(f"Dashboard: {run.dashboard['index']}  (serve it: PENSTAT_HOME={run.paths.home} "
              "make dashboard)")
    print(f"Adapter reports and set-aside rows: {run.paths.reports / 'real'}")
    print("Time per stage on this machine:")
    for stage, seconds in run.timings:
        print(f"  {stage:<48} {seconds:7.1f} s")
