"""Lateness DAG: every day, without a build, fail (and alert) if a feed stopped sending.

Lateness is otherwise judged only by `penstat_build`, which runs when some feed delivered:
a sender that stops altogether would never be reported. check_delivery_status reads the
ledger (read-only, in the warehouse pool) and judges each feed's last period against its
cadence as of today (penstat/orchestration/lateness.py), on `[operations]
lateness_schedule` (default daily at 06:00 UTC); its failure callback alerts the
operator (kind `feed_late`).
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, dag, task
from airflow.sdk.exceptions import AirflowFailException

from penstat.orchestration import tasks
from penstat.orchestration.assets import WAREHOUSE_POOL
from penstat.orchestration.dag_defaults import NO_RETRY, dag_settings, lateness_schedule
from penstat.orchestration.dag_docs import LATENESS_DOC


@dag(
    dag_id="penstat_lateness",
    schedule=CronTriggerTimetable(lateness_schedule(), timezone="UTC"),
    **dag_settings("operations"),
    doc_md=LATENESS_DOC,
)
def penstat_lateness():
    @task(pool=WAREHOUSE_POOL, **NO_RETRY)
    def check_delivery_status() -> dict:
        try:
            return tasks.check_lateness()
        except tasks.FeedsLate as late:
            raise AirflowFailException(str(late)) from None

    check_delivery_status()


penstat_lateness()
