"""Crash safety: SIGKILL ingestion, the dbt build and publication at named points.

The task bodies (penstat.orchestration.tasks) run in child processes forked by a warm
runner process, the way Airflow's executors start task processes. A test-only
switch makes a child kill itself (SIGKILL: no cleanup, no `finally`) at a
named point:

- PENSTAT_TEST_KILL_AT=<point>[@n] for the points in penstat.core.faults.KILL_POINTS
  (ingestion, the build's bookkeeping, publication);
- inside dbt, a dbtRunner callback installed by this test's subprocess code
  kills the process when a given node starts or finishes (no hook in dbt's code).

After every kill the test checks that `published/current` is a complete
publication, that no delivery is half-loaded or lost, then restarts the task
(often with the next kill point). At the end the warehouse and the publication
equal those of an uninterrupted run over the same deliveries: same ledger, same
raw rows, same receipts, same marts, same mart checksums, same number of
publications; no delivery lost or counted twice. The uninterrupted reference
runs in its own process at the same time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from penstat.contract.layout import Paths
from penstat.core.faults import KILL_ENV, KILL_POINTS
from penstat.core.locations import REPO_ROOT
from penstat.orchestration import tasks
from penstat.publication.disclosure import ledger as disclosure_ledger
from penstat.publication.publish import MartsIncomplete, publish
from tests import builders as b
from tests.conftest import TEST_KEY
from tests.reliability import (
    V1_FEEDS,
    build_and_publish,
    check_publication,
    ingest_all,
    penstat_home,
    published_fingerprint,
    warehouse_state,
    write_baseline,
)

DBT_KILL_ENV = "PENSTAT_TEST_KILL_DBT"
# A pre-forking runner, the way Airflow's executors start task processes: it
# imports penstat, Great Expectations and dbt once, then forks one child process
# per task body. The child is the process that gets SIGKILLed; the runner
# reports how it ended. (Starting a fresh interpreter per run would cost ~6 s of
# imports each, for the same proof.)
RUNNER = f"""
import json, os, signal, sys, traceback
from penstat.orchestration import tasks
from penstat.publication.disclosure import ledger as disclosure_ledger
import penstat.validation.runner  # noqa: F401
import penstat.transform.dbt_runner as runner
from dbt.cli.main import dbtRunner

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(2, 1)  # dbt prints; stdout is the runner's channel
            os.environ.clear()
            os.environ.update(request["env"])
            spec = request["env"].get("{DBT_KILL_ENV}")
            if spec:  # test-only: die inside dbt when a node starts or finishes
                kind, _, prefix = spec.partition(":")

                class KillingRunner(dbtRunner):
                    def __init__(self, *args, **kwargs):
                        def callback(event):
                            if event.info.name == kind and \\
                                    event.data.node_info.unique_id.startswith(prefix):
                                os.kill(os.getpid(), signal.SIGKILL)
                        super().__init__(callbacks=[callback])

                runner.dbtRunner = KillingRunner
            what, args = request["what"], request["args"]
            if what == "ingest":
                result = [o for feed in args for o in tasks.ingest(feed)]
            elif what == "build":
                result = tasks.build_marts()
            else:
                result = tasks.gate_and_publish()
            with open(request["out"], "w") as fh:
                json.dump(result, fh)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({{"pid": pid,
                      "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                      "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}}),
          flush=True)
