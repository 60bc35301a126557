"""Publish DAG: gate the freshly built marts and, only if the gate passes, publish them."""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from penstat.orchestration import tasks
from penstat.orchestration.assets import MARTS_BUILT, PUBLISHED_MARTS, WAREHOUSE_POOL
from penstat.orchestration.dag_defaults import dag_settings


@dag(
    dag_id="penstat_publish",
    schedule=[MARTS_BUILT],
    **dag_settings("publish", "great_expectations"),
    doc_md="Stage a publication, validate it with the mart suites, switch `current`.",
)
def penstat_publish():
    @task(pool=WAREHOUSE_POOL, outlets=[PUBLISHED_MARTS])
    def gate_and_publish() -> dict:
        result = tasks.gate_and_publish()
        if result["unchanged"]:
            raise AirflowSkipException(f"marts unchanged: {result['version']} stays current")
        return result

    gate_and_publish()


penstat_publish()
