"""airflow_local_settings: the task code is preloaded only where task processes are forked."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from penstat.orchestration.local_airflow import AIRFLOW_SETTINGS


def _settings():
    spec = importlib.util.spec_from_file_location(
        "penstat_airflow_local_settings", AIRFLOW_SETTINGS / "airflow_local_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # under pytest argv: preloads nothing
    return module


@pytest.mark.parametrize("argv, forks", [
    (["airflow", "scheduler"], True),
    (["airflow", "celery", "worker"], True),
    (["airflow", "api-server"], False),
    (["airflow", "dag-processor"], False),
    (["airflow", "triggerer"], False),
    (["airflow", "tasks", "test", "x"], False),
])
def test_only_processes_that_fork_tasks_preload(argv, forks):
    assert _settings().forks_task_processes(argv) is forks


def test_the_switch_turns_preloading_off(monkeypatch):
    settings = _settings()
    monkeypatch.setenv("PENSTAT_PRELOAD_TASK_MODULES", "0")
    assert settings.preload(["airflow", "scheduler"]) == []


def test_a_scheduler_process_has_the_task_code_and_great_expectations_loaded():
    """In a fresh interpreter posing as `airflow scheduler`, the import loads GX and dbt."""
    code = (
        "import sys; sys.argv = ['airflow', 'scheduler']; "
        f"sys.path.insert(0, {str(AIRFLOW_SETTINGS)!r}); "
        "import airflow_local_settings as s; "
        "print(sorted(m for m in ('great_expectations', 'dbt.cli.main', "
        "'penstat.orchestration.tasks') "
        "if m in sys.modules)); "
        "import gc; print(gc.get_freeze_count() > 100_000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    loaded, frozen = out.stdout.strip().splitlines()
    assert loaded == "['dbt.cli.main', 'great_expectations', 'penstat.orchestration.tasks']"
    assert frozen == "True", "the preloaded objects are not frozen out of the collector"