"""
# The uninterrupted reference runs in its own process, alongside the crash run.
REFERENCE = """
import json, sys
from pathlib import Path
from tests.integration.test_crash_safety import reference_run
print(json.dumps(reference_run(Path(sys.argv[1])), default=str))
"""


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PENSTAT_HOME": str(home), "PENSTAT_PSEUDONYM_KEY": TEST_KEY,
           "GX_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop(KILL_ENV, None)
    env.pop(DBT_KILL_ENV, None)
    return env


def phase_two(paths: Paths) -> None:
    """A new day, a correction, a new month of staffing, a resend and a broken delivery."""
    b.occupancy(paths.inbox, delivery_id="occ-2", rows=b.occupancy_rows("2024-01-02"))
    fixed = b.occupancy_rows()
    fixed[2] = fixed[2].replace(",100,", ",101,")
    b.occupancy(paths.inbox, delivery_id="occ-fix", rows=fixed, replaces="occ-base")
    bad = b.occupancy_rows("2024-01-03")
    bad[0] = bad[0].replace(",310,", ",-310,")
    b.occupancy(paths.inbox, delivery_id="occ-bad", rows=bad)
    b.staffing(paths.inbox, delivery_id="stf-2",
               rows=["TS-0001,2024-02,custodial,119,124,4.5,100"],
               period=("2024-02-01", "2024-02-29"))
    b.staffing(paths.inbox, delivery_id="stf-1-again")  # byte-identical to stf-1


class Crasher:
    """Runs task bodies in forked child processes of one PENSTAT_HOME; records the kills."""

    def __init__(self, paths: Paths, scratch: Path):
        self.paths, self.scratch = paths, scratch
        self.kills: list[str] = []
        self.killed_pids: list[int] = []
        self.written: set[str] = set()
        self.log = open(scratch / "runner.log", "w")  # noqa: SIM115 - closed in close()
        self.runner = subprocess.Popen([sys.executable, "-c", RUNNER], env=_env(paths.home),
                                       cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.n = 0

    def close(self) -> None:
        if self.runner.poll() is None:
            self.runner.stdin.close()
            try:
                self.runner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.runner.kill()
                self.runner.wait()
        self.log.close()

    def run(self, what: str, *args: str, kill: str | None = None,
            dbt_kill: str | None = None) -> list | dict | None:
        self.n += 1
        out = self.scratch / f"result-{self.n}.json"
        env = _env(self.paths.home)
        if kill:
            env[KILL_ENV] = kill
        if dbt_kill:
            env[DBT_KILL_ENV] = dbt_kill
        self.runner.stdin.write(json.dumps({"what": what, "args": list(args), "env": env,
                                            "out": str(out)}) + "\n")
        self.runner.stdin.flush()
        line = self.runner.stdout.readline()
        assert line, f"the runner died: {(self.scratch / 'runner.log').read_text()[-3000:]}"
        ended = json.loads(line)
        if kill or dbt_kill:
            self.killed_pids.append(ended["pid"])
            assert ended["signal"] == signal.SIGKILL, (kill, dbt_kill, ended, self.tail())
            self.kills.append(kill or f"dbt {dbt_kill}")
            self.check_invariants()
            return None
        assert ended["code"] == 0, (what, ended, self.tail())
        self.check_invariants()
        return json.loads(out.read_text())

    def tail(self) -> str:
        self.log.flush()
        return (self.scratch / "runner.log").read_text()[-3000:]

    def note_written(self) -> None:
        self.written |= {f"{p.parent.name}/{p.name}" for p in self.paths.inbox.glob("*/*")
                         if p.is_dir()}

    def check_invariants(self) -> None:
        """What must hold at every instant, killed or not."""
        paths = self.paths
        if paths.current_publication.exists() or paths.current_publication.is_symlink():
            check_publication(paths.current_publication)
        # every delivery is in exactly one place: not lost, not duplicated
        for delivery in self.written:
            feed, name = delivery.split("/")
            places = [p for p in (paths.inbox, paths.archive, paths.quarantine)
                      if (p / feed / name).is_dir()]
            assert len(places) == 1, (delivery, places)
        if not paths.warehouse.exists():
            return
        con = duckdb.connect(str(paths.warehouse), read_only=True)
        try:
            ledger = dict(con.execute(
                "SELECT feed || '/' || delivery_id, rows_loaded FROM meta.deliveries").fetchall())
            for feed in V1_FEEDS:
                from penstat.contract.feeds import FEEDS, raw_table_name

                for spec in FEEDS[feed].files:
                    for delivery_id, n in con.execute(
                            f"SELECT _delivery_id, count(*) FROM "
                            f"{raw_table_name(feed, spec.stem)} GROUP BY 1").fetchall():
                        assert f"{feed}/{delivery_id}" in ledger, "raw rows without ledger row"
                        assert n <= ledger[f"{feed}/{delivery_id}"]
            for delivery, rows in ledger.items():
                feed, delivery_id = delivery.split("/")
                loaded = sum(con.execute(
                    f"SELECT count(*) FROM {raw_table_name(feed, s.stem)} "
                    f"WHERE _delivery_id = ?", [delivery_id]).fetchone()[0]
                    for s in FEEDS[feed].files)
                assert loaded == rows, f"{delivery} half loaded ({loaded} of {rows} rows)"
        finally:
            con.close()


def disclosure_cells(paths: Paths) -> dict[str, list]:
    """The disclosure ledger: every cell key published with its last value (and,
    withheld, its value then), and every superseded state (key, value, value withheld),
    in key order. The vintage numbers are left out: a rerun may merge the same cells
    once more."""
    path = disclosure_ledger.ledger_path(paths)
    if not path.is_file():
        return {}
    rows = duckdb.sql(f"SELECT key, value, withheld_value, until IS NULL FROM "
                      f"read_parquet('{path}') ORDER BY ALL").fetchall()
    return {"current": [[k, v, w] for k, v, w, current in rows if current],
            "superseded": [[k, v, w] for k, v, w, current in rows if not current]}


def reference_run(home: Path) -> dict:
    """The same deliveries, in the same order, with no crash (in its own process)."""
    with penstat_home(home) as paths:
        write_baseline(paths)
        ingest_all()
        build_and_publish()
        phase_two(paths)
        ingest_all(("occupancy", "staffing"))
        build_and_publish()
        return {"state": warehouse_state(paths.warehouse),
                "disclosure_ledger": disclosure_cells(paths),
                "manifest": check_publication(paths.current_publication),
                "versions": len([p for p in paths.published.iterdir()
                                 if not p.name.startswith(".") and p.name != "current"])}


def _plain(value):
    """As the reference's JSON has it (dates and tuples become strings and lists)."""
    return json.loads(json.dumps(value, default=str))


