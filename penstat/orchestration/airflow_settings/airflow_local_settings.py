"""Airflow local settings of penstat's stacks: preload the task code in the scheduler.

Airflow imports `airflow_local_settings` in every component when it starts
(penstat.orchestration.local_airflow and docker-compose.yml put this folder on
PYTHONPATH). On Linux the LocalExecutor forks its workers from the scheduler
and each task process from a worker (no exec), so a module the scheduler has
imported is already loaded in every task process. Importing the task code and
its heavy libraries here, once, takes their start-up cost off every task on
the path from `_READY` to a publication: Great Expectations takes about 6 s to
import and dbt about 2.5 s (docs/benchmarks.md).

The preloaded objects are then frozen (`gc.freeze`), out of the cyclic collector's
walks in every task process forked from it (the executors unfreeze their own
process's objects around spawning workers; a process forked meanwhile keeps them
frozen).

Only the processes that fork task processes preload: the scheduler (with the
LocalExecutor of the local stack) and a Celery worker (docker-compose.yml).
The api-server, dag-processor and triggerer do not need the task code.
PENSTAT_PRELOAD_TASK_MODULES=0 turns it off.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

__all__: list[str] = []  # no cluster policies here

TASK_MODULES = (
    "penstat.orchestration.tasks",
    "penstat.validation.runner",  # Great Expectations
    "penstat.publication.publish",
    "penstat.transform.dbt_runner",  # dbt-core
    "dbt.adapters.duckdb",
)


def forks_task_processes(argv: list[str]) -> bool:
    """`airflow scheduler` (LocalExecutor) or `airflow celery worker`."""
    return argv[1:2] == ["scheduler"] or argv[1:3] == ["celery", "worker"]


def preload(argv: list[str] | None = None) -> list[str]:
    """Import TASK_MODULES in a process that forks task processes; returns them."""
    if os.environ.get("PENSTAT_PRELOAD_TASK_MODULES", "1") == "0":
        return []
    if not forks_task_processes(sys.argv if argv is None else argv):
        return []
    for name in TASK_MODULES:
        importlib.import_module(name)
    # The imported modules live as long as the process: move their objects out of the
    # cyclic collector's reach (Python's advice for a process that forks). A task's
    # collections then walk only what the task made, not the millions of objects of
    # Great Expectations, dbt and Airflow, and the forked processes do not copy those
    # pages by touching them.
    gc.freeze()
    return list(TASK_MODULES)


preload()
