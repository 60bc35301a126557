"""Failure alerts through Airflow notifiers (PENSTAT_ALERT_NOTIFIER), after the JSON line."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from airflow.sdk.bases.notifier import BaseNotifier

from penstat.orchestration import callbacks

SENT: list[str] = []


class RecordingNotifier(BaseNotifier):
    """A real BaseNotifier: renders its template from the context, records the text."""

    template_fields = ("message",)

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def notify(self, context) -> None:
        SENT.append(self.message)


class BrokenNotifier(BaseNotifier):
    def notify(self, context) -> None:
        raise ConnectionError("smtp server unreachable")


def recording() -> list[BaseNotifier]:
    return [RecordingNotifier("{{ penstat_alert.kind }} in {{ penstat_alert.dag_id }}: "
                              "{{ penstat_alert.error }}")]


def broken_then_recording() -> list[BaseNotifier]:
    return [BrokenNotifier(), *recording()]


NOT_A_NOTIFIER = "just a string"


@pytest.fixture()
def context():
    SENT.clear()
    ti = SimpleNamespace(dag_id="penstat_publish", task_id="gate_and_publish", run_id="r1")
    return {"task_instance": ti, "exception": RuntimeError("2 expectations failed")}


def alert_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "penstat.alerts" and r.levelno == logging.ERROR]


def test_the_notifier_renders_the_alert(monkeypatch, caplog, context):
    monkeypatch.setenv(callbacks.NOTIFIER_ENV, f"{__name__}:recording")
    with caplog.at_level(logging.INFO, logger="penstat.alerts"):
        callbacks.notify_failure(context)
    assert SENT == ["gate_failed in penstat_publish: 2 expectations failed"]
    assert [a["kind"] for a in alert_lines(caplog)] == ["gate_failed"]  # the line stays


def test_a_failing_notifier_is_logged_and_the_others_still_send(monkeypatch, caplog, context):
    monkeypatch.setenv(callbacks.NOTIFIER_ENV, f"{__name__}:broken_then_recording")
    with caplog.at_level(logging.INFO, logger="penstat.alerts"):
        callbacks.notify_failure(context)
    assert len(SENT) == 1
    assert alert_lines(caplog)
    assert any("BrokenNotifier failed (ConnectionError" in r.getMessage()
               for r in caplog.records)


def test_something_else_than_a_notifier_is_refused_and_the_line_still_written(
        monkeypatch, caplog, context):
    monkeypatch.setenv(callbacks.NOTIFIER_ENV, f"{__name__}:NOT_A_NOTIFIER")
    with caplog.at_level(logging.INFO, logger="penstat.alerts"):
        callbacks.notify_failure(context)
    assert SENT == []
    assert alert_lines(caplog)
    assert any("not Airflow BaseNotifiers" in r.getMessage() for r in caplog.records)


def test_no_notifier_configured_sends_nothing(monkeypatch, context):
    monkeypatch.delenv(callbacks.NOTIFIER_ENV, raising=False)
    assert callbacks.notifiers() == []
