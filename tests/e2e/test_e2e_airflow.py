"""End to end through the real Airflow: scheduler, triggerer, dag-processor, api-server.

Deliveries are dropped into the inbox and announced the way senders do (the
`_READY` doorbell, watched by AssetWatchers in the triggerer) or through the
REST API (an asset event). The test waits on conditions with generous
timeouts, never fixed sleeps, and always stops the stack it started.

Throughout, a reader queries `published/current` in a loop and checks every
publication it sees whole. At the end, every file under PENSTAT_HOME (the
warehouse, publications, Data Docs, dbt and Airflow task and component logs,
the Airflow metadata database) is scanned for the raw person_ref values of the
synthetic recidivism deliveries: none may appear outside the owner-only
archive and quarantine copies of the deliveries. The synthetic history ends
yesterday, so no feed is late and every penstat_build run succeeds; the
quarantined delivery must have raised a failure alert in the task logs.
(tests/integration/test_delivery_status.py shows a late feed being reported.)
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from penstat.contract.layout import Paths
from penstat.orchestration.local_airflow import Stack, post_json
from penstat.orchestration.services.sessions import session_members
from penstat.orchestration.waiting import active_dag_runs, publication_with, wait_until
from penstat.publication.publish import current_manifest
from penstat.senders.synthetic import generate, next_day
from tests.conftest import TEST_KEY
from tests.e2e.conftest import SCALE, SEED
from tests.reliability import (
    PublicationReader,
    find_identifiers,
    person_refs_in,
    private_modes,
    publication_differences,
)

pytestmark = pytest.mark.e2e
TIMEOUT = 900


@pytest.fixture(scope="module")
def stack(tmp_path_factory, run_day):
    home = tmp_path_factory.mktemp("e2e") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("PENSTAT_HOME", str(home))
    mp.setenv("PENSTAT_PSEUDONYM_KEY", TEST_KEY)
    paths = Paths.from_env()
    paths.ensure()
    airflow = Stack(paths)
    leaders: list[int] = []
    try:
        state = airflow.up(timeout=300)
        leaders = list(state["pids"].values())
        yield paths, state
    finally:
        airflow.down()
        mp.undo()
        assert airflow.read_state() is None
        # `make down` leaves nothing of the stack running, task processes included
        assert not [p for leader in leaders for p in session_members(leader)]


@pytest.fixture(scope="module")
def reader(stack):
    """A dashboard reading published/current in a loop for the whole module."""
    paths, _ = stack
    thread = PublicationReader(paths, pause=0.2)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def manifest_rows(folder: Path, file: str) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    return sum(f["rows"] for f in manifest["files"] if f["name"] == file)


def published_count(paths: Paths, mart: str) -> int:
    con = duckdb.connect(str(paths.current_publication / "published.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
    finally:
        con.close()


def idle(paths: Paths, api: str) -> bool:
    pending = [p for feed in paths.inbox.iterdir() for p in feed.iterdir()]
    return not pending and active_dag_runs(api) == 0


def alerts_in(text: str):
    """penstat.alerts events in a task log (plain lines or Airflow's JSON log lines)."""
    marker = '{"event": "penstat_task_failed"'
    for line in text.splitlines():
        candidates = [line]
        try:
            record = json.loads(line)
            if isinstance(record, dict):
                candidates += [str(v) for v in record.values()]
        except ValueError:
            pass
        for candidate in candidates:
            at = candidate.find(marker)
            if at >= 0:
                try:
                    yield json.loads(candidate[at:])
                    break
                except ValueError:
                    continue


# The publication Airflow made of the generated deliveries (for the CLI comparison).
FIRST_PUBLICATION: dict = {}


def test_deliveries_flow_from_doorbell_to_publication(stack, reader, run_day):
    paths, _ = stack
    folders = [Path(f) for f in generate(paths.inbox, scale=SCALE, seed=SEED, split="year",
                                         until=run_day.until)]
    deliveries = [f"{f.parent.name}/{f.name}" for f in folders]
    manifest = publication_with(paths, deliveries, timeout=TIMEOUT)
    FIRST_PUBLICATION.update(manifest)
    occupancy_rows = sum(manifest_rows(paths.archive / "occupancy" / f.name, "occupancy.csv")
                         for f in folders if f.parent.name == "occupancy")
    assert manifest["validation"]["success"] is True
    assert manifest["marts"]["mart_facility_daily"]["rows"] == occupancy_rows
    assert published_count(paths, "mart_facility_daily") == occupancy_rows
    assert manifest["marts"]["mart_recidivism_cohort"]["rows"] > 0
    assert not any(paths.quarantine.glob("*/*")), "the synthetic sender's deliveries are valid"

    # lineage: the publication's OpenLineage file names every delivery it holds, and
    # Airflow's OpenLineage provider wrote each task run's events (file transport)
    lineage = paths.lineage / "publications" / f"{manifest['version']}.json"
    wait_until(lineage.is_file, TIMEOUT, f"the lineage file {lineage}")
    (event,) = [json.loads(line) for line in lineage.read_text().splitlines()]
    assert sorted(i["name"] for i in event["inputs"]) == \
        sorted(str(paths.archive / d) for d in manifest["deliveries"])
    assert {Path(o["name"]).stem for o in event["outputs"]} == set(manifest["marts"])

    def airflow_jobs() -> set[str]:
        events = paths.lineage / "airflow" / "events.jsonl"
        if not events.is_file():
            return set()
        return {json.loads(line)["job"]["name"] for line in events.read_text().splitlines()
                if line.strip()}
    wait_until(lambda: "penstat_publish.gate_and_publish" in airflow_jobs(), TIMEOUT,
               "Airflow's OpenLineage event of gate_and_publish",
               on_timeout=lambda: str(sorted(airflow_jobs())))


def test_the_penstat_cli_publishes_what_the_dags_published(stack, run_day, in_process_publication):
    """`penstat ingest all`, `penstat build`, `penstat publish` on the same deliveries in
    another PENSTAT_HOME, in the foreground: the same marts, every value published by both
    equal (which cells disclosure control withholds depends on each home's history:
    tests/reliability.publication_differences)."""
    assert FIRST_PUBLICATION, "the Airflow publication of the first test"
    reference = in_process_publication(run_day.until)
    home = reference.paths.home
    # the synthetic history ends yesterday: no feed is late, nothing asks for attention
    if run_day.still_today():
        assert reference.codes == {"ingest": 0, "build": 0, "publish": 0}
    cli = current_manifest(Paths(home))
    assert sorted(cli["deliveries"]) == sorted(FIRST_PUBLICATION["deliveries"])
    assert {m: v["rows"] for m, v in cli["marts"].items()} == \
        {m: v["rows"] for m, v in FIRST_PUBLICATION["marts"].items()}
    assert publication_differences(Paths(home).current_publication,
                                   stack[0].published / FIRST_PUBLICATION["version"]) == []


def test_a_new_day_announced_through_the_rest_api_publishes_new_marts(stack, reader, run_day):
    paths, state = stack
    wait_until(lambda: idle(paths, state["api"]), TIMEOUT, "the pipeline to be idle")
    before = current_manifest(paths)
    # today's census, extracted now (a created_at in the future would be rejected)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    folder = Path(next_day(paths.inbox, scale=SCALE, seed=SEED, day=run_day.day,
                           until=run_day.until, created_at=now, ring=False))
    api = state["api"]
    with urllib.request.urlopen(f"{api}/api/v2/assets?name_pattern=penstat.inbox.occupancy",
                                timeout=30) as resp:
        [asset] = json.loads(resp.read())["assets"]
    post_json(f"{api}/api/v2/assets/events", {"asset_id": asset["id"]})
    after = publication_with(paths, [f"occupancy/{folder.name}"], timeout=TIMEOUT,
                             newer_than=before["version"])
    new_rows = manifest_rows(paths.archive / "occupancy" / folder.name, "occupancy.csv")
    assert after["marts"]["mart_facility_daily"]["rows"] == \
        before["marts"]["mart_facility_daily"]["rows"] + new_rows
    assert (paths.published / before["version"] / "manifest.json").is_file()