def test_killed_at_every_point_the_pipeline_converges_to_the_uninterrupted_state(tmp_path):
    reference_log = open(tmp_path / "reference.log", "w")  # noqa: SIM115 - closed below
    reference = subprocess.Popen([sys.executable, "-c", REFERENCE, str(tmp_path / "ref")],
                                 env=_env(tmp_path / "ref"), cwd=REPO_ROOT,
                                 stdout=subprocess.PIPE, stderr=reference_log, text=True)
    scratch = tmp_path / "runs"
    scratch.mkdir()
    crash = None
    try:
        with penstat_home(tmp_path / "home") as paths:
            crash = Crasher(paths, scratch)
            _crash_and_restart(crash, paths)
            state = warehouse_state(paths.warehouse)
            published_cells = disclosure_cells(paths)
            manifest = check_publication(paths.current_publication)
            versions = [p for p in paths.published.iterdir() if p.name != "current"]
        out, _ = reference.communicate(timeout=600)
    finally:
        if crash:
            crash.close()
        if reference.poll() is None:
            reference.kill()
            reference.wait()
        reference_log.close()
    assert reference.returncode == 0, (tmp_path / "reference.log").read_text()[-3000:]
    uninterrupted = json.loads(out.strip().splitlines()[-1])

    for part in ("ledger", "order", "raw", "receipts", "marts"):
        assert _plain(state[part]) == uninterrupted["state"][part], part
    assert published_cells == uninterrupted["disclosure_ledger"], \
        "the disclosure ledger knows every publication that became current"
    assert manifest["marts"] == uninterrupted["manifest"]["marts"], "same mart checksums"
    assert manifest["deliveries"] == uninterrupted["manifest"]["deliveries"]
    assert len(versions) == uninterrupted["versions"], \
        f"no hidden leftovers, nothing published twice: {[p.name for p in versions]}"
    points = {k.split("@")[0] for k in crash.kills if not k.startswith("dbt ")}
    # ingest.decoding needs a non-UTF-8 file: tests/integration/test_hostile_kill_decode.py
    assert points == set(KILL_POINTS) - {"ingest.decoding"}, set(KILL_POINTS) - points
    assert len(crash.kills) == 14
    assert (paths.quarantine / "occupancy" / "occ-bad" / "_REJECTED.json").is_file()
    leftovers = [p for pid in crash.killed_pids
                 for p in paths.work.glob(f"ingest-{pid}-*")]
    assert leftovers == [], "the private scratch of killed runs is removed by the next run"


