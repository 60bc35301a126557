"""The settings the two Celery deployments share: one table, read by both.

docker-compose.yml (containers) and penstat.orchestration.celery_stack (local
processes, `PENSTAT_EXECUTOR=celery make up`) must run penstat the same way:
the same executor and Airflow settings, the same one-slot warehouse pool, the
same secrets taken from the operator (never a default), the same paths inside
the checkout. The stack builds its environment from this table;
tests/unit/orchestration/test_compose.py checks docker-compose.yml and the
Dockerfile against it.

Values may use compose's `${NAME:-default}`: compose expands it itself, the
local stack with `resolve`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from penstat.core.config import ConfigError
from penstat.orchestration.assets import WAREHOUSE_POOL

EXECUTOR_ENV = "PENSTAT_EXECUTOR"  # local (default) | celery
WORKERS_ENV = "PENSTAT_WORKERS"  # Celery workers the local stack starts (default 2)
DEFAULT_WORKERS = 2
# task processes per worker: each holds the task code (~340 MB); 2 suits a 2-core host
WORKER_CONCURRENCY_ENV = "PENSTAT_WORKER_CONCURRENCY"
DEFAULT_WORKER_CONCURRENCY = 2
# seconds without a task heartbeat after which the scheduler fails the attempt
HEARTBEAT_TIMEOUT_ENV = "PENSTAT_TASK_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_TIMEOUT = 60
WAREHOUSE_POOL_SLOTS = 1  # DuckDB: one writer at a time, across every worker

# Airflow settings, identical in both deployments.
SHARED_AIRFLOW_SETTINGS: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    # event-driven DAGs: they run as soon as they are parsed
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY":
        f"${{{WORKER_CONCURRENCY_ENV}:-{DEFAULT_WORKER_CONCURRENCY}}}",
    # A worker that dies (killed, its machine lost) stops heartbeating its tasks: after
    # this many seconds the scheduler fails the attempt and the task's retry policy
    # (dag_defaults.retry_policy) runs it again on a live worker. Airflow's default is 300.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT":
        f"${{{HEARTBEAT_TIMEOUT_ENV}:-{DEFAULT_HEARTBEAT_TIMEOUT}}}",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}
# penstat's paths, relative to the checkout (/opt/penstat in the image).
CHECKOUT_PATHS: dict[str, str] = {
    "AIRFLOW__CORE__DAGS_FOLDER": "dags",
    "PENSTAT_CONFIG": "config/penstat.toml",
}
# PYTHONPATH: the checkout and the folder of airflow_local_settings.py (task preload).
PYTHONPATH_ENTRIES: tuple[str, ...] = (".", "penstat/orchestration/airflow_settings")
# Secrets from the operator's environment; no default anywhere.
REQUIRED_SECRETS: tuple[str, ...] = ("PENSTAT_PSEUDONYM_KEY",)
POOL = (WAREHOUSE_POOL, WAREHOUSE_POOL_SLOTS)

_DEFAULT_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):-(?P<default>[^}]*)\}")


def resolve(value: str, env: Mapping[str, str]) -> str:
    """Expand `${NAME:-default}` the way compose does (unset or empty: the default)."""
    return _DEFAULT_REF.sub(lambda m: env.get(m["name"]) or m["default"], value)


def heartbeat_timeout(env: Mapping[str, str]) -> int:
    """Seconds without a heartbeat before a task's attempt is failed: at least 20, since
    a task heartbeats every few seconds and a loaded host may miss some."""
    value = resolve(SHARED_AIRFLOW_SETTINGS["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"],
                    env)
    if not value.isdigit() or int(value) < 20:
        raise ConfigError(f"{HEARTBEAT_TIMEOUT_ENV}={value!r}: a whole number of seconds >= 20")
    return int(value)


def worker_concurrency(env: Mapping[str, str]) -> int:
    value = resolve(SHARED_AIRFLOW_SETTINGS["AIRFLOW__CELERY__WORKER_CONCURRENCY"], env)
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{WORKER_CONCURRENCY_ENV}={value!r}: a whole number >= 1")
    return int(value)
