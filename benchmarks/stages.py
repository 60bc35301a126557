"""One benchmark stage, run in its own process so its wall time and peak memory are its own.

    python -m benchmarks.stages full --home H       # ingest all pending, dbt build, publish
    python -m benchmarks.stages daily --home H      # the same, with one new day in the inbox
    python -m benchmarks.stages reference --home H  # benchmarks/reference.sql on the archive

The parent (benchmarks.run) starts this module with the environment set, and
reads the child's peak resident memory from os.wait4's rusage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REFERENCE_SQL = Path(__file__).with_name("reference.sql")


LAP = "lap"  # stderr lines `lap <step> <seconds>`: where a stage's time goes


def peak_mb() -> float:
    """This program's peak resident memory so far, in MB: VmHWM of /proc/self/status.

    Not getrusage's ru_maxrss: Linux carries that across fork and exec, so a child
    would report at least the size of the benchmark runner that started it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lap(step: str, started: float) -> float:
    """Print the step's seconds and the program's peak resident memory so far (MB)."""
    now = time.perf_counter()
    print(f"{LAP} {step} {now - started:.3f} {peak_mb():.0f}", file=sys.stderr, flush=True)
    return now


def pipeline(home: Path) -> None:
    """What the DAGs do, called directly: every feed's ingest, dbt build, gate and publish.

    Reports laps: imports, ingest, build (dbt) and publish (gate and publication)."""
    t = time.perf_counter()
    os.environ["PENSTAT_HOME"] = str(home)
    from penstat.contract.feeds import FEEDS
    from penstat.orchestration import tasks

    t = _lap("imports", t)
    loaded = False
    for feed in FEEDS:
        outcomes = tasks.ingest(feed)
        rejected = tasks.rejection_report(outcomes)
        if rejected:
            raise SystemExit(rejected)
        loaded |= tasks.loaded_any(outcomes)
    if not loaded:
        raise SystemExit("no delivery was pending: nothing to benchmark")
    t = _lap("ingest", t)
    tasks.build_marts()
    t = _lap("build", t)
    tasks.gate_and_publish()
    _lap("publish", t)
    _disclosure_laps(home)


def _disclosure_laps(home: Path) -> None:
    """The disclosure step's own seconds (secondary suppression; audit), from the newest
    gate report, with the program's peak memory (the step runs inside publish)."""
    reports = sorted((home / "reports" / "gate").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return
    seconds = json.loads(reports[-1].read_text()).get("disclosure", {}).get("seconds", {})
    for step in ("protect", "audit"):
        if step in seconds:
            print(f"{LAP} disclosure_{step} {seconds[step]:.3f} {peak_mb():.0f}",
                  file=sys.stderr, flush=True)


def reference(home: Path) -> None:
    """The engine's limit: the published marts straight from the archived deliveries, in
    one SQL script (benchmarks/reference.sql; tests/integration/test_benchmark_reference.py
    checks that its marts equal the pipeline's). Writes $home/reference/reference.duckdb."""
    import duckdb

    archive = home / "archive"
    sql = REFERENCE_SQL.read_text().replace("{archive}", str(archive))
    out = home / "reference" / "reference.duckdb"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out))
    try:
        con.execute(sql)
    finally:
        con.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages")
    parser.add_argument("stage", choices=["full", "daily", "reference"])
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.stage == "reference":
        reference(args.home)
    else:
        pipeline(args.home)
    _lap("total", started)
    print(f"{args.stage}: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
