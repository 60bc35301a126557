# ruff: noqa: E501  (markdown table rows, as in docs/operations.md)
"""The operator's page of each DAG (`doc_md`, shown in the Airflow UI): what the DAG does
and what to do when it fails. The same table is in docs/operations.md, "When something
fails"; keep the two in step."""

from __future__ import annotations

_ALERTS = (
    "Every failure is also one JSON line on the `penstat.alerts` logger in the task log "
    "(and the `PENSTAT_ALERT_HOOK`, if set): see docs/operations.md.")

_RETRIES = (
    "**Retries.** `{task}` is idempotent and retries 3 times (after 1, 2 and 4 minutes) "
    "on errors that pass by themselves (the warehouse locked, a full disk); "
    "{verdict} fails at once.")


def ingest_doc(feed: str) -> str:
    return f"""\
### Ingest `{feed}`

Started by the feed's `_READY` doorbell (or an asset event for `penstat.inbox.{feed}`):
loads every pending `{feed}` delivery of the inbox into the raw layer, oldest first (the
ledger `meta.deliveries` is the truth, so a rerun loads nothing twice), then announces
`penstat.raw.{feed}` if rows were loaded, which starts `penstat_build`.

**When it fails**

| task | what it means | what to do |
|---|---|---|
| `report_rejections` | a delivery went to quarantine; the log lists each one with its first reason | send `quarantine/{feed}/<id>/_REJECTED.txt` to the sender; they fix it and deliver again under a new `delivery_id` |
| `ingest_deliveries` | not the delivery's fault (`IngestionHalted`: a full disk, out of memory, the warehouse locked by another writer); the delivery stays in the inbox | fix the cause, then clear the task (or touch `_READY`) to rerun it |

{_RETRIES.format(task="ingest_deliveries",
                 verdict="a quarantined delivery is not an error and")}
`report_rejections` is not retried: its failure is the report. {_ALERTS}
"""


BUILD_DOC = f"""\
### Build the marts

`dbt build` (with the dbt data tests) of what the new deliveries touch, whenever a feed's
raw layer changed (incremental; triggered by hand with `{{"full_refresh": true}}`, what
`make rebuild` sends, it rebuilds everything). Emits `penstat.marts`, which starts
`penstat_publish`. Then `check_delivery_status` reports late feeds.

**When it fails**

| task | what it means | what to do |
|---|---|---|
| `dbt_build` | a dbt model, test or unit test failed; the log names each failing node | nothing was published; fix the model, or the data through a corrected delivery (`replaces`) |
| `check_delivery_status` | a feed (or a facility of a per-facility feed) is at least `[operations] alert_days_late` days late (`config/penstat.toml`, default 1), per `marts.mart_delivery_status`; the log lists each one with its days late and last period | chase the sender; nothing else is affected (the marts were built and go on to the gate) |

{_RETRIES.format(task="dbt_build", verdict="a failing dbt model or test")}
`check_delivery_status` is not retried: its failure is the report. {_ALERTS}
"""


PUBLISH_DOC = f"""\
### Publish

Stages a publication of the freshly built marts, validates it with the mart suites
(Great Expectations) and, only if the gate passes, switches `published/current` to it
and emits `penstat.published`. Skipped when the marts are unchanged.

**When it fails**

| task | what it means | what to do |
|---|---|---|
| `gate_and_publish` | a mart suite failed on the staged publication; the log and `reports/gate/<version>.json` name each failing expectation | `published/current` is unchanged; look at Data Docs (`reports/data_docs/index.html`) |

{_RETRIES.format(task="gate_and_publish", verdict="a failed gate")} {_ALERTS}
"""


LATENESS_DOC = f"""\
### Lateness, every day

Lateness is otherwise checked only after a build, that is when some feed delivered: a
feed whose sender stopped altogether would never be reported. This DAG runs daily
(06:00 UTC) and, without building anything, reads the ledger `meta.deliveries`
(read-only, in the warehouse pool) and judges each monitored feed that has delivered
before by its last period and its cadence, as of today: a daily period is due the day
after it ends, a monthly one the day after its month ends, a yearly extraction a year
after the last.

**When it fails**

| task | what it means | what to do |
|---|---|---|
| `check_delivery_status` | a feed has sent nothing for at least `[operations] alert_days_late` days past its due date (`config/penstat.toml`, default 1); the log lists each feed with its last period and days late | chase the sender; nothing else is affected. Per-facility lateness is reported by `penstat_build` when deliveries arrive |

Not retried: its failure is the report. {_ALERTS}
"""


DASHBOARD_DOC = f"""\
### Dashboard

Started by `penstat.published` (a new publication is current): draws the static
dashboard of the current publication from its `published.duckdb` alone and moves it into
`published/<version>/dashboard/` in one rename (`index.html`, and `dashboard.json` with
its checksums). The publication's data files and manifest are not touched. A publication
that already has a complete dashboard is left as it is. See docs/dashboard.md.

**When it fails**

| task | what it means | what to do |
|---|---|---|
| `build_dashboard` | the dashboard could not be drawn (the log has the error); the publication itself is published and unaffected, it just has no dashboard yet | fix the cause, then clear the task, or run `penstat dashboard --build-only` |

`build_dashboard` is not retried: it reads the publication only, so a failure is a fault
of the code or the disk, not a lock that passes. {_ALERTS}
"""
