"""`make real`: five real public data sets through the pipeline, into their own PENSTAT_HOME.

The adapters (ingestion/sources/) read each file as published and send contract
deliveries into the inbox, exactly like any sender. Then, in this process and through
the same code paths the Airflow tasks call, every feed is ingested (manifest, checksums,
types, Great Expectations delivery suite, context rules, ledger), dbt builds the marts,
and the publication gate validates them before `published/current` switches.

One warehouse holds every source: California and Italy share the v1 facility register
(one register delivery, see ingestion.sources.register), the US register, Iowa's
cohort and Eurostat's table come in the v2 feeds (docs/contract/feeds-v2.md).

The only configuration that differs from the default is config/real.toml (the bound on
population over operational capacity, with its reason).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.pipeline import DeliveryOutcome, ingest_feed
from ingestion.settings import (
    DEFAULT_CONFIG,
    REPO_ROOT,
    Config,
    Paths,
    fresh_scratch_home,
    penstat_home_env,
)
from ingestion.sources import SourceReport, california, data_dir, eurostat, hifld, iowa, italy
from ingestion.sources.register import send_register

REAL_MARKER = ".penstat-real"
REAL_CONFIG = REPO_ROOT / "config" / "real.toml"
DEFAULT_HOME = REPO_ROOT / ".penstat" / "real"
# Order of ingestion: the register first (the v1 feeds check facilities against it).
FEED_ORDER = ("facility_register", "occupancy", "staffing", "reference_register",
              "recidivism_cohort", "national_reference")


def real_config() -> Config:
    """config/penstat.toml with config/real.toml's overrides on top."""
    with open(DEFAULT_CONFIG, "rb") as fh:
        values = tomllib.load(fh)
    with open(REAL_CONFIG, "rb") as fh:
        overrides = tomllib.load(fh)
    for section, items in overrides.items():
        values.setdefault(section, {}).update(items)
    return Config(values)


@dataclass
class RealRun:
    paths: Paths
    reports: dict[str, SourceReport]
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    publication: object | None = None
    summary: str = ""


def send_all(inbox: Path, data: Path | None = None) -> dict[str, SourceReport]:
    """Run the five adapters: write every delivery into `inbox`; return their reports."""
    data = data or data_dir()
    ca, it = california.build(data), italy.build(data)
    us, ia, eu = hifld.build(data), iowa.build(data), eurostat.build(data)
    register = send_register(inbox, [
        ("CDCR", ca.register, california.CREATED_AT),
        ("Ministero della Giustizia", it.register, max(italy.CREATED_AT.values())),
    ])
    for report, rows in ((ca.report, ca.register), (it.report, it.register)):
        report.rows_delivered[f"facility_register/{register.name}/facilities.csv"] = len(rows)
        report.deliveries.append(f"facility_register/{register.name}")
    california.send(inbox, ca)
    italy.send(inbox, it)
    hifld.send(inbox, us)
    iowa.send(inbox, ia)
    eurostat.send(inbox, eu)
    return {r.source: r for r in (ca.report, it.report, us.report, ia.report, eu.report)}


class RealRunFailed(RuntimeError):
    pass


def run_real(home: Path = DEFAULT_HOME, data: Path | None = None,
             as_of: str | None = None) -> RealRun:
    """Adapters -> inbox -> ingest -> dbt build -> gate -> publication, then the summary."""
    from publication.publish import publish
    from transform.dbt_runner import build

    paths = Paths(Path(home).resolve())
    fresh_scratch_home(paths, REAL_MARKER, "make real")
    config = real_config()
    with penstat_home_env(paths.home):
        t = time.monotonic()
        reports = send_all(paths.inbox, data)
        run = RealRun(paths=paths, reports=reports)
        run.timings.append(("adapters: read 5 sources, write deliveries", time.monotonic() - t))

        t = time.monotonic()
        for feed in FEED_ORDER:
            run.outcomes += ingest_feed(feed, paths, config)
        bad = [o for o in run.outcomes if o.outcome not in ("loaded", "resend_ignored")]
        if bad:
            raise RealRunFailed("deliveries not loaded:\n" + "\n".join(
                "  " + o.summary() + "".join(f"\n    {p.one_line()}" for p in o.problems)
                for o in bad))
        run.timings.append((f"ingest {len(run.outcomes)} deliveries (validation gate)",
                            time.monotonic() - t))

        t = time.monotonic()
        build(paths.home, {"as_of_date": as_of} if as_of else None)
        run.timings.append(("dbt build", time.monotonic() - t))

        t = time.monotonic()
        run.publication = publish(paths)
        run.timings.append(("publication gate and switch", time.monotonic() - t))

    from operations.real_summary import summary

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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m operations.real",
                                     description="run the real data sets through penstat")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help="PENSTAT_HOME for the run (wiped first; default .penstat/real)")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of the real data sets (default $PENSTAT_REAL_DATA or "
                             "../shared/real)")
    args = parser.parse_args(argv)
    data = args.data or data_dir()
    if not data.is_dir():
        print(f"real data sets not found in {data} (set PENSTAT_REAL_DATA)", file=sys.stderr)
        return 2
    run = run_real(args.home, data)
    print(run.summary)
    print()
    print(f"Publication {run.publication.version} in {run.paths.current_publication}")
    print(f"Adapter reports and set-aside rows: {run.paths.reports / 'real'}")
    print("Time per stage on this machine:")
    for stage, seconds in run.timings:
        print(f"  {stage:<48} {seconds:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
