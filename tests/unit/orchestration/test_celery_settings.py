"""docker-compose.yml and the local Celery stack run penstat with the same settings.

Both come from one table, penstat.orchestration.celery_settings: the executor and
Airflow settings, the one-slot warehouse pool, the secrets taken from the operator,
the paths inside the checkout (/opt/penstat in the image). The compose file and the
Dockerfile are read as text/YAML; the stack's environment is built without
starting anything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from penstat.contract.layout import Paths
from penstat.core.config import ConfigError
from penstat.core.locations import REPO_ROOT
from penstat.orchestration import celery_settings as settings
from penstat.orchestration.celery_stack import CeleryStack
from penstat.orchestration.local_airflow import Stack
from penstat.orchestration.services.postgres import Postgres
from penstat.orchestration.services.redis import Redis
from penstat.orchestration.stacks import recorded_stack, requested_workers, stack_for

IMAGE_ROOT = "/opt/penstat"
BOOLEAN = {"true", "false"}


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower() if {a.lower(), b.lower()} <= BOOLEAN else a == b


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose_env(compose) -> dict[str, str]:
    return {k: str(v) for k, v in compose["x-airflow-common"]["environment"].items()}


@pytest.fixture()
def stack_env(tmp_path, monkeypatch) -> dict[str, str]:
    for name in ("PENSTAT_CONFIG", settings.WORKER_CONCURRENCY_ENV, settings.HEARTBEAT_TIMEOUT_ENV,
                 "AIRFLOW__CORE__EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    stack = CeleryStack(Paths(tmp_path / "home"), workers=2)
    return stack.celery_environment(
        8080, Postgres(tmp_path / "pg", 5432, "pw"), Redis(tmp_path / "redis", 6379, "pw"))


def test_compose_and_the_stack_share_the_airflow_settings(compose_env, stack_env):
    for name, value in settings.SHARED_AIRFLOW_SETTINGS.items():
        assert name in compose_env, f"docker-compose.yml does not set {name}"
        assert _same(compose_env[name], value), (name, compose_env[name], value)
        resolved = settings.resolve(value, {})
        assert _same(stack_env[name], resolved), (name, stack_env[name], resolved)
    assert stack_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert stack_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"


def test_the_same_drivers_for_the_metadata_database_and_the_broker(compose_env, stack_env):
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
                 "AIRFLOW__CELERY__BROKER_URL"):
        assert compose_env[name].split("://")[0] == stack_env[name].split("://")[0], name


def test_the_same_paths_inside_the_checkout(compose_env, stack_env):
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for name, relative in settings.CHECKOUT_PATHS.items():
        assert compose_env[name] == f"{IMAGE_ROOT}/{relative}", name
        assert Path(stack_env[name]) == REPO_ROOT / relative, name
    [image_path] = re.findall(r"PYTHONPATH=(\S+)", dockerfile)
    expected = [str(Path(IMAGE_ROOT) / e) if e != "." else IMAGE_ROOT
                for e in settings.PYTHONPATH_ENTRIES]
    assert image_path.split(":") == expected
    stack_path = stack_env["PYTHONPATH"].split(":")
    assert [str(REPO_ROOT / e) if e != "." else str(REPO_ROOT)
            for e in settings.PYTHONPATH_ENTRIES] == stack_path[:2]


def test_the_same_secrets_required_with_no_default(compose_env, tmp_path, monkeypatch):
    for name in settings.REQUIRED_SECRETS:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]*\}}", compose_env[name]), name
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="PENSTAT_PSEUDONYM_KEY"):
        CeleryStack(Paths(tmp_path / "home")).up()
    assert not (tmp_path / "home" / "services").exists(), "refused before starting anything"


def test_the_same_warehouse_pool(compose):
    pool, slots = settings.POOL
    init = compose["services"]["airflow-init"]["command"]
    script = init if isinstance(init, str) else " ".join(init)
    assert re.search(rf"airflow pools set {pool} {slots}\b", script)
    assert slots == 1


def test_worker_concurrency_is_configured_in_one_place(compose_env, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.WORKER_CONCURRENCY_ENV, "3")
    compose_value = settings.resolve(compose_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"],
                                     {settings.WORKER_CONCURRENCY_ENV: "3"})
    assert compose_value == "3"
    assert CeleryStack(Paths(tmp_path)).concurrency() == 3
    monkeypatch.setenv(settings.WORKER_CONCURRENCY_ENV, "0")
    with pytest.raises(ConfigError, match=settings.WORKER_CONCURRENCY_ENV):
        CeleryStack(Paths(tmp_path)).concurrency()


def test_the_heartbeat_timeout_is_configured_in_one_place(compose_env, tmp_path, monkeypatch):
    name = "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"
    monkeypatch.delenv(settings.HEARTBEAT_TIMEOUT_ENV, raising=False)
    assert settings.heartbeat_timeout({}) == 60
    assert settings.resolve(compose_env[name], {settings.HEARTBEAT_TIMEOUT_ENV: "30"}) == "30"
    monkeypatch.setenv(settings.HEARTBEAT_TIMEOUT_ENV, "30")
    env = CeleryStack(Paths(tmp_path / "home")).celery_environment(
        8080, Postgres(tmp_path / "pg", 5432, "pw"), Redis(tmp_path / "redis", 6379, "pw"))
    assert env[name] == "30"
    for bad in ("5", "sixty", "-1"):
        monkeypatch.setenv(settings.HEARTBEAT_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=settings.HEARTBEAT_TIMEOUT_ENV):
            CeleryStack(Paths(tmp_path / "home")).celery_environment(
                8080, Postgres(tmp_path / "pg", 5432, "pw"), Redis(tmp_path / "redis", 6379, "pw"))


def test_the_executor_is_chosen_by_flag_or_environment(tmp_path, monkeypatch):
    paths = Paths(tmp_path)
    monkeypatch.delenv(settings.EXECUTOR_ENV, raising=False)
    monkeypatch.delenv(settings.WORKERS_ENV, raising=False)
    assert type(stack_for(paths)) is Stack  # the default stays SQLite + LocalExecutor
    monkeypatch.setenv(settings.EXECUTOR_ENV, "celery")
    monkeypatch.setenv(settings.WORKERS_ENV, "3")
    chosen = stack_for(paths)
    assert isinstance(chosen, CeleryStack) and chosen.workers == 3
    assert type(stack_for(paths, "local")) is Stack
    monkeypatch.setenv(settings.EXECUTOR_ENV, "kubernetes")
    with pytest.raises(ConfigError, match="kubernetes"):
        stack_for(paths)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(settings.WORKERS_ENV, bad)
        with pytest.raises(ConfigError, match=settings.WORKERS_ENV):
            requested_workers()


def test_status_and_down_act_on_the_recorded_stack(tmp_path, monkeypatch):
    paths = Paths(tmp_path)
    monkeypatch.setenv(settings.EXECUTOR_ENV, "local")
    stack = Stack(paths)
    stack.airflow_home.mkdir(parents=True)
    stack.pid_file.write_text('{"executor": "celery", "pids": {}, "services": {}, '
                              '"workers": {"worker-1": {}, "worker-2": {}}}')
    recorded = recorded_stack(paths)
    assert isinstance(recorded, CeleryStack) and recorded.workers == 2
    stack.pid_file.write_text('{"pids": {}}')  # written by the local stack
    assert type(recorded_stack(paths)) is Stack
