"""Failure callbacks: where an operator hears that a feed is late or failing, or a gate failed.

Every penstat task has `on_failure_callback=notify_failure`. By default a
failure is one structured JSON line on the logger `penstat.alerts` (in the task
log), which any log shipper can route. To page someone instead, set
PENSTAT_ALERT_HOOK to an importable `module:function` taking the same dict
(e.g. one that posts to a chat webhook or sends e-mail through an Airflow
connection); see docs/operations.md. A hook that fails is logged and does not
hide the alert line.

The event's `kind` says what happened:

    feed_late            penstat_build.check_delivery_status: a feed is late
    deliveries_rejected  penstat_ingest_<feed>.report_rejections: quarantined deliveries
    gate_failed          penstat_publish.gate_and_publish: nothing was published
    task_failed          any other task
"""

from __future__ import annotations

import importlib
import json
import logging
import os

alerts = logging.getLogger("penstat.alerts")

HOOK_ENV = "PENSTAT_ALERT_HOOK"
_KINDS = {
    "check_delivery_status": "feed_late",
    "report_rejections": "deliveries_rejected",
    "gate_and_publish": "gate_failed",
}


def failure_event(context) -> dict:
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    feed = dag_id.removeprefix("penstat_ingest_") if dag_id and \
        dag_id.startswith("penstat_ingest_") else None
    return {
        "event": "penstat_task_failed",
        "kind": _KINDS.get(task_id or "", "task_failed"),
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": getattr(ti, "run_id", None),
        "feed": feed,
        "error": str(context.get("exception"))[:2000],
    }


def route(event: dict) -> None:
    """The alert line, then the operator's hook if one is configured."""
    alerts.error(json.dumps(event))
    hook = os.environ.get(HOOK_ENV)
    if not hook:
        return
    try:
        module, _, func = hook.partition(":")
        getattr(importlib.import_module(module), func)(event)
    except Exception:
        alerts.exception("%s=%s failed; the alert above was not delivered there", HOOK_ENV, hook)


def notify_failure(context) -> None:
    route(failure_event(context))
