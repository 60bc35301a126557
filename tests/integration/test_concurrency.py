"""Concurrency: many deliveries on all feeds at once, readers on `published/current` throughout.

Processes stand in for Airflow's: one ingest worker per feed (the four ingest
DAGs), one build-and-publish worker (the build and publish DAGs), forked from a
launcher that did the heavy imports once, each calling the task bodies of
penstat.orchestration.tasks, and each holding a file lock for the
duration of a task body, the way the one-slot pool `penstat_warehouse`
serialises writers. While several senders drop deliveries on every feed at the
same moment, reader processes open `published/current` in a loop, the way a
dashboard does (resolve `current` once, then read that version), and check every
read against the publication's manifest.

It passes when no process failed (no lock error anywhere), no reader ever saw a
partial or inconsistent publication, and every delivery was processed exactly
once (one ledger row and one receipt each; resends acknowledged once; every
folder archived; the final publication lists them all).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from penstat.contract.layout import Paths
from penstat.core.locations import REPO_ROOT
from penstat.orchestration.waiting import wait_until
from penstat.publication.publish import current_manifest
from tests import builders as b
from tests.conftest import TEST_KEY
from tests.reliability import V1_FEEDS, check_publication, penstat_home, write_baseline

READERS = 2
TIMEOUT = 420

WORKERS = (*V1_FEEDS, "publisher")
# One process per worker, forked from a launcher that imported penstat, Great
# Expectations and dbt once (the way Airflow's executors start task processes).
LAUNCHER = """
import fcntl, json, os, sys, time, traceback
from contextlib import contextmanager
from pathlib import Path
import penstat.validation.runner  # noqa: F401
import penstat.transform.dbt_runner  # noqa: F401
from penstat.ingestion.pipeline import pending_folders
from penstat.contract.layout import Paths
from penstat.orchestration import tasks

paths = Paths.from_env()
control, logs = Path(os.environ["CONTROL"]), Path(sys.argv[1])
stop, dirty = control / "stop", control / "dirty"

