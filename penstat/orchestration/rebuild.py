"""`make rebuild`: rebuild every model from the raw layer, gate and publish.

With the local Airflow stack of this PENSTAT_HOME running, the rebuild is a
run of penstat_build with `{"full_refresh": true}`, so it queues behind the
warehouse's one-slot pool like any other writer (and penstat_publish follows).
Without it, the task bodies run here, in this process.
"""

from __future__ import annotations

from penstat.contract.layout import Paths
from penstat.orchestration import tasks
from penstat.orchestration.local_airflow import Stack, health, post_json


def trigger_full_refresh(api: str) -> str:
    """Queue a penstat_build run with full_refresh; returns the dag_run_id."""
    run = post_json(f"{api}/api/v2/dags/penstat_build/dagRuns",
                    {"logical_date": None, "conf": {"full_refresh": True},
                     "note": "make rebuild"})
    return run["dag_run_id"]


def rebuild(paths: Paths | None = None) -> dict:
    paths = paths or Paths.from_env()
    state = Stack(paths).read_state()
    if state and health(state["api"]):
        return {"via": "airflow", "dag_run_id": trigger_full_refresh(state["api"])}
    build = tasks.build_marts(full_refresh=True)
    publication = tasks.gate_and_publish()
    return {"via": "direct", "build": build, "publication": publication}
