"""Task bodies of the DAGs: plain functions over penstat's packages, testable without Airflow."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ingestion.pipeline import ingest_feed
from ingestion.settings import Config, Paths

log = logging.getLogger(__name__)


class DeliveriesRejected(RuntimeError):
    """One or more deliveries went to quarantine in this run (raised for the operator)."""


def ingest(feed: str) -> list[dict]:
    """Ingest every pending delivery of the feed; a JSON-able summary per delivery."""
    outcomes = ingest_feed(feed)
    if not outcomes:
        log.info("no pending delivery for %s (the doorbell rang for nothing)", feed)
    return [
        {"feed": o.feed, "delivery_id": o.delivery_id, "outcome": o.outcome, "rows": o.rows,
         "reason": o.problems[0].one_line() if o.problems else None, "location": o.location}
        for o in outcomes
    ]


def loaded_any(outcomes: list[dict]) -> bool:
    return any(o["outcome"] == "loaded" for o in outcomes)


def rejection_report(outcomes: list[dict]) -> str | None:
    """None if nothing was quarantined, else the text for the task log and the operator."""
    rejected = [o for o in outcomes if o["outcome"] == "quarantined"]
    if not rejected:
        return None
    lines = [f"{len(rejected)} delivery(ies) quarantined:"]
    lines += [f"  {o['feed']}/{o['delivery_id']}: {o['reason']} ({o['location']})"
              for o in rejected]
    return "\n".join(lines)


def build_marts() -> dict:
    """dbt build of staging, intermediate and marts (tests and unit tests included)."""
    from transform.dbt_runner import build

    paths = Paths.from_env()
    variables = {**Config.load().dbt_vars, "as_of_date": datetime.now(UTC).date().isoformat()}
    report = build(paths.home, variables)
    counts = {f"{kind}:{status}": n for (kind, status), n in report.by_type_and_status.items()}
    log.info("dbt build finished in %.1fs: %s", report.elapsed_seconds, counts)
    return {"elapsed_seconds": round(report.elapsed_seconds, 1), "nodes": counts}


def gate_and_publish() -> dict:
    """Validate the staged publication with the mart suites and switch `current`."""
    from publication.publish import publish

    publication = publish(Paths.from_env())
    return {"version": publication.version, "unchanged": publication.unchanged,
            "marts": publication.marts}
