"""Failure callbacks: where an operator hears that a feed or a gate failed.

By default a failure is one structured log line (logger `penstat.alerts`),
which any log shipper can route. To page someone instead, set
PENSTAT_ALERT_HOOK to an importable `module:function` taking the same dict
(e.g. one that posts to a chat webhook or sends e-mail through an Airflow
connection); see docs/operations.md.
"""

from __future__ import annotations

import importlib
import json
import logging
import os

alerts = logging.getLogger("penstat.alerts")


def notify_failure(context) -> None:
    ti = context.get("task_instance") or context.get("ti")
    event = {
        "event": "penstat_task_failed",
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None),
        "error": str(context.get("exception"))[:2000],
    }
    alerts.error(json.dumps(event))
    hook = os.environ.get("PENSTAT_ALERT_HOOK")
    if hook:
        module, _, func = hook.partition(":")
        getattr(importlib.import_module(module), func)(event)
