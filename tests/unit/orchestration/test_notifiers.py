"""Alerts through Airflow notifiers: PENSTAT_ALERT_NOTIFIERS names BaseNotifiers, which
notify_failure calls after the JSON alert line, with the penstat event in their context;
WebhookNotifier posts the event to a URL or an Airflow connection's host (a real local
HTTP server here)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from airflow.sdk import BaseNotifier

from penstat.orchestration import callbacks
from penstat.orchestration.notifiers import (
    NOTIFIERS_ENV,
    NotifierConfigError,
    WebhookNotifier,
    configured_notifiers,
)

SENT: list[str] = []


class SubjectNotifier(BaseNotifier):
    """A real notifier with a templated field, as SmtpNotifier's subject is."""

    template_fields = ("subject",)

    def __init__(self, subject: str):
        super().__init__()
        self.subject = subject

    def notify(self, context):
        SENT.append(self.subject)


class BrokenNotifier(BaseNotifier):
    def notify(self, context):
        raise ConnectionError("mail relay refused")


templated = SubjectNotifier("penstat {{ penstat_alert.kind }} in {{ penstat_alert.dag_id }}")
broken = BrokenNotifier()
not_a_notifier = object()


def both():
    return [BrokenNotifier(), SubjectNotifier("second {{ penstat_alert.kind }}")]


def _context(error: Exception) -> dict:
    ti = SimpleNamespace(dag_id="penstat_publish", task_id="gate_and_publish", run_id="r1")
    return {"task_instance": ti, "exception": error}


@pytest.fixture
def receiver():
    received: list[tuple[dict, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def test_notifiers_get_the_event_after_the_alert_line(monkeypatch, caplog):
    SENT.clear()
    monkeypatch.setenv(NOTIFIERS_ENV, f"{__name__}:templated")
    caplog.set_level(logging.ERROR, logger="penstat.alerts")
    callbacks.notify_failure(_context(RuntimeError("gate failed")))
    assert SENT == ["penstat gate_failed in penstat_publish"]
    [line] = [r.getMessage() for r in caplog.records if r.name == "penstat.alerts"]
    assert json.loads(line)["kind"] == "gate_failed"


def test_a_failing_notifier_is_logged_and_the_next_one_still_runs(monkeypatch, caplog):
    SENT.clear()
    monkeypatch.setenv(NOTIFIERS_ENV, f"{__name__}:both")
    caplog.set_level(logging.WARNING, logger="penstat.alerts")
    callbacks.notify_failure(_context(RuntimeError("gate failed")))
    messages = [r.getMessage() for r in caplog.records if r.name == "penstat.alerts"]
    assert json.loads(messages[0])["kind"] == "gate_failed"
    assert any("notifier BrokenNotifier failed (ConnectionError: mail relay refused)" in m
               for m in messages)
    assert SENT == ["second gate_failed"]


@pytest.mark.parametrize("spec, message", [
    (f"{__name__}:not_a_notifier", "is a object, not an Airflow notifier"),
    ("no_such_module_xyz:n", "cannot be loaded"),
    ("just-a-name", "is not module:attribute"),
])
def test_a_misconfigured_notifier_is_named(spec, message, monkeypatch, caplog):
    with pytest.raises(NotifierConfigError, match=message):
        configured_notifiers(spec)
    monkeypatch.setenv(NOTIFIERS_ENV, spec)
    caplog.set_level(logging.WARNING, logger="penstat.alerts")
    callbacks.notify_failure(_context(RuntimeError("x")))  # the line is still written
    messages = [r.getMessage() for r in caplog.records if r.name == "penstat.alerts"]
    assert json.loads(messages[0])["kind"] == "gate_failed"
    assert message in messages[1] and "went to no notifier" in messages[1]


def test_the_webhook_notifier_posts_the_event(receiver, monkeypatch):
    port, received = receiver
    notifier = WebhookNotifier(url=f"http://127.0.0.1:{port}/hook")
    event = {"event": "penstat_task_failed", "kind": "feed_late", "feed": "occupancy"}
    notifier({"penstat_alert": event})
    assert received == [(event, None)]


def test_the_webhook_reads_an_airflow_connection_with_a_token(receiver, monkeypatch):
    port, received = receiver
    monkeypatch.setenv("AIRFLOW_CONN_PENSTAT_ALERT_WEBHOOK", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http",
         "password": "s3cret-token"}))
    monkeypatch.setenv(NOTIFIERS_ENV, "penstat.orchestration.notifiers:WebhookNotifier")
    callbacks.notify_failure(_context(RuntimeError("gate failed")))
    [(event, auth)] = received
    assert event["kind"] == "gate_failed" and auth == "Bearer s3cret-token"


def test_a_webhook_that_cannot_be_reached_fails_loudly():
    with pytest.raises(OSError):
        WebhookNotifier(url="http://127.0.0.1:9/unreachable", timeout=2)(
            {"penstat_alert": {"kind": "x"}})
