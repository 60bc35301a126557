"""`make demo`: the whole pipeline on a synthetic national prison system, through real Airflow.

Starts the local Airflow stack on a fresh demo PENSTAT_HOME, drops the
generated deliveries into the inbox and rings the doorbells, waits until a
publication holds every delivery, prints the headline KPIs and the time each
stage took, and stops what it started.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

from penstat.contract.layout import Paths, fresh_scratch_home
from penstat.orchestration.local_airflow import Stack
from penstat.orchestration.waiting import dashboard_of, publication_with
from penstat.reporting.headline import headline
from penstat.senders.synthetic import generate, history_until

DEMO_MARKER = ".penstat-demo"


def run_demo(scale: float = 1.0, seed: int = 42, timeout: float = 1800) -> int:
    paths = Paths.from_env()
    timings: list[tuple[str, float]] = []
    t = time.monotonic()
    fresh_scratch_home(paths, DEMO_MARKER, "make demo")
    if not os.environ.get("PENSTAT_PSEUDONYM_KEY"):
        # A throwaway key for this run only; real deployments set their own secret.
        os.environ["PENSTAT_PSEUDONYM_KEY"] = secrets.token_hex(32)
    stack = Stack(paths)
    try:
        state = stack.up()
        timings.append(("start Airflow (migrate, pool, 4 components healthy)",
                        time.monotonic() - t))
        print(f"Airflow is up at {state['api']}; PENSTAT_HOME={paths.home}", flush=True)

        t = time.monotonic()
        # the history ends yesterday, so that no feed is late today: a green first run
        folders = generate(paths.inbox, scale=scale, seed=seed, split="year",
                           until=history_until())
        deliveries = sorted(f"{Path(f).parent.name}/{Path(f).name}" for f in folders)
        timings.append((f"generate {len(deliveries)} deliveries (scale {scale:g})",
                        time.monotonic() - t))
        print(f"Generated {len(deliveries)} deliveries into {paths.inbox}", flush=True)

        t = time.monotonic()
        manifest = publication_with(paths, deliveries, timeout=timeout)
        timings.append(("_READY -> ingest -> dbt build -> gate -> publication",
                        time.monotonic() - t))

        t = time.monotonic()
        # penstat_dashboard (on penstat.published) draws it into the publication
        dashboard = dashboard_of(paths, manifest["version"], timeout=timeout)
        timings.append(("publication -> dashboard (penstat_dashboard)", time.monotonic() - t))
    finally:
        t = time.monotonic()
        stack.down()
        timings.append(("stop Airflow", time.monotonic() - t))

    print()
    print(f"Publication {manifest['version']} in {paths.current_publication}")
    for mart, info in manifest["marts"].items():
        print(f"  {mart:<26} {info['rows']:>8} rows")
    print()
    print(headline(paths.current_publication))
    print()
    print("Time per stage on this machine:")
    for stage, seconds in timings:
        print(f"  {stage:<58} {seconds:7.1f} s")
    print(f"\nDashboard: {dashboard}  (serve it: make dashboard)")
    print("\nQuery it (read-only; `current` never changes under a reader):")
    print(f"  {sys.executable} -c \"import duckdb; con = duckdb.connect("
          f"'{paths.current_publication}/published.duckdb', read_only=True); "
          "print(con.sql('SELECT * FROM marts.mart_national_monthly LIMIT 8'))\"")
    return 0
