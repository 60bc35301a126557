"""DAG integrity: every DAG imports, schedules are wired to the right assets, writers share
the one-slot pool, the gate task alone emits the published-marts asset, the idempotent
tasks retry and the report tasks do not, and every DAG tells its operator what to do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset

from penstat.contract.feeds import DOORBELL, FEEDS
from penstat.core.config import Config, ConfigError
from penstat.core.locations import REPO_ROOT
from penstat.orchestration.assets import MARTS_BUILT, PUBLISHED_MARTS, RAW_ASSETS, WAREHOUSE_POOL
from penstat.orchestration.dag_defaults import (
    LATENESS_SCHEDULE,
    lateness_schedule,
    retry_policy,
)
from penstat.orchestration.doorbell import DoorbellTrigger


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> DagBag:
    mp = pytest.MonkeyPatch()
    mp.setenv("PENSTAT_HOME", str(tmp_path_factory.mktemp("home")))
    try:
        yield DagBag(dag_folder=str(REPO_ROOT / "dags"))
    finally:
        mp.undo()


def schedule_assets(dag) -> set[str]:
    return {a.name for a in dag.timetable.asset_condition.iter_assets().values()} \
        if hasattr(dag.timetable.asset_condition, "iter_assets") else set()


def test_every_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    expected = {f"penstat_ingest_{f}" for f in FEEDS} | {
        "penstat_build", "penstat_publish", "penstat_lateness", "penstat_dashboard"}
    assert set(dagbag.dag_ids) == expected


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_ingest_dag_is_scheduled_by_the_feeds_doorbell(dagbag, feed):
    dag = dagbag.dags[f"penstat_ingest_{feed}"]
    [asset] = dag.timetable.asset_condition.objects
    assert isinstance(asset, Asset)
    assert asset.name == f"penstat.inbox.{feed}"
    [watcher] = asset.watchers
    trigger = watcher.trigger
    assert isinstance(trigger, DoorbellTrigger)  # a DirectoryFileDeleteTrigger, unjammable
    assert trigger.filename == DOORBELL
    assert trigger.directory.endswith(f"inbox/{feed}")
    ingest = dag.get_task("ingest_deliveries")
    assert ingest.pool == WAREHOUSE_POOL
    assert [o.name for o in dag.get_task("announce_raw").outlets] == [RAW_ASSETS[feed].name]


def test_build_dag_runs_on_any_raw_asset(dagbag):
    dag = dagbag.dags["penstat_build"]
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    assert {a.name for a in condition.objects} == {a.name for a in RAW_ASSETS.values()}
    task = dag.get_task("dbt_build")
    assert task.pool == WAREHOUSE_POOL
    assert [o.name for o in task.outlets] == [MARTS_BUILT.name]


def test_build_dag_is_incremental_unless_a_full_refresh_is_asked_for(dagbag):
    params = dagbag.dags["penstat_build"].params
    assert params["full_refresh"] is False  # asset-triggered runs are incremental
    assert params.get_param("full_refresh").schema["type"] == "boolean"


def test_publish_dag_follows_the_build_and_only_the_gate_emits_published(dagbag):
    dag = dagbag.dags["penstat_publish"]
    [asset] = dag.timetable.asset_condition.objects
    assert asset.name == MARTS_BUILT.name
    emitters = [(d.dag_id, t.task_id) for d in dagbag.dags.values() for t in d.tasks
                if any(getattr(o, "name", None) == PUBLISHED_MARTS.name for o in t.outlets)]
    assert emitters == [("penstat_publish", "gate_and_publish")]
    assert dag.get_task("gate_and_publish").pool == WAREHOUSE_POOL


def test_dashboard_dag_follows_each_publication_without_the_warehouse_pool(dagbag):
    dag = dagbag.dags["penstat_dashboard"]
    [asset] = dag.timetable.asset_condition.objects
    assert asset.name == PUBLISHED_MARTS.name
    [task] = dag.tasks
    assert task.task_id == "build_dashboard"
    assert task.pool != WAREHOUSE_POOL  # it reads the publication only
    assert not task.outlets
    assert "docs/dashboard.md" in dag.doc_md


def test_every_warehouse_touching_task_shares_the_one_slot_pool(dagbag):
    writers = {"ingest_deliveries", "dbt_build", "gate_and_publish"}
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id in writers:
                assert task.pool == WAREHOUSE_POOL, (dag.dag_id, task.task_id)
        assert dag.max_active_runs == 1


IDEMPOTENT = {"ingest_deliveries", "dbt_build", "gate_and_publish"}
REPORTS = {"check_delivery_status", "report_rejections"}


def test_idempotent_tasks_retry_with_exponential_backoff(dagbag):
    seen = set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id in IDEMPOTENT:
                seen.add(task.task_id)
                assert task.retries == 3, (dag.dag_id, task.task_id)
                assert task.retry_exponential_backoff == 2.0
                assert task.retry_delay == timedelta(minutes=1)
                assert task.max_retry_delay == timedelta(minutes=15)
    assert seen == IDEMPOTENT


def test_report_tasks_are_never_retried(dagbag):
    seen = set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id not in IDEMPOTENT:
                seen.add(task.task_id)
                assert not task.retries, (dag.dag_id, task.task_id)
    assert seen >= REPORTS


def test_every_task_has_an_owner_and_alerts_on_failure(dagbag):
    from penstat.orchestration.callbacks import notify_failure

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert task.owner == "penstat", (dag.dag_id, task.task_id)
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify_failure in callbacks, (dag.dag_id, task.task_id)


def test_every_dag_documents_what_it_does_and_what_to_do_when_it_fails(dagbag):
    for dag in dagbag.dags.values():
        doc = dag.doc_md or ""
        assert "**When it fails**" in doc, dag.dag_id
        assert "what to do" in doc, dag.dag_id
        for task in dag.tasks:
            if task.task_id != "announce_raw":  # skips, never fails on its own
                assert f"`{task.task_id}`" in doc, (dag.dag_id, task.task_id)
    assert "_REJECTED.txt" in dagbag.dags["penstat_ingest_occupancy"].doc_md
    assert "chase the sender" in dagbag.dags["penstat_build"].doc_md
    assert "reports/gate/" in dagbag.dags["penstat_publish"].doc_md
    assert "chase the sender" in dagbag.dags["penstat_lateness"].doc_md


def test_lateness_dag_runs_on_a_clock_without_catching_up(dagbag):
    dag = dagbag.dags["penstat_lateness"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"  # a clock, not assets
    assert dag.timetable.expression == LATENESS_SCHEDULE == lateness_schedule() == "0 6 * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    [task] = dag.tasks
    assert task.task_id == "check_delivery_status"  # its failure alerts as feed_late
    assert task.pool == WAREHOUSE_POOL
    assert not task.outlets


@pytest.mark.parametrize("expression", ["30 5 * * 1-5", "*/15 * * * *"])
def test_the_lateness_schedule_is_configuration(tmp_path, expression):
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(f'[operations]\nlateness_schedule = "{expression}"\n')
    assert lateness_schedule(Config.load(overlays=[overlay])) == expression


@pytest.mark.parametrize("expression", ["every day", "0 6 * *", "61 6 * * *", "0 6 * * * *"])
def test_an_invalid_lateness_schedule_is_a_configuration_error(tmp_path, expression):
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(f'[operations]\nlateness_schedule = "{expression}"\n')
    with pytest.raises(ConfigError, match=r"\[operations\] lateness_schedule = .* cron"):
        lateness_schedule(Config.load(overlays=[overlay]))


def test_the_retry_delay_is_configuration(tmp_path):
    overlay = tmp_path / "overlay.toml"
    overlay.write_text("[operations]\nretry_delay_seconds = 5\n")
    policy = retry_policy(Config.load(overlays=[overlay]))
    assert policy["retry_delay"] == timedelta(seconds=5) and policy["retries"] == 3
    assert retry_policy()["retry_delay"] == timedelta(minutes=1)


@pytest.mark.parametrize("value", ["0", "3601", "-5"])
def test_an_invalid_retry_delay_is_a_configuration_error(tmp_path, value):
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(f"[operations]\nretry_delay_seconds = {value}\n")
    with pytest.raises(ConfigError, match=r"\[operations\] retry_delay_seconds = "):
        retry_policy(Config.load(overlays=[overlay]))
