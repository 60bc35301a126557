"""Which local Airflow stack: the embedded default or the Celery one.

`penstat up` starts the executor asked for (--executor, else $PENSTAT_EXECUTOR,
else `local`: SQLite and the LocalExecutor); `status` and `down` act on the stack
recorded for this PENSTAT_HOME, whichever it is.
"""

from __future__ import annotations

import os

from penstat.contract.layout import Paths
from penstat.core.config import ConfigError
from penstat.orchestration import celery_settings as settings
from penstat.orchestration.celery_stack import EXECUTOR as CELERY
from penstat.orchestration.celery_stack import CeleryStack
from penstat.orchestration.local_airflow import Stack

LOCAL = "local"
EXECUTORS = (LOCAL, CELERY)


def requested_executor(executor: str | None = None) -> str:
    value = (executor or os.environ.get(settings.EXECUTOR_ENV) or LOCAL).strip().lower()
    if value not in EXECUTORS:
        raise ConfigError(f"{settings.EXECUTOR_ENV}={value!r}: one of {', '.join(EXECUTORS)}")
    return value


def requested_workers(workers: int | None = None) -> int:
    raw = str(workers) if workers is not None else os.environ.get(settings.WORKERS_ENV, "")
    value = raw.strip() or str(settings.DEFAULT_WORKERS)
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{settings.WORKERS_ENV}={value!r}: a whole number >= 1")
    return int(value)


def recorded_executor(paths: Paths) -> str | None:
    state = Stack(paths).read_state()
    return None if state is None else state.get("executor", LOCAL)


def stack_for(paths: Paths, executor: str | None = None,
              workers: int | None = None) -> Stack:
    """The stack to start (`executor` given or from the environment)."""
    if requested_executor(executor) == CELERY:
        return CeleryStack(paths, workers=requested_workers(workers))
    return Stack(paths)


def recorded_stack(paths: Paths) -> Stack:
    """The stack `up` recorded for this home (the requested one when none is recorded)."""
    recorded = recorded_executor(paths)
    if recorded == CELERY:
        state = Stack(paths).read_state() or {}
        return CeleryStack(paths, workers=max(1, len(state.get("workers", {}))))
    return Stack(paths) if recorded == LOCAL else stack_for(paths)
