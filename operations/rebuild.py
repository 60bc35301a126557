"""`make rebuild`: rebuild every model from the raw layer, gate and publish.

With the local Airflow stack of this PENSTAT_HOME running, the rebuild is a
run of penstat_build with `{"full_refresh": true}`, so it queues behind the
warehouse's one-slot pool like any other writer (and penstat_publish follows).
Without it, the task bodies run here, in this process.
"""

from __future__ import annotations

import json
import urllib.request

from ingestion.settings import Paths
from operations.local_airflow import Stack, health


def trigger_full_refresh(api: str) -> str:
    """Queue a penstat_build run with full_refresh; returns the dag_run_id."""
    body = json.dumps({"logical_date": None, "conf": {"full_refresh": True},
                       "note": "make rebuild"}).encode()
    request = urllib.request.Request(f"{api}/api/v2/dags/penstat_build/dagRuns", data=body,
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["dag_run_id"]


def rebuild(paths: Paths | None = None) -> dict:
    paths = paths or Paths.from_env()
    state = Stack(paths).read_state()
    if state and health(state["api"]):
        return {"via": "airflow", "dag_run_id": trigger_full_refresh(state["api"])}
    from operations import tasks

    build = tasks.build_marts(full_refresh=True)
    publication = tasks.gate_and_publish()
    return {"via": "direct", "build": build, "publication": publication}
