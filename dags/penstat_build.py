"""Build DAG: dbt build of the warehouse whenever any feed's raw layer changed."""

from __future__ import annotations

from datetime import datetime
from functools import reduce

from airflow.sdk import dag, task

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
    doc_md="`dbt build`: staging, intermediate and marts, with dbt tests and unit tests.",
)
def penstat_build():
    @task(pool=WAREHOUSE_POOL, outlets=[MARTS_BUILT])
    def dbt_build() -> dict:
        return tasks.build_marts()

    dbt_build()


penstat_build()
