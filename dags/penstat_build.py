"""Build DAG: dbt build of the warehouse whenever any feed's raw layer changed,
then the operator's view: a late feed fails `check_delivery_status`, whose
failure callback alerts the operator (penstat/orchestration/callbacks.py).

The build is incremental (penstat/transform/increments.py); triggered by hand with
`{"full_refresh": true}` (what `make rebuild` sends) it rebuilds everything."""

from __future__ import annotations

from functools import reduce

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from penstat.orchestration import tasks
from penstat.orchestration.assets import MARTS_BUILT, RAW_ASSETS, WAREHOUSE_POOL
from penstat.orchestration.dag_defaults import NO_RETRY, dag_settings, retry_policy
from penstat.orchestration.dag_docs import BUILD_DOC


@dag(
    dag_id="penstat_build",
    schedule=reduce(lambda a, b: a | b, RAW_ASSETS.values()),
    **dag_settings("dbt"),
    params={"full_refresh": Param(False, type="boolean",
                                  description="rebuild every model from the raw layer")},
    doc_md=BUILD_DOC,
)
def penstat_build():
    @task(pool=WAREHOUSE_POOL, outlets=[MARTS_BUILT], **retry_policy())
    def dbt_build() -> dict:
        full_refresh = bool(get_current_context()["params"].get("full_refresh", False))
        try:
            result = tasks.build_marts(full_refresh=full_refresh, skip_when_current=True)
        except Exception as failed:
            if tasks.is_verdict(failed):  # a failing model or test: no retry changes it
                raise AirflowFailException(str(failed)) from failed
            raise
        if result["mode"] == "current":  # no MARTS_BUILT event: nothing to publish
            raise AirflowSkipException("nothing delivered since the last finished build")
        return result

    # the lateness the build read (no pool, no warehouse: the publication of the new
    # marts, triggered by dbt_build's event, does not wait for this report)
    @task(**NO_RETRY)
    def check_delivery_status(built: dict) -> dict:
        try:
            return tasks.check_delivery_status(built)
        except tasks.FeedsLate as late:
            raise AirflowFailException(str(late)) from None

    check_delivery_status(dbt_build())


penstat_build()
