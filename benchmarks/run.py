"""`make bench`: full rebuild, daily increment (direct and through Airflow) and the reference.

For each scale the synthetic system is generated once into a template inbox.
Each run copies it into a fresh PENSTAT_HOME and measures, each stage in its
own process (wall time, and peak resident memory from the stage's VmHWM):

  full        ingest every delivery, dbt build, gate, publish
  reference   benchmarks/reference.sql on the same delivered files (no dbt/GX/Airflow)
  daily       one more day of occupancy on top of the full history, same code, direct
  airflow     the same kind of day through the real Airflow stack: _READY -> new publication

Medians over the runs go to docs/benchmarks.md, with row counts and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from penstat.contract.layout import Paths
from penstat.core.locations import REPO_ROOT

DOC = REPO_ROOT / "docs" / "benchmarks.md"
SEED = 42
# how often the Airflow daily looks for the new publication: its figure is late by up
# to this much (it was 1 s until 2026-11-30 evening, 0.5 s late on average)
POLL_SECONDS = 0.1


@dataclass
class Measure:
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    laps: dict[str, list[float]] = field(default_factory=dict)

    def add(self, seconds: float, peak_mb: float | None,
            laps: dict[str, float] | None = None) -> None:
        self.seconds.append(seconds)
        if peak_mb is not None:
            self.peak_mb.append(peak_mb)
        for step, value in (laps or {}).items():
            self.laps.setdefault(step, []).append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def peak(self) -> float | None:
        return max(self.peak_mb) if self.peak_mb else None

    def lap_medians(self) -> dict[str, float]:
        return {step: statistics.median(v) for step, v in self.laps.items()}


def run_stage(stage: str, home: Path, env: dict[str, str]
              ) -> tuple[float, float, dict[str, float]]:
    """Run one stage in a child process; (wall seconds, peak RSS in MB, laps)."""
    from benchmarks.stages import LAP

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.stages", stage, "--home",
                             str(home)], env=env, cwd=str(REPO_ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"stage {stage} failed:\n{stderr[-3000:]}")
    laps = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == LAP:
            laps[parts[1]] = float(parts[2])
            laps[f"{parts[1]}_peak_mb"] = float(parts[3])
    # the program's own peak (VmHWM, benchmarks.stages.peak_mb); wait4's ru_maxrss
    # would include this runner's size, which Linux carries across fork and exec
    peak = laps.get("total_peak_mb", usage.ru_maxrss / 1024)
    return seconds, peak, laps


def row_counts(inbox: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for manifest in inbox.glob("*/*/manifest.json"):
        for f in json.loads(manifest.read_text())["files"]:
            counts[f["name"]] = counts.get(f["name"], 0) + f["rows"]
    return counts


def airflow_daily(home: Path, env: dict[str, str], scale: float, days: list[date]
                  ) -> list[float]:
    """_READY to a new publication through the real local Airflow stack, once per day
    (the stack is started once; each day's delivery lands when the stack is idle, as
    deliveries a day apart do: the runs of the stack's start, or of the day before,
    are not counted in the next day)."""
    from penstat.orchestration.local_airflow import Stack
    from penstat.orchestration.waiting import active_dag_runs, publication_with, wait_until
    from penstat.publication.publish import current_manifest
    from penstat.senders.synthetic import next_day

    os.environ.update({k: env[k] for k in ("PENSTAT_HOME", "PENSTAT_PSEUDONYM_KEY")})
    paths = Paths.from_env()
    stack = Stack(paths)
    seconds = []
    try:
        api = stack.up()["api"]
        for day in days:
            wait_until(lambda: active_dag_runs(api) == 0, 1800, "the stack to be idle")
            before = current_manifest(paths)
            folder = next_day(paths.inbox, scale=scale, seed=SEED, day=day, ring=False)
            started = time.perf_counter()
            (paths.inbox / "occupancy" / "_READY").touch()
            publication_with(paths, [f"occupancy/{Path(folder).name}"], timeout=1800,
                             newer_than=before["version"] if before else None,
                             interval=POLL_SECONDS)
            seconds.append(time.perf_counter() - started)
    finally:
        stack.down()
    return seconds


def bench_scale(scale: float, runs: int, work: Path, with_airflow: bool) -> dict:
    from penstat.senders.synthetic import generate, next_day

    template = work / f"template-{scale:g}"
    t = time.perf_counter()
    generate(template / "inbox", scale=scale, seed=SEED, split="year")
    generation = time.perf_counter() - t
    for ready in template.glob("inbox/*/_READY"):
        ready.unlink()
    counts = row_counts(template / "inbox")
    measures = {name: Measure() for name in ("full", "reference", "daily", "airflow")}
    for run in range(runs):
        home = work / f"home-{scale:g}-{run}"
        shutil.copytree(template, home)
        env = dict(os.environ, PENSTAT_HOME=str(home),
                   PENSTAT_PSEUDONYM_KEY=secrets.token_hex(32))
        measures["full"].add(*run_stage("full", home, env))
        measures["reference"].add(*run_stage("reference", home, env))
        next_day(home / "inbox", scale=scale, seed=SEED, day=date(2026, 1, 1), ring=False)
        measures["daily"].add(*run_stage("daily", home, env))
        if with_airflow and run == 0:
            # `runs` more days through Airflow on this home (one stack start-up)
            days = [date(2026, 1, 2 + i) for i in range(runs)]
            for seconds in airflow_daily(home, env, scale, days):
                measures["airflow"].add(seconds, None)
        shutil.rmtree(home)
    shutil.rmtree(template)
    return {"scale": scale, "rows": counts, "generation_seconds": generation,
            "measures": measures, "runs": runs}


def machine() -> str:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.machine()}, {os.cpu_count()} cores, {mem_gb:.0f} GB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.1f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


AIRFLOW_DAILY_BEFORE_DISCLOSURE = 18.0  # s, scale 10, docs/benchmarks.md of 2026-11-29
TARGETS_SCALE_DAILY = 10  # the daily delivery is judged at scale 10 against scale 1


def targets(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """The benchmark targets: (target, measured, met?); None where a scale was not run."""
    by_scale = {r["scale"]: r["measures"] for r in results}
    largest = max(by_scale)
    out: list[tuple[str, str, bool | None]] = []
    m = by_scale[largest]
    ratio = m["full"].median / m["reference"].median
    out.append((f"full rebuild within 3x the reference (scale 50; largest run: {largest:g})",
                f"{ratio:.1f}x", ratio <= 3 if largest >= 50 else None))
    peak = max((x["full"].peak or 0) for x in by_scale.values())
    out.append(("peak memory under 4 GB", f"{peak:.0f} MB", peak < 4096))
    ten, one = by_scale.get(TARGETS_SCALE_DAILY), by_scale.get(1)
    if ten is not None:
        share = ten["daily"].median / ten["full"].median
        out.append(("daily delivery at scale 10 under 10 % of the full rebuild",
                    f"{share:.0%}", share < 0.10))
    if ten is not None and one is not None:
        growth = ten["daily"].median / one["daily"].median
        out.append(("daily delivery at scale 10 within 2x of scale 1", f"{growth:.2f}x",
                    growth <= 2))
    if ten is not None and ten["airflow"].seconds:
        # issue 12: disclosure control may cost at most half of the 18.0 s measured
        # before it (2026-11-29, scale 10, median of 3 days)
        airflow = ten["airflow"].median
        out.append((f"daily delivery at scale 10 through Airflow within 1.5x of "
                    f"{AIRFLOW_DAILY_BEFORE_DISCLOSURE:.0f} s (before the disclosure step)",
                    f"{airflow:.1f} s ({airflow / AIRFLOW_DAILY_BEFORE_DISCLOSURE:.2f}x)",
                    airflow <= 1.5 * AIRFLOW_DAILY_BEFORE_DISCLOSURE))
    if one is not None and one["airflow"].seconds:
        airflow = one["airflow"].median
        out.append(("_READY to publication at scale 1 through Airflow: median under 30 s",
                    f"{airflow:.1f} s", airflow < 30))
    return out


def write_report(results: list[dict]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.",
        "Each figure is the median of the runs shown (peak memory: the largest run). Every stage",
        "runs in its own process; peak memory is that process's high-water resident set (VmHWM).",
        "`daily` is one more day of occupancy on top of the full history, with the same task",
        "code called directly; `daily via Airflow` is `_READY` to a new `published/current`",
        "through the real scheduler, triggerer and LocalExecutor (median of as many days as runs).",
        "",
        "| scale | occupancy rows | releases | full rebuild | reference | ratio | daily (direct)"
        " | daily / full | daily via Airflow | peak memory full | peak memory daily"
        " | peak memory reference | runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["measures"]
        ratio = m["full"].median / m["reference"].median
        share = m["daily"].median / m["full"].median
        lines.append(
            f"| {r['scale']:g} | {r['rows'].get('occupancy.csv', 0):,} "
            f"| {r['rows'].get('releases.csv', 0):,} | {fmt(m['full'].median)} "
            f"| {fmt(m['reference'].median)} | {ratio:.1f}x | {fmt(m['daily'].median)} "
            f"| {share:.0%} | {fmt(m['airflow'].median)} | {fmt(m['full'].peak, 'MB')} "
            f"| {fmt(m['daily'].peak, 'MB')} | {fmt(m['reference'].peak, 'MB')} "
            f"| {r['runs']} |")
    steps = ("imports", "ingest", "build", "publish", "disclosure_protect", "disclosure_audit")
    lines += ["", "Where the time goes: median seconds per step (one process per stage), and in",
              "brackets the process's peak memory at the end of the step:", "",
              "| scale | stage | imports | ingest | build (dbt) | publish (gate + publication) "
              "| of which: disclosure protection | disclosure audit |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for stage in ("full", "daily"):
            laps = r["measures"][stage].lap_medians()
            cells = [fmt(laps.get(step)) + (f" ({fmt(laps[step + '_peak_mb'], 'MB')})"
                                             if step + "_peak_mb" in laps else "")
                     for step in steps]
            lines.append(f"| {r['scale']:g} | {stage} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (benchmarks, not timed tests):", "",
              "| target | measured | met |", "|---|---|---|"]
    for target, measured, met in targets(results):
        verdict = "not measured" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {target} | {measured} | {verdict} |")
    lines += ["", "Rows per file at each scale:", ""]
    names = sorted({n for r in results for n in r["rows"]})
    lines.append("| scale | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for r in results:
        lines.append(f"| {r['scale']:g} | "
                     + " | ".join(f"{r['rows'].get(n, 0):,}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--scales", default="1,10", help="comma-separated, e.g. 1,10,50")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-airflow", action="store_true")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="penstat-bench-") as tmp:
        for scale in (float(s) for s in args.scales.split(",")):
            print(f"scale {scale:g}: {args.runs} run(s)...", flush=True)
            results.append(bench_scale(scale, args.runs, Path(tmp), not args.no_airflow))
            print(write_report(results), flush=True)
    body = write_report(results)
    notes = args.output.read_text().split("<!-- notes -->", 1)[1] \
        if args.output.exists() and "<!-- notes -->" in args.output.read_text() else "\n"
    args.output.write_text(body + "\n<!-- notes -->" + notes)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
