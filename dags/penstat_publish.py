"""Publish DAG: gate the freshly built marts and, only if the gate passes, publish them."""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from penstat.orchestration import tasks
from penstat.orchestration.assets import MARTS_BUILT, PUBLISHED_MARTS, WAREHOUSE_POOL
from penstat.orchestration.dag_defaults import dag_settings, retry_policy
from penstat.orchestration.dag_docs import PUBLISH_DOC


@dag(
    dag_id="penstat_publish",
    schedule=[MARTS_BUILT],
    **dag_settings("publish", "great_expectations"),
    doc_md=PUBLISH_DOC,
)
def penstat_publish():
    @task(pool=WAREHOUSE_POOL, outlets=[PUBLISHED_MARTS], **retry_policy())
    def gate_and_publish() -> dict:
        try:
            result = tasks.gate_and_publish()
        except Exception as failed:
            if tasks.is_verdict(failed):  # the gate failed: no retry changes it
                raise AirflowFailException(str(failed)) from failed
            raise
        if result["unchanged"]:
            raise AirflowSkipException(f"marts unchanged: {result['version']} stays current")
        return result

    gate_and_publish()


penstat_publish()
