"""Dashboard DAG: the static dashboard of each new publication, written into
`published/<version>/dashboard/` from its published.duckdb (penstat.reporting.dashboard).

It reads the publication only, so it takes no slot of the warehouse pool."""

from __future__ import annotations

from airflow.sdk import dag, task

from penstat.orchestration import tasks
from penstat.orchestration.assets import PUBLISHED_MARTS
from penstat.orchestration.dag_defaults import NO_RETRY, dag_settings
from penstat.orchestration.dag_docs import DASHBOARD_DOC


@dag(
    dag_id="penstat_dashboard",
    schedule=[PUBLISHED_MARTS],
    **dag_settings("dashboard"),
    doc_md=DASHBOARD_DOC,
)
def penstat_dashboard():
    @task(**NO_RETRY)
    def build_dashboard() -> dict:
        return tasks.build_dashboard()

    build_dashboard()


penstat_dashboard()