@contextmanager
def pool():  # the one-slot pool: one task body at a time touches the warehouse
    with open(control / "pool.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

def work(role):
    while True:
        if role == "publisher":
            if dirty.exists():
                dirty.unlink()  # the raw asset event is consumed by this build
                with pool():
                    tasks.build_marts()
                with pool():
                    version = tasks.gate_and_publish()["version"]
                print(json.dumps({"published": version}), flush=True)
            elif stop.exists():
                return
        elif pending_folders(paths, role):
            with pool():
                outcomes = tasks.ingest(role)
            print(json.dumps(outcomes), flush=True)
            if tasks.loaded_any(outcomes):
                dirty.touch()
        elif stop.exists():
            return
        time.sleep(0.05)

children = {}
for role in sys.argv[2:]:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd, name in ((1, f"{role}.out"), (2, f"{role}.err")):
                os.dup2(os.open(logs / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            work(role)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    children[pid] = role
failed = []
for _ in children:
    pid, status = os.wait()
    if status != 0:
        failed.append(children[pid])
print(json.dumps({"failed": failed}), flush=True)
sys.exit(1 if failed else 0)
"""

READER = """
import hashlib, json, os, sys, time
from pathlib import Path
import duckdb

current = Path(sys.argv[1])
stop = Path(os.environ["CONTROL"]) / "stop"
reads, failures, versions = 0, [], set()
while not stop.exists():
    if not os.path.lexists(current):  # nothing published yet
        time.sleep(0.1)
        continue
    version = os.path.realpath(current)  # resolve once: then read that version only
    try:
        manifest = json.loads(Path(version, "manifest.json").read_text())
        con = duckdb.connect(str(Path(version, "published.duckdb")), read_only=True)
        try:
            for mart, info in manifest["marts"].items():
                rows = con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
                if rows != info["rows"]:
                    failures.append(f"{version}: {mart} has {rows} rows, manifest {info}")
                data = Path(version, mart + ".parquet").read_bytes()
                if hashlib.sha256(data).hexdigest() != info["sha256"]:
                    failures.append(f"{version}: {mart}.parquet checksum differs")
            population = con.execute(
                "SELECT sum(population) FROM marts.mart_facility_daily").fetchone()[0]
        finally:
            con.close()
        if Path(version).name != manifest["version"] or not manifest["validation"]["success"]:
            failures.append(f"{version}: manifest says {manifest['version']}")
        reads += 1
        versions.add(manifest["version"])
        # Tell the test which version this reader has read, so it stops readers only
        # after each has read the final publication (a condition, not a sleep).
        seen_file = Path(os.environ["CONTROL"]) / f"seen-{os.getpid()}"
        seen_file.with_suffix(".tmp").write_text(manifest["version"])
        seen_file.with_suffix(".tmp").replace(seen_file)
    except Exception as exc:  # noqa: BLE001 - every failure is reported
        failures.append(f"{version}: {type(exc).__name__}: {exc}")
    time.sleep(0.1)  # a busy dashboard, not a busy loop starving the 2-core test machine
print(json.dumps({"reads": reads, "failures": failures[:20], "versions": sorted(versions)}))
"""


def deliveries(inbox: Path) -> dict[str, list]:
    """Per feed, the writers of the deliveries that arrive at once (one thread per feed)."""
    a, b_, _ = b.PERSON_REFS
    occ = [lambda d=d: b.occupancy(inbox, delivery_id=f"occ-{d}",
                                   rows=b.occupancy_rows(f"2024-01-{d:02d}"))
           for d in range(2, 6)]
    occ.append(lambda: b.occupancy(inbox, delivery_id="occ-base-again"))  # a resend
    stf = [lambda m=m: b.staffing(inbox, delivery_id=f"stf-{m}",
                                  rows=[f"TS-0001,2024-{m:02d},custodial,120,125,3,100",
                                        f"TS-0002,2024-{m:02d},custodial,9,10,0,10"],
                                  period=(f"2024-{m:02d}-01", f"2024-{m:02d}-28"),
                                  created_at=f"2024-{m + 1:02d}-01T00:00:00Z")
           for m in range(2, 5)]
    rec = [lambda: b.recidivism(
        inbox, delivery_id="rec-2",
        releases=[f"R7,{a},2022-01-05,TS-0002,40,M,1991,03,1,90",
                  f"R8,{b_},2022-02-01,TS-0003,0,F,1980,05,0,200"],
        reconvictions=[f"C7,{a},2022-06-01,2022-08-01,03,true"])]
    reg = [lambda: b.register(inbox, delivery_id="reg-2",
                              rows=[*b.REGISTER_ROWS[:3],
                                    b.REGISTER_ROWS[3].replace(",120,130,", ",125,135,")])]
    return {"occupancy": occ, "staffing": stf, "recidivism": rec, "facility_register": reg}


def publication_with(paths: Paths, wanted: list[str]) -> dict | None:
    manifest = current_manifest(paths)
    return manifest if manifest and set(wanted) <= set(manifest["deliveries"]) else None


def spawn(code: str, args: list[str], paths: Paths, control: Path, log: Path):
    """A process in its own session (so it and its children can be stopped together)."""
    env = {**os.environ, "PENSTAT_HOME": str(paths.home), "PENSTAT_PSEUDONYM_KEY": TEST_KEY,
           "CONTROL": str(control), "GX_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = open(log, "w")  # noqa: SIM115 - closed by the caller via the process record
    err = open(log.with_suffix(".err"), "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, cwd=REPO_ROOT,
                            stdout=out, stderr=err, start_new_session=True)
    return proc, out, err


def stop_all(procs) -> None:
    """Stop the processes this test started, and their children (their own sessions)."""
    for proc, out, err in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        out.close()
        err.close()


def test_deliveries_at_once_on_all_feeds_with_readers_throughout(tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    with penstat_home(tmp_path / "home") as paths:
        procs = []
        try:
            readers = [spawn(READER, [str(paths.current_publication)], paths, control,
                             logs / f"reader-{i}.out") for i in range(READERS)]
            procs += readers
            launcher = spawn(LAUNCHER, [str(logs), *WORKERS], paths, control,
                             logs / "launcher.out")
            procs.append(launcher)

            def explain():
                return " ".join(f"{p.name}: {p.read_text()[-800:]}"
                                for p in sorted(logs.glob("*.err")))

            baseline = write_baseline(paths)  # the first publication, made by the workers
            first = wait_until(lambda: publication_with(paths, baseline), TIMEOUT,
                               "the first publication", interval=0.5, on_timeout=explain)
            senders = deliveries(paths.inbox)
            sent = ["occupancy/" + n for n in ("occ-2", "occ-3", "occ-4", "occ-5")] + \
                ["staffing/stf-2", "staffing/stf-3", "staffing/stf-4", "recidivism/rec-2",
                 "facility_register/reg-2"]
            start = threading.Barrier(len(senders))

            def send(writers):
                start.wait()
                for write in writers:
                    write()

            threads = [threading.Thread(target=send, args=(w,)) for w in senders.values()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            def done():
                assert launcher[0].poll() is None, f"a worker died: {explain()}"
                manifest = current_manifest(paths)
                pending = [p for feed in paths.inbox.iterdir() if feed.is_dir()
                           for p in feed.iterdir() if p.is_dir()]
                return manifest and set(sent) <= set(manifest["deliveries"]) \
                    and not pending and not (control / "dirty").exists()

            wait_until(done, TIMEOUT, "every delivery to be published", interval=0.5,
                       on_timeout=explain)
            final_version = current_manifest(paths)["version"]

            def readers_saw_final() -> bool:
                seen = [f.read_text() for f in control.glob("seen-*") if f.suffix != ".tmp"]
                return len(seen) == READERS and all(v == final_version for v in seen)

            wait_until(readers_saw_final, TIMEOUT, "every reader to read the final publication",
                       interval=0.2, on_timeout=explain)
            (control / "stop").touch()
            for proc, _, _ in procs:
                proc.wait(timeout=120)
        finally:
            (control / "stop").touch()
            stop_all(procs)

        errors = {p.name: p.read_text() for p in logs.glob("*.err")}
        for proc, _, _ in procs:
            assert proc.returncode == 0, errors
        for name, text in errors.items():
            assert "lock" not in text.lower(), (name, text[-2000:])
            assert "Traceback" not in text, (name, text[-2000:])

        reports = [json.loads((logs / f"reader-{i}.out").read_text()) for i in range(READERS)]
        for report in reports:
            assert report["failures"] == [], report["failures"]
        reads = sum(r["reads"] for r in reports)
        seen = set().union(*(r["versions"] for r in reports))
        assert reads >= 20 and first["version"] in seen and len(seen) >= 2, reports

        final = check_publication(paths.current_publication)
        every = ["facility_register/reg-1", "occupancy/occ-base", "staffing/stf-1",
                 "recidivism/rec-1", *sent]
        assert sorted(final["deliveries"]) == sorted(every)
        con = duckdb.connect(str(paths.warehouse), read_only=True)
        try:
            ledger = con.execute("SELECT feed || '/' || delivery_id, count(*) FROM "
                                 "meta.deliveries GROUP BY 1").fetchall()
            receipts = con.execute("SELECT feed || '/' || delivery_id, outcome, count(*) FROM "
                                   "meta.receipts GROUP BY 1, 2").fetchall()
            occupancy_rows = con.execute("SELECT count(*) FROM raw.occupancy__occupancy"
                                         ).fetchone()[0]
        finally:
            con.close()
        assert sorted(ledger) == sorted((d, 1) for d in every), "each delivery loaded once"
        assert sorted(receipts) == sorted([(d, "loaded", 1) for d in every]
                                          + [("occupancy/occ-base-again", "resend_ignored", 1)])
        assert occupancy_rows == 3 * 5
        archived = {f"{p.parent.name}/{p.name}" for p in paths.archive.glob("*/*")}
        assert archived == set(every) | {"occupancy/occ-base-again"}
        assert not any(paths.quarantine.glob("*/*"))
        for version in paths.published.iterdir():
            assert not version.name.startswith("."), f"leftover {version.name}"
            if version.name != "current":
                check_publication(version)
        publications = [json.loads(line)["published"] for line in
                        (logs / "publisher.out").read_text().splitlines()
                        if line.startswith('{"published"')]
        print(f"CONCURRENCY deliveries={len(sent) + 1} readers={READERS} reads={reads} "
              f"versions_seen={len(seen)} publications={len(set(publications))}")


@pytest.mark.parametrize("feed", V1_FEEDS)
def test_an_ingest_run_with_nothing_pending_does_not_open_the_warehouse(feed, tmp_path):
    """A doorbell rung for nothing (or twice) leaves the warehouse alone."""
    with penstat_home(tmp_path / "home") as paths:
        assert not paths.warehouse.exists()
        from penstat.orchestration import tasks

        assert tasks.ingest(feed) == []
        assert not paths.warehouse.exists()
