"""Settings every penstat DAG shares, declared once (dags/*.py spread them into @dag).

Event-driven DAGs: no catch-up, one run at a time (the warehouse has one writer; the
pool `penstat_warehouse` serialises writers across DAGs), every task failure routed to
the operator (callbacks.notify_failure), owned by `penstat`.

Retries: the idempotent tasks (`ingest_deliveries`: the ledger skips what was loaded;
`dbt_build` and `gate_and_publish`: recorded in meta.builds and by checksums) take
RETRY_POLICY, for what passes by itself (the warehouse locked by a writer outside
Airflow, a full disk being cleaned up; the first delay is `[operations]
retry_delay_seconds`, see retry_policy). A verdict (a failing dbt test, a failed gate)
is not retried: the task fails at once (`AirflowFailException`). The report tasks
(`check_delivery_status`, `report_rejections`) take NO_RETRY: their failure is the
report, and retrying it only delays the alert.

The operator's text of each DAG (`doc_md`, on the DAG's page in the Airflow UI) is in
penstat.orchestration.dag_docs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from penstat.core.config import Config, ConfigError
from penstat.orchestration.callbacks import notify_failure

OWNER = "penstat"

# 3 retries after 1, 2 and 4 minutes (capped at 15): about 7 minutes before the alert.
# The first delay is `[operations] retry_delay_seconds` (retry_policy).
RETRY_DELAY_SECONDS = 60
RETRY_POLICY: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=RETRY_DELAY_SECONDS),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=15),
}
NO_RETRY: dict[str, Any] = {"retries": 0}

DAG_DEFAULTS: dict[str, Any] = {
    "start_date": datetime(2024, 1, 1),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": {"owner": OWNER, "on_failure_callback": notify_failure, **NO_RETRY},
}

# penstat_lateness: lateness of every feed as of now, without a build. The default (daily
# at 06:00 UTC, when the daily deliveries of the night are in) is `[operations]
# lateness_schedule` of config/penstat.toml.
LATENESS_SCHEDULE = "0 6 * * *"


def lateness_schedule(config: Config | None = None) -> str:
    """`[operations] lateness_schedule`: a five-field cron expression, in UTC."""
    from croniter import croniter

    config = config or Config.load()
    value = config.values.get("operations", {}).get("lateness_schedule", LATENESS_SCHEDULE)
    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ConfigError(f"[operations] lateness_schedule = {value!r} is not a five-field "
                          "cron expression (minute hour day-of-month month day-of-week), "
                          "e.g. \"0 6 * * *\"")
    return value


def retry_policy(config: Config | None = None) -> dict[str, Any]:
    """RETRY_POLICY with its first delay from `[operations] retry_delay_seconds` (a whole
    number of seconds, 1 to 3600; each further retry waits twice as long)."""
    config = config or Config.load()
    value = config.values.get("operations", {}).get("retry_delay_seconds", RETRY_DELAY_SECONDS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
        raise ConfigError(f"[operations] retry_delay_seconds = {value!r} is not a whole number "
                          "of seconds from 1 to 3600")
    return {**RETRY_POLICY, "retry_delay": timedelta(seconds=value)}


def dag_settings(*tags: str) -> dict[str, Any]:
    """DAG_DEFAULTS with the DAG's tags (every DAG is tagged `penstat`)."""
    return {**DAG_DEFAULTS, "tags": ["penstat", *tags]}
