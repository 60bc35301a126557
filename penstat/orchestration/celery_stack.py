"""The local Airflow stack on CeleryExecutor: `PENSTAT_EXECUTOR=celery make up`.

The topology of docker-compose.yml, as processes of this machine: PostgreSQL
(the metadata database) and Redis (the Celery broker) run as the project's own
processes with their data in $PENSTAT_HOME/services (services/), then the
api-server, scheduler, dag-processor and triggerer, then N Celery workers, each
named `penstat-worker-<i>@<host>` with its own pid file. Everything listens on
127.0.0.1 only, on ports chosen free at start, so stacks of several homes share a
host: no log server runs (`--skip-serve-logs`; every component writes the same
local log folder, which the api-server reads directly). `up` returns once every
part is healthy: pg_isready, an authenticated Redis PING, the api-server's health
of the scheduler, dag-processor and triggerer, and a Celery ping answered by each
worker. `down` stops the workers and components (process groups), then Redis and
PostgreSQL, and nothing else.

The settings shared with docker-compose.yml come from celery_settings. The
service passwords are generated once per PENSTAT_HOME and kept in
$PENSTAT_HOME/airflow/services.json (owner-only, in the owner-only Airflow home).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from penstat.core.config import CONFIG_ENV
from penstat.core.locations import REPO_ROOT
from penstat.core.processes import pid_alive
from penstat.orchestration import celery_settings as settings
from penstat.orchestration.local_airflow import (
    AIRFLOW_HOME_MODE,
    API_HOST,
    COMPONENTS,
    HEALTH_COMPONENTS,
    Stack,
    free_port,
    health,
    wait_healthy,
)
from penstat.orchestration.services.debian import ensure_packages
from penstat.orchestration.services.postgres import Postgres
from penstat.orchestration.services.redis import Redis
from penstat.orchestration.services.sessions import session_members, stop_sessions

EXECUTOR = "celery"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
# Python packages of requirements-celery.lock the stack cannot start without
CELERY_MODULES = ("celery", "redis", "psycopg2", "asyncpg", "psycopg",
                  "airflow.providers.celery")


class MissingCeleryDependencies(RuntimeError):
    """requirements-celery.lock is not installed in this environment."""


def check_python_dependencies() -> None:
    missing = [name for name in CELERY_MODULES if not _importable(name)]
    if missing:
        raise MissingCeleryDependencies(
            f"the Celery stack needs requirements-celery.lock (missing: {', '.join(missing)}): "
            "run `PENSTAT_EXECUTOR=celery make setup`")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def worker_name(index: int) -> str:
    return f"penstat-worker-{index}@{socket.gethostname()}"


def ping_workers(broker_url: str, names: list[str], timeout: float = 5.0) -> set[str]:
    """The workers among `names` that answer a Celery ping through the broker."""
    from celery import Celery
    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(destination=names, timeout=timeout)
    except Exception:
        return set()
    finally:
        app.close()
    return {name for reply in replies for name, answer in reply.items()
            if answer.get("ok") == "pong"}


@dataclass(frozen=True)
class CeleryStack(Stack):
    workers: int = settings.DEFAULT_WORKERS

    @property
    def services_dir(self) -> Path:
        return self.paths.home / "services"

    @property
    def credentials_file(self) -> Path:
        return self.airflow_home / "services.json"

    def credentials(self) -> dict[str, str]:
        """The services' passwords: generated on first start, then kept (owner-only)."""
        if self.credentials_file.is_file():
            return json.loads(self.credentials_file.read_text())
        values = {"postgres": secrets.token_hex(24), "redis": secrets.token_hex(24)}
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        return values

    def services(self, state: dict) -> tuple[Postgres, Redis]:
        creds = self.credentials()
        return (Postgres(self.services_dir / "postgres", state["services"]["postgres"]["port"],
                         creds["postgres"]),
                Redis(self.services_dir / "redis", state["services"]["redis"]["port"],
                      creds["redis"]))

    def celery_environment(self, port: int, postgres: Postgres, redis: Redis) -> dict[str, str]:
        settings.heartbeat_timeout(os.environ)  # refused before anything starts
        env = self.environment(port)
        env.update({name: settings.resolve(value, os.environ)
                    for name, value in settings.SHARED_AIRFLOW_SETTINGS.items()})
        env.update({name: str(REPO_ROOT / rel) for name, rel in settings.CHECKOUT_PATHS.items()
                    if not (name == CONFIG_ENV and os.environ.get(CONFIG_ENV))})
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.url(),
            "AIRFLOW__CELERY__BROKER_URL": redis.url(),
            "AIRFLOW__CORE__PARALLELISM": str(max(4, self.workers * self.concurrency())),
            # the worker processes preload the task code (airflow_local_settings)
            "PENSTAT_PRELOAD_TASK_MODULES": os.environ.get("PENSTAT_PRELOAD_TASK_MODULES", "1"),
        })
        return env

    def concurrency(self) -> int:
        return settings.worker_concurrency(os.environ)

    def running(self) -> dict | None:
        state = self.read_state()
        if not state or state.get("executor") != EXECUTOR:
            return None
        pids = [*state["pids"].values(),
                *(s["pid"] for s in state["services"].values())]
        return state if pids and all(pid_alive(pid) for pid in pids) else None

    def _write_state(self, state: dict) -> None:
        self.pid_file.write_text(json.dumps(state, indent=2))

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> int:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept by child)
        proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), *args],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=str(self.airflow_home))
        log.close()
        return proc.pid

    def up(self, port: int | None = None, timeout: float = 300) -> dict:
        state = self.running()
        if state:
            return state
        if self.read_state():
            self.down()
        missing = [name for name in settings.REQUIRED_SECRETS if not os.environ.get(name)]
        if missing:
            raise RuntimeError(f"set {', '.join(missing)} first (a secret, no default)")
        check_python_dependencies()
        ensure_packages()
        self.paths.ensure()
        self.airflow_home.mkdir(mode=AIRFLOW_HOME_MODE, parents=True, exist_ok=True)
        os.chmod(self.airflow_home, AIRFLOW_HOME_MODE)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        state: dict = {
            "executor": EXECUTOR, "port": port, "pids": {}, "home": str(self.paths.home),
            "api": f"http://{API_HOST}:{port}", "listens_on": API_HOST,
            "services": {"postgres": {"port": free_port(), "pid": 0},
                         "redis": {"port": free_port(), "pid": 0}},
            "workers": {},
        }
        self._write_state(state)
        try:
            postgres, redis = self.services(state)
            state["services"]["postgres"]["pid"] = postgres.start()
            self._write_state(state)
            state["services"]["redis"]["pid"] = redis.start()
            self._write_state(state)
            env = self.celery_environment(port, postgres, redis)
            self.airflow(["db", "migrate"], env)
            pool, slots = settings.POOL
            self.airflow(["pools", "set", pool, str(slots),
                          "DuckDB warehouse: one writer at a time"], env)
            for component in COMPONENTS:
                extra = ["--skip-serve-logs"] if component == "triggerer" else []
                state["pids"][component] = self._spawn(component, [component, *extra], env)
            self._write_state(state)
            for index in range(1, self.workers + 1):
                name = worker_name(index)
                pid_file = self.airflow_home / f"worker-{index}.pid"
                pid_file.unlink(missing_ok=True)
                state["pids"][f"worker-{index}"] = self._spawn(
                    f"worker-{index}",
                    ["celery", "worker", "--celery-hostname", name, "--pid", str(pid_file),
                     "--concurrency", str(self.concurrency()), "--skip-serve-logs"], env)
                state["workers"][f"worker-{index}"] = {"name": name, "pid_file": str(pid_file)}
            self._write_state(state)
            wait_healthy(state["api"], state["pids"], timeout)
            self.wait_workers(state, redis, timeout)
        except BaseException:
            self.down()
            raise
        return state

    def wait_workers(self, state: dict, redis: Redis, timeout: float) -> None:
        names = [w["name"] for w in state["workers"].values()]
        deadline = time.monotonic() + timeout
        answered: set[str] = set()
        while True:
            dead = [w for w in state["workers"] if not pid_alive(state["pids"][w])]
            if dead:
                raise RuntimeError(f"Celery worker(s) exited during start-up: {dead} "
                                   f"(logs in {self.log_dir})")
            answered = ping_workers(redis.url(), names)
            if answered == set(names):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Celery workers not answering after {timeout:.0f}s: "
                                   f"{sorted(set(names) - answered)}")
            time.sleep(1)

    def status(self) -> dict:
        """Executor, each component, each worker and each service, with its health."""
        state = self.read_state()
        if not state or state.get("executor") != EXECUTOR:
            return {"executor": EXECUTOR, "running": False}
        postgres, redis = self.services(state)
        api_health = health(state["api"]) or {}
        redis_ok = redis.ready()
        pings = ping_workers(redis.url(), [w["name"] for w in state["workers"].values()]) \
            if redis_ok else set()
        components = {
            c: {"pid": state["pids"][c], "alive": pid_alive(state["pids"][c]),
                "health": (api_health.get(c.replace("-", "_")) or {}).get("status")
                if c != "api-server" else ("healthy" if api_health else "unreachable")}
            for c in COMPONENTS}
        workers = {
            key: {"name": w["name"], "pid": state["pids"][key],
                  "alive": pid_alive(state["pids"][key]),
                  "health": "healthy" if w["name"] in pings else "no answer"}
            for key, w in state["workers"].items()}
        services = {
            "postgres": {"port": postgres.port, "pid": state["services"]["postgres"]["pid"],
                         "health": "healthy" if postgres.ready() else "not ready"},
            "redis": {"port": redis.port, "pid": state["services"]["redis"]["pid"],
                      "health": "healthy" if redis_ok else "no PONG"},
        }
        metadatabase = (api_health.get("metadatabase") or {}).get("status")
        healthy = (all(c["alive"] and c["health"] == "healthy" for c in components.values())
                   and all(w["alive"] and w["health"] == "healthy" for w in workers.values())
                   and all(s["health"] == "healthy" for s in services.values())
                   and all((api_health.get(c) or {}).get("status") == "healthy"
                           for c in HEALTH_COMPONENTS))
        return {"executor": EXECUTOR, "running": True, "healthy": healthy,
                "api": state["api"], "home": state["home"], "metadatabase": metadatabase,
                "components": components, "workers": workers, "services": services}

    def down(self, timeout: float = 60) -> list[str]:
        """Stop the workers and components (every process of their sessions, task
        processes included), then PostgreSQL and Redis."""
        state = self.read_state()
        if not state:
            return []
        leaders = list(state["pids"].values())
        stopped = [name for name, pid in state["pids"].items() if session_members(pid)]
        stop_sessions(leaders, timeout)
        services = state.get("services", {})
        if services.get("postgres", {}).get("port"):
            postgres, _ = self.services(state)
            if postgres.stop():
                stopped.append("postgres")
            if Redis.stop(services["redis"].get("pid", 0)):
                stopped.append("redis")
        self.pid_file.unlink(missing_ok=True)
        return stopped
