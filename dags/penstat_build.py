"""Build DAG: dbt build of the warehouse whenever any feed's raw layer changed,
then the operator's view: a late feed fails `check_delivery_status`, whose
failure callback alerts the operator (operations/callbacks.py)."""

from __future__ import annotations

from datetime import datetime
from functools import reduce

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from operations import tasks
from operations.assets import MARTS_BUILT, RAW_ASSETS, WAREHOUSE_POOL
from operations.callbacks import notify_failure


@dag(
    dag_id="penstat_build",
    schedule=reduce(lambda a, b: a | b, RAW_ASSETS.values()),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["penstat", "dbt"],
    default_args={"on_failure_callback": notify_failure},
    doc_md="`dbt build`: staging, intermediate and marts, with dbt tests and unit tests; "
           "then `check_delivery_status` fails (and alerts) if a feed is late.",
)
def penstat_build():
    @task(pool=WAREHOUSE_POOL, outlets=[MARTS_BUILT])
    def dbt_build() -> dict:
        return tasks.build_marts()

    @task(pool=WAREHOUSE_POOL)
    def check_delivery_status() -> dict:
        try:
            return tasks.check_delivery_status()
        except tasks.FeedsLate as late:
            raise AirflowFailException(str(late)) from None

    dbt_build() >> check_delivery_status()


penstat_build()
