"""Alerts through Airflow notifiers: any `BaseNotifier` (SMTP, Slack, a webhook, ...).

Set PENSTAT_ALERT_NOTIFIERS to one or more `module:attribute` entries (separated by
commas) in the environment of the Airflow components. Each attribute is a notifier, a
list of notifiers, or a function taking no argument that returns either, e.g.

    # mycompany/alerts.py
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from penstat.orchestration.notifiers import WebhookNotifier

    notifiers = [
        SmtpNotifier(to="statistics-ops@example.org", smtp_conn_id="smtp_default",
                     subject="penstat {{ penstat_alert.kind }}: {{ ti.dag_id }}",
                     html_content="{{ penstat_alert_line }}"),
        WebhookNotifier(conn_id="penstat_alert_webhook"),
    ]

    PENSTAT_ALERT_NOTIFIERS=mycompany.alerts:notifiers

penstat.orchestration.callbacks.notify_failure calls them after it has written the
JSON alert line (which is written in any case), with the task's Airflow context plus
`penstat_alert` (the event dict) and `penstat_alert_line` (its one-line JSON) for the
notifiers' templates. A notifier that fails is logged and does not stop the others.
"""

from __future__ import annotations

import importlib
import json
import os
import urllib.request
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseNotifier

from penstat.orchestration.callbacks import NOTIFIERS_ENV

WEBHOOK_CONN_ID = "penstat_alert_webhook"


class NotifierConfigError(ValueError):
    """PENSTAT_ALERT_NOTIFIERS names something that is not a notifier."""


class WebhookNotifier(BaseNotifier):
    """POST the penstat alert (JSON) to a URL: given, or the Airflow connection
    `conn_id`'s host (scheme, host, port, path; its password, if any, is sent as a
    bearer token). Any chat or incident tool with an incoming webhook takes it."""

    template_fields: Sequence[str] = ("url",)

    def __init__(self, url: str | None = None, conn_id: str | None = WEBHOOK_CONN_ID,
                 timeout: float = 10.0):
        super().__init__()
        self.url = url
        self.conn_id = conn_id
        self.timeout = timeout

    def _target(self) -> tuple[str, str | None]:
        if self.url:
            return self.url, None
        from airflow.sdk import Connection

        conn = Connection.get(self.conn_id)
        scheme = conn.schema or "https"
        port = f":{conn.port}" if conn.port else ""
        host = conn.host or ""
        url = host if "://" in host else f"{scheme}://{host}{port}"
        return url, conn.password or None

    def notify(self, context: dict[str, Any]) -> None:
        url, token = self._target()
        event = context.get("penstat_alert") or {"event": "penstat_task_failed"}
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=json.dumps(event, default=str).encode(),
                                         headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")


def _as_notifiers(value: Any, entry: str) -> list[BaseNotifier]:
    if callable(value) and not isinstance(value, BaseNotifier):
        value = value()
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, BaseNotifier):
            raise NotifierConfigError(
                f"{NOTIFIERS_ENV}: {entry} is a {type(item).__name__}, not an Airflow "
                "notifier (airflow.sdk.BaseNotifier)")
    return list(items)


def configured_notifiers(spec: str | None = None) -> list[BaseNotifier]:
    """The notifiers PENSTAT_ALERT_NOTIFIERS (or `spec`) names, in order."""
    spec = os.environ.get(NOTIFIERS_ENV, "") if spec is None else spec
    notifiers: list[BaseNotifier] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        module, sep, attribute = entry.partition(":")
        if not sep or not module or not attribute:
            raise NotifierConfigError(f"{NOTIFIERS_ENV}: {entry!r} is not module:attribute")
        try:
            value = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise NotifierConfigError(f"{NOTIFIERS_ENV}: {entry} cannot be loaded: {exc}"
                                      ) from None
        notifiers += _as_notifiers(value, entry)
    return notifiers