def _crash_and_restart(crash: Crasher, paths: Paths) -> None:
    """Every kill point, each followed by a restart (often with the next kill)."""
    write_baseline(paths)
    crash.note_written()

    # --- ingestion of the register, killed at each stage of one delivery
    crash.run("ingest", "facility_register", kill="ingest.checked")
    crash.run("ingest", "facility_register", kill="ingest.loading")
    crash.run("ingest", "facility_register", kill="ingest.committed")
    [reg] = crash.run("ingest", "facility_register")
    assert (reg["delivery_id"], reg["outcome"]) == ("reg-1", "loaded"), \
        "the committed delivery is archived and announced, not loaded again"
    crash.run("ingest", "occupancy", "staffing", "recidivism")

    # --- the dbt build, killed before dbt, inside dbt twice, and after dbt
    crash.run("build", kill="build.started")
    crash.run("build", dbt_kill="NodeFinished:model.penstat.int_")
    with pytest.raises(MartsIncomplete):
        publish(paths)  # the marts of an interrupted build are never published
    assert not paths.current_publication.exists()
    crash.run("build", dbt_kill="NodeFinished:model.penstat.mart_")
    crash.run("build", kill="build.finished")
    crash.run("build")

    # --- publication, killed at each step before `current` switches
    crash.run("publish", kill="publish.staged")
    crash.run("publish", kill="publish.gated")
    crash.run("publish", kill="publish.renamed")
    assert not paths.current_publication.exists(), "nothing is current before the switch"
    first = crash.run("publish")
    assert not first["unchanged"]
    assert check_publication(paths.current_publication)["version"] == first["version"]

    # --- phase two: a quarantine and a load killed half-way, then build and publish
    phase_two(paths)
    crash.note_written()
    crash.run("ingest", "occupancy", kill="ingest.quarantining")
    assert (paths.inbox / "occupancy" / "occ-bad" / "_REJECTED.json").is_file()
    crash.run("ingest", "occupancy")
    crash.run("ingest", "staffing", kill="ingest.committed")
    done = crash.run("ingest", "staffing")
    assert {(o["delivery_id"], o["outcome"]) for o in done} == {
        ("stf-2", "loaded"), ("stf-1-again", "resend_ignored")}
    crash.run("build")
    before = published_fingerprint(paths)
    crash.run("publish", kill="publish.linked")
    assert published_fingerprint(paths) == before, "current untouched until the rename"
    crash.run("publish", kill="publish.switched")
    assert published_fingerprint(paths) != before, "published, the ledger not yet merged"
    assert list(disclosure_ledger.folder(paths).glob("pending-*.parquet")), "promised cells"
    again = crash.run("publish")
    assert again["unchanged"]
    assert not list(disclosure_ledger.folder(paths).glob("pending-*.parquet")), \
        "the dead publisher's cells are merged by the next one"


def test_a_publication_lists_only_the_deliveries_its_build_saw(tmp_path):
    """A delivery ingested between the build and the publication is not claimed."""
    with penstat_home(tmp_path / "home") as paths:
        write_baseline(paths)
        ingest_all()
        tasks.build_marts()
        b.occupancy(paths.inbox, delivery_id="occ-2", rows=b.occupancy_rows("2024-01-02"))
        assert [o["outcome"] for o in tasks.ingest("occupancy")] == ["loaded"]
        manifest = tasks.gate_and_publish()
        published = check_publication(paths.current_publication)
        assert "occupancy/occ-2" not in published["deliveries"]
        assert published["marts"] == manifest["marts"]
        # the next ingest run (of any kind) still announces occ-2 for a build
        assert [(o["delivery_id"], o["outcome"]) for o in tasks.ingest("occupancy")] == \
            [("occ-2", "awaiting_build")]


def test_leftovers_of_a_dead_publisher_are_cleaned_and_a_live_ones_kept(tmp_path):
    from penstat.publication.publish import clean_stale

    with penstat_home(tmp_path / "home") as paths:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        (paths.published / f".draft-{dead}-abc").mkdir()
        (paths.published / f".draft-{dead}-abc" / "published.duckdb").write_bytes(b"x")
        os.symlink("nowhere", paths.published / f".current-{dead}-abc")
        alive = paths.published / f".draft-{os.getppid()}-abc"
        alive.mkdir()
        removed = clean_stale(paths)
        assert sorted(removed) == sorted([f".draft-{dead}-abc", f".current-{dead}-abc"])
        assert alive.is_dir()


def test_every_kill_point_is_reached_by_the_code():
    """The points the crash test kills at exist in the code (no silent no-op)."""
    sources = "".join(p.read_text() for p in (REPO_ROOT / "penstat").rglob("*.py"))
    for point in KILL_POINTS:
        assert f'kill_point("{point}")' in sources, point
    assert Path(REPO_ROOT / "penstat" / "core" / "faults.py").read_text().count("SIGKILL") >= 1
