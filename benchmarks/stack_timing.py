"""Start-up and `_READY`-to-publication times of a local Airflow stack, by executor.

    python -m benchmarks.stack_timing --executor celery --workers 2 --scale 0.1

In a fresh PENSTAT_HOME (a temporary folder): `up` (timed), the synthetic
delivery set published (timed from the first `_READY`), then one new day of
occupancy rung with `_READY` and waited for in a new publication (timed), then
`down`. Prints one JSON line; the figures go to docs/operations.md and the
README by hand, with their date (timings never in assertions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from penstat.contract.layout import Paths
from penstat.orchestration.stacks import stack_for
from penstat.orchestration.waiting import publication_with
from penstat.publication.publish import current_manifest
from penstat.senders.synthetic import generate, history_until, next_day

TIMEOUT = 1800


def measure(executor: str, workers: int, scale: float, seed: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="penstat-timing-"))
    os.chmod(root, 0o711)  # PostgreSQL's service user must reach services/ below it
    os.environ["PENSTAT_HOME"] = str(root / "home")
    os.environ.setdefault("PENSTAT_PSEUDONYM_KEY", "timing-only-key-0123456789")
    paths = Paths.from_env()
    paths.ensure()
    stack = stack_for(paths, executor, workers)
    started = time.monotonic()
    try:
        stack.up(timeout=600)
        startup = time.monotonic() - started
        until = history_until()
        t0 = time.monotonic()
        folders = [Path(f) for f in generate(paths.inbox, scale=scale, seed=seed,
                                             split="year", until=until)]
        publication_with(paths, [f"{f.parent.name}/{f.name}" for f in folders], TIMEOUT)
        full_set = time.monotonic() - t0
        before = current_manifest(paths)["version"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        t1 = time.monotonic()
        folder = Path(next_day(paths.inbox, scale=scale, seed=seed,
                               day=until + timedelta(days=1), until=until, created_at=now))
        publication_with(paths, [f"occupancy/{folder.name}"], TIMEOUT, newer_than=before)
        one_day = time.monotonic() - t1
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)
    return {"date": datetime.now(UTC).date().isoformat(), "executor": executor,
            "workers": workers if executor == "celery" else None, "scale": scale,
            "deliveries": len(folders), "startup_s": round(startup, 1),
            "full_set_ready_to_publication_s": round(full_set, 1),
            "one_day_ready_to_publication_s": round(one_day, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executor", choices=("local", "celery"), default="local")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scale", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    print(json.dumps(measure(args.executor, args.workers, args.scale, args.seed)))


if __name__ == "__main__":
    main()
