"""End to end through the Celery stack: PostgreSQL, Redis, two Celery workers.

`CeleryStack` (what `PENSTAT_EXECUTOR=celery PENSTAT_WORKERS=2 make up` starts)
runs in a fresh PENSTAT_HOME. A full synthetic delivery set is dropped into the
inbox; while the first `dbt_build` is in the middle of its models, the worker
running it is killed with SIGKILL, with every process of it (the worker, its
pool, the task process): a lost machine. Then:

- the killed attempt is failed by the scheduler (task heartbeat timeout) and the
  task retried (dag_defaults.retry_policy) on the worker still alive, and the
  publication holds every delivery, mart for mart identical (row counts and
  checksums) to the in-process publication of the same deliveries;
- no two attempts of tasks in the one-slot `penstat_warehouse` pool ever ran at
  once (every try's start and end, from the REST API);
- `status` shows each part; `down` leaves no process of the stack running.

Needs Debian's `postgresql` and `redis-server` (installed by `up` when root, as in
CI) and requirements-celery.lock (`make test` installs it). Waits on conditions,
never fixed sleeps; the stack is stopped even when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from penstat.contract.layout import Paths
from penstat.core.processes import pid_alive
from penstat.orchestration.assets import WAREHOUSE_POOL
from penstat.orchestration.celery_settings import HEARTBEAT_TIMEOUT_ENV
from penstat.orchestration.celery_stack import (
    CeleryStack,
    MissingCeleryDependencies,
    check_python_dependencies,
)
from penstat.orchestration.services.accounts import is_root
from penstat.orchestration.services.debian import missing_packages
from penstat.orchestration.services.sessions import session_members, signal_session
from penstat.orchestration.waiting import active_dag_runs, publication_with, wait_until
from penstat.publication.publish import current_manifest
from penstat.senders.synthetic import generate
from tests.conftest import TEST_KEY
from tests.e2e.conftest import SCALE, SEED
from tests.reliability import publication_differences

pytestmark = [pytest.mark.e2e, pytest.mark.celery]
TIMEOUT = 1500
DBT_START = re.compile(r"\b(\d+) of (\d+) START\b")


def _precondition() -> None:
    if missing_packages() and not is_root():
        pytest.skip(f"Debian package(s) {', '.join(missing_packages())} missing and not "
                    "root to install them (CI runs as root and has them)")
    try:
        check_python_dependencies()
    except MissingCeleryDependencies as exc:
        pytest.fail(f"{exc} (`make test` installs it)")


def api_get(api: str, path: str) -> dict:
    with urllib.request.urlopen(f"{api}/api/v2/{path}", timeout=30) as resp:
        return json.loads(resp.read())


def stack_processes(stack: CeleryStack, state: dict) -> list[int]:
    """Every live process of the stack: its process groups, PostgreSQL, Redis."""
    found = [pid for leader in state["pids"].values() for pid in session_members(leader)]
    postmaster = stack.services(state)[0].pid()
    found += [pid for pid in (postmaster, state["services"]["redis"]["pid"]) if pid]
    return [pid for pid in found if pid_alive(pid)]


# The test waits for a lost worker's attempt to time out and be retried: shorter than
# in production, still well above a task's heartbeat interval of a few seconds.
HEARTBEAT_TIMEOUT_SECONDS = "30"
RETRY_OVERLAY = "[operations]\nretry_delay_seconds = 5\n"


@pytest.fixture(scope="module")
def celery(tmp_path_factory, run_day):
    _precondition()
    # PostgreSQL runs as the `postgres` user when we are root: its folders must be
    # reachable, which pytest's owner-only tmp folders are not.
    root = Path(tempfile.mkdtemp(prefix="penstat-celery-e2e-"))
    os.chmod(root, 0o711)
    mp = pytest.MonkeyPatch()
    mp.setenv("PENSTAT_HOME", str(root / "home"))
    mp.setenv("PENSTAT_PSEUDONYM_KEY", TEST_KEY)
    overlay = root / "retry.toml"
    overlay.write_text(RETRY_OVERLAY)
    mp.setenv("PENSTAT_CONFIG_OVERLAYS", str(overlay))
    mp.setenv(HEARTBEAT_TIMEOUT_ENV, HEARTBEAT_TIMEOUT_SECONDS)
    paths = Paths.from_env()
    paths.ensure()
    stack = CeleryStack(paths, workers=2)
    state: dict = {}
    try:
        state.update(stack.up(timeout=900))
        yield paths, stack, state
    finally:
        leftovers_before = stack_processes(stack, state) if state else []
        stack.down()
        left = [pid for pid in leftovers_before if pid_alive(pid)]
        mp.undo()
        shutil.rmtree(root, ignore_errors=True)
        assert stack.read_state() is None
        assert left == [], f"processes of the stack still running after down: {left}"


def running_dbt_build(api: str) -> dict | None:
    found = api_get(api, "dags/penstat_build/dagRuns/~/taskInstances"
                         "?task_id=dbt_build&state=running")["task_instances"]
    return found[0] if found else None


def worker_running(stack_state: dict, ti_id: str) -> str | None:
    """The worker (key) whose process group holds the task process of `ti_id`."""
    title = f"airflow worker -- {ti_id}".encode()
    leaders = {pid: key for key, pid in stack_state["pids"].items() if key.startswith("worker")}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes().startswith(title):
                return leaders.get(os.getsid(int(entry.name)))
        except OSError:
            continue
    return None


def dbt_in_the_middle(log: Path, offset: int) -> bool:
    """dbt has started at least 3 nodes past `offset` and has more than 3 left."""
    if not log.is_file():
        return False
    with open(log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    starts = [(int(a), int(b)) for a, b in DBT_START.findall(text)]
    return any(3 <= i <= total - 3 for i, total in starts)


def tries(api: str, ti: dict) -> list[dict]:
    return api_get(api, f"dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/"
                        f"{ti['task_id']}/tries")["task_instances"]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


KILLED: dict = {}
PUBLISHED: dict = {}


def test_two_workers_healthy_and_nothing_listens_beyond_loopback(celery):
    _, stack, state = celery

    def healthy() -> dict | None:  # a loaded machine may miss one heartbeat: wait on it
        status = stack.status()
        return status if status["healthy"] else None

    status = wait_until(healthy, 180, "every part of the stack healthy",
                        on_timeout=lambda: json.dumps(stack.status()))
    assert len(status["workers"]) == 2
    assert {w["name"] for w in status["workers"].values()} == {
        w["name"] for w in state["workers"].values()}
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    ours = set(stack_processes(stack, state))
    exposed = [line for line in out.splitlines()
               if any(f"pid={pid}," in line for pid in ours)
               and not line.split()[3].startswith("127.0.0.1:")]
    assert exposed == []


def test_a_worker_killed_in_dbt_build_loses_nothing(celery, run_day):
    paths, stack, state = celery
    api = state["api"]
    folders = [Path(f) for f in generate(paths.inbox, scale=SCALE, seed=SEED, split="year",
                                         until=run_day.until)]
    dbt_log = paths.logs / "dbt" / "dbt.log"
    ti = wait_until(lambda: running_dbt_build(api), TIMEOUT, "a dbt_build to run",
                    interval=0.5)
    offset = dbt_log.stat().st_size if dbt_log.is_file() else 0
    victim = wait_until(lambda: worker_running(state, ti["id"]), 300,
                        "the worker running dbt_build", interval=0.5)
    wait_until(lambda: dbt_in_the_middle(dbt_log, offset), 600, "dbt in mid-build",
               interval=0.2)
    # the machine is lost: the worker and every process it started (the task
    # processes are in process groups of their own, in the worker's session)
    signal_session(state["pids"][victim], signal.SIGKILL)
    wait_until(lambda: not session_members(state["pids"][victim]), 60,
               "every process of the worker to die")
    KILLED.update(ti=ti, worker=victim)

    deliveries = [f"{f.parent.name}/{f.name}" for f in folders]
    manifest = publication_with(paths, deliveries, timeout=TIMEOUT)
    PUBLISHED.update(manifest)
    assert manifest["validation"]["success"] is True

    attempts = {t["try_number"]: t for t in tries(api, ti)}
    killed = attempts[ti["try_number"]]
    assert killed["state"] == "failed", killed  # the lost attempt, failed by the scheduler
    retried = [t for n, t in attempts.items() if n > ti["try_number"]]
    assert [t["state"] for t in retried][-1:] == ["success"], attempts
    # each try has its own id: the last one ran on the worker still alive
    last = api_get(api, f"dags/penstat_build/dagRuns/{ti['dag_run_id']}/taskInstances/"
                        "dbt_build")
    assert last["state"] == "success" and last["id"] != ti["id"]
    survivor = next(key for key in state["workers"] if key != victim)
    worker_log = (stack.log_dir / f"{survivor}.log").read_text(errors="replace")
    assert last["id"] in worker_log, "the retry ran on the worker still alive"
    wait_until(lambda: active_dag_runs(api) == 0, TIMEOUT, "the pipeline to be idle")
    runs = api_get(api, "dags/penstat_build/dagRuns?limit=100")["dag_runs"]
    # past midnight check_delivery_status may fail a run, for a feed truly late now
    expected = {"success"} if run_day.still_today() else {"success", "failed"}
    assert {r["state"] for r in runs} <= expected, [(r["dag_run_id"], r["state"])
                                                    for r in runs]


def test_the_publication_equals_the_in_process_one(celery, run_day, in_process_publication):
    """The same deliveries through `penstat ingest all / build / publish` in one process."""
    assert PUBLISHED, "the Celery publication of the previous test"
    in_process = in_process_publication(run_day.until)
    if run_day.still_today():  # nothing is late: every step exits 0
        assert in_process.codes == {"ingest": 0, "build": 0, "publish": 0}
    home = in_process.paths.home
    reference = current_manifest(Paths(home))
    assert sorted(PUBLISHED["deliveries"]) == sorted(reference["deliveries"])
    assert {m: v["rows"] for m, v in PUBLISHED["marts"].items()} == \
        {m: v["rows"] for m, v in reference["marts"].items()}
    # every value published by both is equal (disclosure control may withhold other
    # cells in a home with another history: tests/reliability.publication_differences)
    assert publication_differences(Paths(home).current_publication,
                                   celery[0].published / PUBLISHED["version"]) == []


def test_the_warehouse_pool_never_ran_two_writers_at_once(celery):
    _, _, state = celery
    api = state["api"]
    tis = api_get(api, f"dags/~/dagRuns/~/taskInstances?pool={WAREHOUSE_POOL}"
                       "&limit=1000")["task_instances"]
    attempts = [t for ti in tis for t in (tries(api, ti) if ti["try_number"] > 1 else [ti])
                if t["start_date"]]
    assert len(attempts) >= 5, "ingests and builds ran in the pool"
    assert all(t["end_date"] for t in attempts), "every attempt has ended"
    spans = sorted((_when(t["start_date"]), _when(t["end_date"]),
                    f"{t['dag_id']}.{t['task_id']}#{t['try_number']}") for t in attempts)
    overlaps, latest = [], spans[0]
    for span in spans[1:]:
        if span[0] < latest[1]:
            overlaps.append((latest[2], span[2]))
        latest = max(latest, span, key=lambda s: s[1])
    assert overlaps == []
    assert KILLED, "the killed attempt is among them"
    assert any(s[2] == f"penstat_build.dbt_build#{KILLED['ti']['try_number']}" for s in spans)