def test_a_corrupted_delivery_is_quarantined_and_current_is_unchanged(stack, run_day):
    paths, state = stack
    wait_until(lambda: idle(paths, state["api"]), TIMEOUT, "the pipeline to be idle")
    before = current_manifest(paths)
    day = run_day.day + timedelta(days=1)  # its checksum is checked first: rejected for that
    folder = Path(next_day(paths.inbox, scale=SCALE, seed=SEED, day=day, until=run_day.until,
                           ring=False))
    with open(folder / "occupancy.csv", "ab") as fh:
        fh.write(f"SY-0001,{day.isoformat()},0,1,0,0,0,0,0,0\n".encode())
    (paths.inbox / "occupancy" / "_READY").touch()
    reason = paths.quarantine / "occupancy" / folder.name / "_REJECTED.json"
    wait_until(reason.is_file, TIMEOUT, "the corrupted delivery to reach quarantine")
    assert json.loads(reason.read_text())["problems"][0]["rule"] == "checksum_mismatch"
    wait_until(lambda: idle(paths, state["api"]), TIMEOUT, "the pipeline to be idle")
    assert current_manifest(paths)["version"] == before["version"]
    assert os.path.realpath(paths.current_publication).endswith(before["version"])


def test_no_raw_identifier_anywhere_no_partial_read_and_failures_alerted(stack, reader, run_day):
    paths, state = stack
    wait_until(lambda: idle(paths, state["api"]), TIMEOUT, "the pipeline to be idle")
    reader.stop()
    assert reader.failures == [], reader.failures[:5]
    assert reader.reads > 0 and len(reader.versions) >= 2

    refs = person_refs_in(paths.archive / "recidivism")
    assert len(refs) > 50, "the synthetic recidivism deliveries were archived"
    copies = tuple(paths.archive.glob("recidivism/*")) + tuple(
        paths.quarantine.glob("recidivism/*"))
    task_logs = list((paths.logs / "airflow").rglob("*.log"))
    assert task_logs, "Airflow wrote task logs under PENSTAT_HOME"
    assert find_identifiers(paths.home, refs, skip=copies) == []
    assert private_modes(paths.archive / "recidivism") == []

    alerts = [a for log in task_logs for a in alerts_in(log.read_text(errors="replace"))]
    kinds = {(a["kind"], a["dag_id"]) for a in alerts}
    if run_day.still_today():  # past midnight the run day's feeds fall due: a true alert
        assert not [k for k in kinds if k[0] == "feed_late"], "the history ends yesterday"
    assert ("deliveries_rejected", "penstat_ingest_occupancy") in kinds
    assert {k[1] for k in kinds if k[0] != "feed_late"} == {"penstat_ingest_occupancy"}, kinds

    with urllib.request.urlopen(f"{state['api']}/api/v2/dags/penstat_build/dagRuns",
                                timeout=30) as resp:
        runs = json.loads(resp.read())["dag_runs"]
    assert len(runs) >= 2, "the generated deliveries and the day announced over REST"
    # a run past midnight may fail check_delivery_status alone, for a feed truly late now
    expected = {"success"} if run_day.still_today() else {"success", "failed"}
    assert {r["state"] for r in runs} <= expected, [(r["dag_run_id"], r["state"])
                                                    for r in runs]
