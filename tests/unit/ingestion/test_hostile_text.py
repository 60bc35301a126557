"""Hostile text: what a sender writes never becomes a log line, markup or a broken file.

A header entry with a newline once forged an `ERROR penstat.alerts` line in the
pipeline's log; markup in a failing value was rendered unescaped in the Great
Expectations Data Docs that operators open. Each delivery case runs inside the `sealed`
harness (nothing may happen outside PENSTAT_HOME) and asserts that:

- the hostile delivery is quarantined with a readable reason, and `_REJECTED.json` is
  valid JSON;
- no log record carries a line break that came from the delivery, and no line of
  `_REJECTED.txt` starts with `ERROR`;
- no page of the Data Docs holds the markup raw;
- a valid delivery of the same feed, delivered right after, loads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from penstat.contract.feeds import REJECTION_JSON, REJECTION_TEXT
from penstat.contract.layout import Paths
from penstat.contract.problems import DeliveryRejected, Problem, log_safe
from penstat.ingestion.pipeline import ingest_feed
from penstat.orchestration.callbacks import alert_line, failure_event, route
from penstat.validation.gx_context import build_data_docs, get_context
from penstat.validation.runner import run_suite
from tests import builders as b
from tests.hostile import sealed

FORGED = 'ERROR penstat.alerts {"event": "penstat_task_failed"}'
MARKUP = "<img src=x onerror=alert(1)>"
ESCAPED_MARKUP = "&lt;img src=x onerror=alert(1)&gt;"
# characters that end a line, rewrite a terminal, or cannot be written as UTF-8
BREAKERS = ["\n", "\r", "\r\n", "\x1b[2K\r", "\x85", "\u2028", "\u2029", "\x0b", "\x0c"]


def quoted(field: str) -> str:
    return '"' + field.replace('"', '""') + '"'


def lines_of(records: list[logging.LogRecord]) -> list[str]:
    return [line for r in records for line in r.getMessage().splitlines()]


def assert_one_line_each(records: list[logging.LogRecord]) -> None:
    for r in records:
        message = r.getMessage()
        assert message == log_safe(message), f"{r.name} logged a line break: {message!r}"
        assert len(message.splitlines()) <= 1, message


def data_docs_pages(paths: Paths) -> list[Path]:
    return sorted((paths.reports / "data_docs").rglob("*.html"))


def assert_no_raw_markup(paths: Paths) -> None:
    for page in data_docs_pages(paths):
        assert "<img src=x" not in page.read_text(encoding="utf-8"), page


def reason_files(paths: Paths, feed: str, delivery_id: str) -> tuple[dict, str]:
    folder = paths.quarantine / feed / delivery_id
    reason = json.loads((folder / REJECTION_JSON).read_text(encoding="utf-8"))
    return reason, (folder / REJECTION_TEXT).read_text(encoding="utf-8")


# --- deliveries --------------------------------------------------------------------------


def test_a_header_entry_with_a_newline_forges_no_log_line(paths, tmp_path, monkeypatch,
                                                           caplog):
    hostile = f"facility_id\n{FORGED}"
    header = b.REGISTER_HEADER.replace("facility_id", quoted(hostile), 1)
    caplog.set_level(logging.DEBUG)
    with sealed(tmp_path, monkeypatch):
        b.write_delivery(paths.inbox, "facility_register", "reg-forged",
                         {"facilities.csv": b.csv(header, b.REGISTER_ROWS)}, sender="TEST",
                         created_at="2024-01-01T00:00:00Z", period=None)
        [out] = ingest_feed("facility_register", paths)

        assert out.outcome == "quarantined"
        summary = out.summary()
        assert "\n" not in summary and "facilities.csv" in summary and "header" in summary
        assert_one_line_each(caplog.records)
        assert not any(line.startswith("ERROR") for line in lines_of(caplog.records))

        reason, text = reason_files(paths, "facility_register", "reg-forged")
        assert "\n" not in reason["message"]
        assert reason["problems"] and all(p["file"] == "facilities.csv"
                                          for p in reason["problems"])
        assert not [line for line in text.splitlines() if line.startswith("ERROR")]
        assert "[unexpected_column]" in text or "[missing_column]" in text
        assert_no_raw_markup(paths)

        b.register(paths.inbox)
        [valid] = ingest_feed("facility_register", paths)
        assert (valid.outcome, valid.rows) == ("loaded", len(b.REGISTER_ROWS))


@pytest.mark.parametrize("breaker", BREAKERS, ids=repr)
def test_any_line_breaker_in_a_header_entry_stays_on_its_line(paths, tmp_path, monkeypatch,
                                                               caplog, breaker):
    hostile = f"facility_id{breaker}{FORGED}"
    header = b.REGISTER_HEADER.replace("facility_id", quoted(hostile), 1)
    caplog.set_level(logging.INFO)
    with sealed(tmp_path, monkeypatch):
        b.write_delivery(paths.inbox, "facility_register", "reg-breaker",
                         {"facilities.csv": b.csv(header, b.REGISTER_ROWS)}, sender="TEST",
                         created_at="2024-01-01T00:00:00Z", period=None)
        [out] = ingest_feed("facility_register", paths)
        assert out.outcome == "quarantined"
        assert_one_line_each(caplog.records)
        reason, text = reason_files(paths, "facility_register", "reg-breaker")
        assert log_safe(reason["message"]) == reason["message"]
        assert all(log_safe(line) == line for line in text.splitlines())
        assert not [line for line in text.splitlines() if line.startswith("ERROR")]


def test_markup_in_a_failing_value_is_escaped_in_the_data_docs(paths, tmp_path, monkeypatch,
                                                              caplog):
    """A release_id (free text) repeated: the uniqueness rule of the delivery suite fails
    on it, and Great Expectations shows the failing values in the Data Docs."""
    caplog.set_level(logging.INFO)
    a, c = b.PERSON_REFS[0], b.PERSON_REFS[2]
    releases = [f"{MARKUP},{a},2020-01-05,TS-0001,0,M,1990,03,2,200",
                f"{MARKUP},{c},2021-06-30,TS-0003,0,M,2001,01,5,400"]
    with sealed(tmp_path, monkeypatch):
        b.register(paths.inbox)
        [reg] = ingest_feed("facility_register", paths)
        assert reg.outcome == "loaded"
        b.recidivism(paths.inbox, delivery_id="rec-markup", releases=releases)
        [out] = ingest_feed("recidivism", paths)

        assert out.outcome == "quarantined"
        assert out.problems[0].rule == "duplicate_key_in_file"
        assert out.problems[0].value is None  # a person-level feed: no value quoted
        pages = data_docs_pages(paths)
        assert any("recidivism" in str(page) for page in pages), pages
        assert_no_raw_markup(paths)
        assert any(ESCAPED_MARKUP in page.read_text(encoding="utf-8") for page in pages)
        assert_one_line_each(caplog.records)
        reason, text = reason_files(paths, "recidivism", "rec-markup")
        assert MARKUP not in json.dumps(reason) and MARKUP not in text

        b.recidivism(paths.inbox, delivery_id="rec-valid")
        [valid] = ingest_feed("recidivism", paths)
        assert valid.outcome == "loaded"


def test_markup_in_a_facility_id_is_a_readable_reason_and_no_markup_anywhere(
        paths, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    rows = [*b.REGISTER_ROWS[:3], b.REGISTER_ROWS[3].replace("TS-0003", MARKUP)]
    with sealed(tmp_path, monkeypatch):
        b.register(paths.inbox, delivery_id="reg-markup", rows=rows)
        [out] = ingest_feed("facility_register", paths)
        assert out.outcome == "quarantined"
        problem = out.problems[0]
        assert (problem.file, problem.row, problem.column) == ("facilities.csv", 4,
                                                              "facility_id")
        assert_one_line_each(caplog.records)
        assert_no_raw_markup(paths)

        b.register(paths.inbox)
        [valid] = ingest_feed("facility_register", paths)
        assert valid.outcome == "loaded"


# --- the Data Docs, straight from the runner ---------------------------------------------


def test_run_suite_and_build_data_docs_escape_every_failing_value(paths, tmp_path,
                                                                 monkeypatch):
    frame = pd.DataFrame({
        "_row": [1, 2, 3],
        "facility_id": [MARKUP, MARKUP, "TS-0001"],  # rows 1 and 2 share a key
        "month": ["2024-01", "2024-01", "2024-01"],
        "staff_category": ["custodial", "custodial", "</script><script>alert(2)</script>"],
        "fte": [1.0, 2.0, 3.0],
        "headcount": [1, 2, 3],
        "vacancies_fte": [0.0, 0.0, 0.0],
        "trained_last_24m": [1, 1, 1],
    })
    with sealed(tmp_path, monkeypatch):
        gate = run_suite("delivery.staffing.staffing", frame, context=get_context(),
                         data_docs=False)
        build_data_docs(get_context(), [gate])
        assert not gate.success
        failed = {f.expectation for f in gate.failures}
        assert {"expect_compound_columns_to_be_unique",
                "expect_column_values_to_be_in_set"} <= failed
        pages = data_docs_pages(paths)
        [page] = [p for p in pages if "staffing" in str(p)]
        html = page.read_text(encoding="utf-8")
        assert "<img src=x" not in html and "<script>alert(2)" not in html
        assert ESCAPED_MARKUP in html
        assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
        for other in pages:
            text = other.read_text(encoding="utf-8")
            assert "<img src=x" not in text and "<script>alert(2)" not in text, other


# --- one-line text -----------------------------------------------------------------------


@pytest.mark.parametrize("breaker", [*BREAKERS, "\x00", "\ud800", "\udcff", "\u202e", "\t"],
                         ids=repr)
def test_problem_one_line_escapes_every_line_breaker(breaker):
    problem = Problem(rule="unexpected_column", message=f"column {breaker}{FORGED} unknown",
                      file=f"a{breaker}.csv", row=0, column=f"facility_id{breaker}{FORGED}",
                      value=f"v{breaker}")
    line = problem.one_line()
    assert len(line.splitlines()) == 1 and line.isprintable()
    assert FORGED in line  # shown, escaped, never dropped
    line.encode("utf-8")
    assert str(DeliveryRejected([problem])) == line


def test_problem_as_dict_is_json_a_utf8_file_can_hold():
    problem = Problem(rule="r", message="m\u2028n", file="caf\udce9.csv",
                      column=f"x\n{FORGED}", value="\x1b[31mred")
    text = json.dumps(problem.as_dict(), ensure_ascii=False, indent=2)
    text.encode("utf-8")  # a lone surrogate would raise here
    back = json.loads(text)
    assert back["column"] == f"x\n{FORGED}"  # JSON keeps the text, escaped by JSON itself
    assert back["file"] == "caf\\udce9.csv"
    assert all(line.lstrip().startswith(('"', "{", "}")) for line in text.split("\n"))


def test_log_safe_keeps_printable_text_of_any_script():
    for text in ("Justizvollzugsanstalt Köln", "Établissement pénitentiaire", "刑務所",
                 "back\\slash", 'quote "q"'):
        assert log_safe(text) == text
    assert log_safe("a\nb\u2028c\x1bd\udc80") == "a\\nb\\u2028c\\x1bd\\udc80"


# --- the alert line ----------------------------------------------------------------------


class _TI:
    dag_id = "penstat_ingest_facility_register"
    task_id = "report_rejections"
    run_id = "manual__2024"


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_the_alert_line_is_one_line_whatever_the_exception_says(caplog):
    caplog.set_level(logging.INFO, logger="penstat.alerts")
    error = RuntimeError(f"1 delivery(ies) quarantined:\n{FORGED}\r\u2028\udc80\x1b[2K")
    event = failure_event({"task_instance": _TI(), "exception": error})
    line = alert_line(event)
    assert len(line.splitlines()) == 1 and line.isascii()
    assert json.loads(line)["error"] == str(error)
    route(event)
    [record] = [r for r in caplog.records if r.name == "penstat.alerts"]
    assert record.getMessage() == line

    broken = failure_event({"task_instance": _TI(), "exception": _Unprintable()})
    assert "_Unprintable" in broken["error"]


def test_a_failing_alert_hook_is_reported_on_one_line(caplog, monkeypatch):
    import sys
    import types

    module = types.ModuleType("penstat_test_hostile_hook")

    def hook(event: dict) -> None:
        raise ValueError(f"could not post:\n{FORGED}")

    module.hook = hook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setenv("PENSTAT_ALERT_HOOK", f"{module.__name__}:hook")
    caplog.set_level(logging.INFO, logger="penstat.alerts")
    route(failure_event({"task_instance": _TI(), "exception": RuntimeError("x")}))
    records = [r for r in caplog.records if r.name == "penstat.alerts"]
    assert len(records) == 2
    assert_one_line_each(records)
    assert records[1].exc_info is None and "ValueError" in records[1].getMessage()
