"""Ingest DAGs, one per feed: started by the feed's `_READY` doorbell (an AssetWatcher).

ingest_deliveries -> announce_raw (emits penstat.raw.<feed> if rows were loaded)
                  -> report_rejections (fails, for the operator, if a delivery was quarantined)
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from penstat.contract.feeds import FEEDS
from penstat.orchestration import tasks
from penstat.orchestration.assets import RAW_ASSETS, WAREHOUSE_POOL, inbox_asset
from penstat.orchestration.dag_defaults import NO_RETRY, dag_settings, retry_policy
from penstat.orchestration.dag_docs import ingest_doc

RETRY = retry_policy()  # read once for every feed's DAG


def ingest_dag(feed: str):
    @dag(
        dag_id=f"penstat_ingest_{feed}",
        schedule=[inbox_asset(feed)],
        **dag_settings("ingest", feed),
        doc_md=ingest_doc(feed),
    )
    def ingest():
        @task(pool=WAREHOUSE_POOL, **RETRY)
        def ingest_deliveries() -> list[dict]:
            return tasks.ingest(feed)

        @task(outlets=[RAW_ASSETS[feed]])
        def announce_raw(outcomes: list[dict]) -> int:
            if not tasks.loaded_any(outcomes):
                raise AirflowSkipException("nothing new was loaded")
            return sum(o["rows"] for o in outcomes if o["outcome"] == "loaded")

        @task(**NO_RETRY)
        def report_rejections(outcomes: list[dict]) -> None:
            report = tasks.rejection_report(outcomes)
            if report:
                raise AirflowFailException(report)

        outcomes = ingest_deliveries()
        announce_raw(outcomes)
        report_rejections(outcomes)

    return ingest()


for _feed in FEEDS:
    ingest_dag(_feed)
