"""The local Airflow stack on the embedded default: SQLite metadata, LocalExecutor.

`up` prepares $PENSTAT_HOME/airflow (config through environment variables,
metadata DB migrated, the one-slot warehouse pool), starts the api-server,
scheduler, dag-processor and triggerer as background processes in their own
process groups, records their PIDs, and returns once the api-server reports
every component healthy. `down` stops exactly the processes `up` recorded.

Who can reach it: the api-server (UI, REST API, and the execution API the task
processes call) listens on 127.0.0.1 only (API_HOST), whatever the environment
says, and the stack runs with SIMPLE_AUTH_MANAGER_ALL_ADMINS: there is no login,
every request is an admin's. That is the trade-off of a single-user stack on one
machine (SECURITY.md): anyone who can open a connection to 127.0.0.1 on this
machine, that is any local user or process, can trigger and read DAG runs. For a
shared machine or any network exposure use the compose deployment (logins, TLS
behind a reverse proxy). $PENSTAT_HOME/airflow (the SQLite metadata database,
airflow.cfg with the generated API secrets, the PID file) is owner-only (0700).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from penstat.contract.layout import Paths
from penstat.core.config import CONFIG_ENV, OVERLAYS_ENV
from penstat.core.lineage import airflow_environment as airflow_lineage_environment
from penstat.core.locations import REPO_ROOT
from penstat.core.processes import pid_alive
from penstat.orchestration.assets import WAREHOUSE_POOL
from penstat.orchestration.services.sessions import session_members, stop_sessions

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# The only interface the api-server listens on (see the module docstring).
API_HOST = "127.0.0.1"
AIRFLOW_HOME_MODE = 0o700
# airflow_local_settings.py: preloads the task code in the scheduler (see its docstring)
AIRFLOW_SETTINGS = Path(__file__).resolve().parent / "airflow_settings"
# the scheduler's sleep when a loop found nothing to do (see `environment`)
IDLE_SLEEP_ENV = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
IDLE_SLEEP_SECONDS = "0.25"
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


@dataclass(frozen=True)
class Stack:
    paths: Paths

    @property
    def airflow_home(self) -> Path:
        return self.paths.home / "airflow"

    @property
    def pid_file(self) -> Path:
        return self.airflow_home / "penstat-stack.json"

    @property
    def log_dir(self) -> Path:
        return self.paths.logs / "airflow-components"

    def environment(self, port: int) -> dict[str, str]:
        """Airflow configuration for this PENSTAT_HOME, as environment variables."""
        bin_dir = str(Path(sys.executable).parent)
        env = dict(os.environ)
        env.update({
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),  # components start `airflow`
            "PENSTAT_HOME": str(self.paths.home),
            # the components run in other folders: configuration files by absolute path
            **{name: os.pathsep.join(str(Path(p).resolve()) for p in env[name].split(os.pathsep)
                                     if p)
               for name in (CONFIG_ENV, OVERLAYS_ENV) if env.get(name)},
            "AIRFLOW_HOME": str(self.airflow_home),
            # the checkout (task code) and airflow_local_settings (preloads it in the
            # scheduler, so forked task processes start with it imported)
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(AIRFLOW_SETTINGS),
                                           env.get("PYTHONPATH", "")]),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{API_HOST}:{port}/execution/",
            # no login on a loopback-only, single-user stack (module docstring, SECURITY.md)
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                f"sqlite:///{self.airflow_home / 'airflow.db'}",
            "AIRFLOW__API__HOST": API_HOST,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://{API_HOST}:{port}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.paths.logs / "airflow"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # an idle scheduler loop sleeps this long (Airflow's default 1 s): each hop of a
            # delivery (asset event -> DAG run, task -> next task) waits about half of it;
            # an operator's own setting wins (docs/operations.md "Day to day")
            IDLE_SLEEP_ENV: env.get(IDLE_SLEEP_ENV, IDLE_SLEEP_SECONDS),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "GX_ANALYTICS_ENABLED": "False",
            "NO_PROXY": "*",
            # OpenLineage events of every task run, to $PENSTAT_HOME/lineage/airflow/
            **airflow_lineage_environment(self.paths.lineage),
        })
        return env

    def running(self) -> dict | None:
        """The recorded state if every recorded process is still alive, else None."""
        state = self.read_state()
        if state and all(pid_alive(pid) for pid in state["pids"].values()):
            return state
        return None

    def read_state(self) -> dict | None:
        if not self.pid_file.is_file():
            return None
        return json.loads(self.pid_file.read_text())

    def airflow(self, args: list[str], env: dict[str, str], timeout: float = 600) -> None:
        subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env,
                       check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def up(self, port: int | None = None, timeout: float = 300) -> dict:
        state = self.running()
        if state:
            return state
        if self.read_state():
            self.down()
        self.paths.ensure()
        self.airflow_home.mkdir(mode=AIRFLOW_HOME_MODE, parents=True, exist_ok=True)
        os.chmod(self.airflow_home, AIRFLOW_HOME_MODE)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # OpenLineage's file transport appends to its file but does not create folders
        (self.paths.lineage / "airflow").mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        env = self.environment(port)
        self.airflow(["db", "migrate"], env)
        self.airflow(["pools", "set", WAREHOUSE_POOL, "1",
                      "DuckDB warehouse: one writer at a time"], env)
        pids = {}
        for component in COMPONENTS:
            log = open(self.log_dir / f"{component}.log", "ab")  # noqa: SIM115 (kept by child)
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "airflow"), component],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=str(self.airflow_home))
            log.close()
            pids[component] = proc.pid
        state = {"port": port, "pids": pids, "home": str(self.paths.home),
                 "api": f"http://{API_HOST}:{port}", "listens_on": API_HOST}
        self.pid_file.write_text(json.dumps(state, indent=2))
        try:
            wait_healthy(state["api"], pids, timeout)
        except Exception:
            self.down()
            raise
        return state

    def down(self, timeout: float = 60) -> list[str]:
        """Stop every process of the recorded components' sessions: SIGTERM, then SIGKILL
        what is left at `timeout`. Sessions, not process groups: Airflow puts each task
        process in a process group of its own, which stopping the scheduler's group
        would leave running (penstat.orchestration.services.sessions)."""
        state = self.read_state()
        if not state:
            return []
        stopped = [c for c, pid in state["pids"].items() if session_members(pid)]
        stop_sessions(list(state["pids"].values()), timeout)
        self.pid_file.unlink(missing_ok=True)
        return stopped


def free_port() -> int:
    with socket.socket() as s:
        s.bind((API_HOST, 0))
        return s.getsockname()[1]


def post_json(url: str, body: dict) -> dict:
    """POST a JSON body to the api-server and parse the reply. The local stack needs no
    token (SIMPLE_AUTH_MANAGER_ALL_ADMINS on 127.0.0.1 only: see the module docstring)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def health(api: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{api}/api/v2/monitor/health", timeout=5) as resp:
            return json.loads(resp.read())
    except Exception:
        return None


def wait_healthy(api: str, pids: dict[str, int], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        dead = [c for c, pid in pids.items() if not pid_alive(pid)]
        if dead:
            raise RuntimeError(f"Airflow component(s) exited during start-up: {dead}")
        last = health(api)
        if last and all((last.get(c) or {}).get("status") == "healthy"
                        for c in HEALTH_COMPONENTS):
            return last
        time.sleep(1)
    raise TimeoutError(f"Airflow did not become healthy within {timeout:.0f}s: {last}")
