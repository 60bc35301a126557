"""Waiting on conditions (never fixed sleeps): a publication that holds given deliveries."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterable

from penstat.contract.layout import Paths
from penstat.publication.publish import current_manifest


def active_dag_runs(api: str) -> int:
    """Queued or running DAG runs, from the local api-server."""
    url = f"{api}/api/v2/dags/~/dagRuns?state=queued&state=running&limit=1"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(json.loads(resp.read())["total_entries"])


def wait_until(condition: Callable[[], object], timeout: float, what: str,
               interval: float = 1.0, on_timeout: Callable[[], str] | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}. {detail}")
        time.sleep(interval)


def publication_with(paths: Paths, deliveries: Iterable[str], timeout: float,
                     newer_than: str | None = None, interval: float = 1.0) -> dict:
    """Wait until `current` is a publication containing every `feed/delivery_id` given
    (looked at every `interval` seconds: a benchmark passes a short one)."""
    wanted = set(deliveries)

    def ready() -> dict | None:
        manifest = current_manifest(paths)
        if not manifest or (newer_than and manifest["version"] == newer_than):
            return None
        return manifest if wanted <= set(manifest["deliveries"]) else None

    def explain() -> str:
        manifest = current_manifest(paths) or {}
        missing = sorted(wanted - set(manifest.get("deliveries", [])))
        quarantined = sorted(str(p.relative_to(paths.quarantine))
                             for p in paths.quarantine.glob("*/*"))
        return (f"current={manifest.get('version')}; missing deliveries {missing[:10]}; "
                f"quarantined {quarantined[:10]}")

    return wait_until(ready, timeout, f"a publication with {len(wanted)} deliveries",
                      interval=interval, on_timeout=explain)


def dashboard_of(paths: Paths, version: str, timeout: float) -> str:
    """Wait until publication `version` has a complete dashboard (drawn by the
    penstat_dashboard DAG); its index.html."""
    from penstat.reporting.dashboard.install import DASHBOARD_DIR, INDEX, complete

    folder = paths.published / version / DASHBOARD_DIR
    return str(wait_until(lambda: complete(folder) and folder / INDEX, timeout,
                          f"the dashboard of publication {version}"))
