"""Failure callbacks: where an operator hears that a feed is late or failing, or a gate failed.

Every penstat task has `on_failure_callback=notify_failure`. By default a
failure is one structured JSON line on the logger `penstat.alerts` (in the task
log), which any log shipper can route. To page someone instead, set
PENSTAT_ALERT_NOTIFIERS to Airflow notifiers (any BaseNotifier: SMTP, Slack, the
WebhookNotifier of penstat.orchestration.notifiers), or PENSTAT_ALERT_HOOK to an
importable `module:function` taking the same dict; see docs/operations.md. A
notifier or hook that fails is logged and does not hide the alert line.

The event's `kind` says what happened:

    feed_late            penstat_build.check_delivery_status: a feed is late
    deliveries_rejected  penstat_ingest_<feed>.report_rejections: quarantined deliveries
    gate_failed          penstat_publish.gate_and_publish: nothing was published
    task_failed          any other task

The alert is exactly one line, whatever the exception says: its text may quote a
delivery (a header entry, a value), and the JSON encoding escapes every control
character, line separator and non-ASCII character, so nothing in it can forge a
line of its own.
"""

from __future__ import annotations

import importlib
import json
import logging
import os

from penstat.contract.problems import log_safe

alerts = logging.getLogger("penstat.alerts")

HOOK_ENV = "PENSTAT_ALERT_HOOK"
NOTIFIERS_ENV = "PENSTAT_ALERT_NOTIFIERS"  # names Airflow notifiers (notifiers.py)
ERROR_CHARS = 2000
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
        "error": _error_text(context.get("exception")),
    }


def _error_text(exception: object) -> str:
    """The exception's message, at most ERROR_CHARS characters; never raises."""
    try:
        text = str(exception)
    except Exception:  # an exception whose __str__ fails must not hide the alert
        text = f"{type(exception).__name__} (its message could not be read)"
    return text[:ERROR_CHARS]


def alert_line(event: dict) -> str:
    """The event as one line of JSON: ASCII only, so no character of it ends the line."""
    return json.dumps(event, ensure_ascii=True, default=str)


def route(event: dict, context: dict | None = None) -> None:
    """The alert line, then the configured Airflow notifiers, then the operator's hook."""
    line = alert_line(event)
    alerts.error("%s", line)
    if context is not None and os.environ.get(NOTIFIERS_ENV):
        _notify(context, event, line)
    hook = os.environ.get(HOOK_ENV)
    if not hook:
        return
    try:
        module, _, func = hook.partition(":")
        getattr(importlib.import_module(module), func)(event)
    except Exception as failed:
        # not alerts.exception: a traceback spans lines, and the hook's error may quote
        # the event; the operator finds the traceback by running the hook by hand
        alerts.warning("%s=%s failed (%s: %s); the alert above was not delivered there",
                       HOOK_ENV, log_safe(hook), type(failed).__name__,
                       log_safe(_error_text(failed)))


def _notify(context, event: dict, line: str) -> None:
    from penstat.orchestration.notifiers import configured_notifiers  # imports airflow.sdk

    try:
        notifiers = configured_notifiers()
    except Exception as failed:
        alerts.warning("%s: %s; the alert above went to no notifier", NOTIFIERS_ENV,
                       log_safe(_error_text(failed)))
        return
    for notifier in notifiers:
        try:
            notifier({**context, "penstat_alert": event, "penstat_alert_line": line})
        except Exception as failed:
            alerts.warning("notifier %s failed (%s: %s); the alert above was not delivered "
                           "there", type(notifier).__name__, type(failed).__name__,
                           log_safe(_error_text(failed)))


def notify_failure(context) -> None:
    route(failure_event(context), context)
