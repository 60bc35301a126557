"""Task bodies of the DAGs: plain functions over penstat's packages, testable without Airflow.

Every body that opens the warehouse runs in the one-slot pool `penstat_warehouse`
under Airflow; called directly (tests, scripts), the caller serialises them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime

import duckdb

from penstat.contract.layout import Paths
from penstat.core.clock import utc_now
from penstat.core.config import Config
from penstat.core.faults import kill_point
from penstat.ingestion.pipeline import ingest_feed
from penstat.orchestration import lateness
from penstat.transform.increments import plan_build, project_fingerprint
from penstat.warehouse.schema import connect

log = logging.getLogger(__name__)


class FeedsLate(RuntimeError):
    """mart_delivery_status says a feed is late (raised for the operator)."""


def _unbuilt(paths: Paths, feed: str) -> list[tuple[str, int]]:
    """Deliveries of `feed` in the ledger that no finished dbt build has seen yet."""
    if not paths.warehouse.exists():
        return []
    with connect(paths.warehouse, read_only=True) as con:
        try:
            return con.execute(
                "SELECT delivery_id, rows_loaded FROM meta.deliveries WHERE feed = ? AND "
                "delivery_seq > (SELECT coalesce(max(max_delivery_seq), 0) FROM meta.builds "
                "WHERE finished_at IS NOT NULL) ORDER BY delivery_seq", [feed]).fetchall()
        except duckdb.CatalogException:  # a warehouse from before meta.builds existed
            return []


def ingest(feed: str) -> list[dict]:
    """Ingest every pending delivery of the feed; a JSON-able summary per delivery.

    Deliveries loaded by an earlier run that was killed before the build was
    triggered are listed as `awaiting_build`, so a rerun still announces them.
    """
    paths = Paths.from_env()
    outcomes = ingest_feed(feed, paths)
    if not outcomes:
        log.info("no pending delivery for %s (the doorbell rang for nothing)", feed)
    summary = [
        {"feed": o.feed, "delivery_id": o.delivery_id, "outcome": o.outcome, "rows": o.rows,
         "reason": o.problems[0].one_line() if o.problems else None, "location": o.location}
        for o in outcomes
    ]
    reported = {o.delivery_id for o in outcomes if o.outcome == "loaded"}
    for delivery_id, rows in _unbuilt(paths, feed):
        if delivery_id not in reported:
            log.info("%s/%s was loaded earlier but not built yet: announcing it", feed,
                     delivery_id)
            summary.append({"feed": feed, "delivery_id": delivery_id,
                            "outcome": "awaiting_build", "rows": rows, "reason": None,
                            "location": None})
    return summary


def loaded_any(outcomes: list[dict]) -> bool:
    return any(o["outcome"] in ("loaded", "awaiting_build") for o in outcomes)


def rejection_report(outcomes: list[dict]) -> str | None:
    """None if nothing was quarantined, else the text for the task log and the operator."""
    rejected = [o for o in outcomes if o["outcome"] == "quarantined"]
    if not rejected:
        return None
    lines = [f"{len(rejected)} delivery(ies) quarantined:"]
    lines += [f"  {o['feed']}/{o['delivery_id']}: {o['reason']} ({o['location']})"
              for o in rejected]
    return "\n".join(lines)


def build_marts(full_refresh: bool = False, as_of_date: str | None = None,
                skip_when_current: bool = False) -> dict:
    """dbt build of what the deliveries since the last finished build touch.

    penstat.transform.increments plans it: incremental (only the models downstream of
    the feeds that delivered, and in the period models only the months those
    deliveries touch) or full (first build, register delivery, changed project,
    or `full_refresh`, which `make rebuild` asks for). With `skip_when_current` (the
    DAG), a build with no delivery since the last finished one does nothing and
    returns mode `current` (a doorbell rung twice for one delivery, a delivery loaded
    by an earlier run already built). `as_of_date` (default: today)
    is the date lateness and cohort maturity are measured at. dbt unit tests are not
    run here (they test the SQL: `make test` runs them); data tests are.

    The build is recorded in meta.builds: started (with the ledger position it
    builds from and its plan) before dbt runs, finished after. Publication lists
    exactly the deliveries up to that position, and refuses marts whose build
    never finished; the next plan starts from the last finished build.
    """
    paths = Paths.from_env()
    as_of_date = as_of_date or datetime.now(UTC).date().isoformat()
    variables = {**Config.load().dbt_vars, "as_of_date": as_of_date}
    fingerprint = project_fingerprint(variables)
    with connect(paths.warehouse) as con:
        seq = con.execute("SELECT coalesce(max(delivery_seq), 0) FROM meta.deliveries"
                          ).fetchone()[0]
        plan = plan_build(con, int(seq), fingerprint, full_refresh=full_refresh)
        if skip_when_current and plan.mode == "incremental" \
                and plan.since_delivery_seq >= plan.up_to_delivery_seq:
            log.info("dbt build: nothing delivered since the last finished build "
                     "(ledger up to delivery %s): the marts are current", seq)
            return {"mode": "current", "max_delivery_seq": int(seq)}
        build_id = con.execute("SELECT coalesce(max(build_id), 0) + 1 FROM meta.builds"
                               ).fetchone()[0]
        con.execute(
            "INSERT INTO meta.builds (build_id, max_delivery_seq, started_at, finished_at, "
            "mode, months, project_fingerprint) VALUES (?, ?, ?, NULL, ?, ?, ?)",
            [build_id, seq, utc_now(), plan.mode,
             json.dumps([m.isoformat() for m in plan.months]), fingerprint])
    log.info("dbt build %s: %s", build_id, plan.describe())
    kill_point("build.started")
    # dbt is heavy: import it when due
    from penstat.transform.dbt_runner import build, docs_path, target_path
    from penstat.transform.lineage import record_dbt_build

    # the docs site describes models and columns, which only a full build can change
    docs = plan.mode == "full" or not (docs_path(paths.home) / "index.html").is_file()
    report = build(paths.home, {**variables, **plan.dbt_vars}, docs=docs, unit_tests=False,
                   select=plan.select, full_refresh=plan.mode == "full")
    kill_point("build.finished")
    record_dbt_build(paths.home, target_path(paths.home))
    with connect(paths.warehouse) as con:
        con.execute("UPDATE meta.builds SET finished_at = ? WHERE build_id = ?",
                    [utc_now(), build_id])
    counts = {f"{kind}:{status}": n for (kind, status), n in report.by_type_and_status.items()}
    log.info("dbt build %s (ledger up to delivery %s) finished in %.1fs: %s", build_id, seq,
             report.elapsed_seconds, counts)
    return {"elapsed_seconds": round(report.elapsed_seconds, 1), "nodes": counts,
            "build_id": int(build_id), "max_delivery_seq": int(seq), "mode": plan.mode,
            "months": [m.isoformat() for m in plan.months],
            **late_summary(late_feeds(paths))}


# the late rows a build hands to check_delivery_status (its XCom stays small)
LATE_ROWS_KEPT = 50


def late_summary(late: list[dict]) -> dict:
    """What check_delivery_status needs of late_feeds(), read by the build in the
    warehouse pool: the report task then needs neither the pool nor the warehouse, and
    the publication of the new marts does not wait for it."""
    return {"late": late[:LATE_ROWS_KEPT], "late_total": len(late)}


def alert_days_late() -> int:
    """`[operations] alert_days_late`: days late from which a feed is reported."""
    return int(Config.load().values.get("operations", {}).get("alert_days_late", 1))


def late_feeds(paths: Paths | None = None, min_days_late: int | None = None) -> list[dict]:
    """Rows of marts.mart_delivery_status that are late by at least `min_days_late` days
    (status `late` only: `ok` and `closed`, a facility that closed with nothing owed,
    are never reported)."""
    paths = paths or Paths.from_env()
    if min_days_late is None:
        min_days_late = alert_days_late()
    with connect(paths.warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT feed, facility_id, last_period_received, days_late, last_delivery_id "
            "FROM marts.mart_delivery_status WHERE status = 'late' "
            "AND (days_late IS NULL OR days_late >= ?) ORDER BY feed, facility_id NULLS FIRST",
            [min_days_late]).fetchall()
    return [{"feed": f, "facility_id": fid, "last_period_received":
             None if last is None else last.isoformat(), "days_late": days,
             "last_delivery_id": did} for f, fid, last, days, did in rows]


def lateness_report(late: list[dict], limit: int = 20, total: int | None = None
                    ) -> str | None:
    """None if every feed is on time, else one line per late feed and facility (the
    first `limit`; `total`: how many are late, when `late` holds only the first)."""
    if not late:
        return None
    total = len(late) if total is None else total
    lines = [f"{total} feed/facility pair(s) late (marts.mart_delivery_status):"]
    for row in late[:limit]:
        where = f"{row['feed']}/{row['facility_id']}" if row["facility_id"] else row["feed"]
        days = "never delivered" if row["days_late"] is None else f"{row['days_late']} days late"
        lines.append(f"  {where}: {days}, last period {row['last_period_received']}")
    if total > min(limit, len(late)):
        lines.append(f"  ... and {total - min(limit, len(late))} more")
    return "\n".join(lines)


def check_delivery_status(built: dict | None = None) -> dict:
    """Raise FeedsLate if a feed is late, so the failure callback alerts the operator.
    `built`: late_summary() as the build read it (default: read the warehouse now)."""
    built = late_summary(late_feeds()) if built is None else built
    report = lateness_report(built["late"], total=built["late_total"])
    if report:
        raise FeedsLate(report)
    return {"late": 0}


def check_lateness(today: date | None = None, paths: Paths | None = None) -> dict:
    """Raise FeedsLate if a feed sent nothing for `[operations] alert_days_late` days past
    its due day, judged from the ledger as of `today` (default: today, UTC) without a
    build (penstat.orchestration.lateness); read-only."""
    paths = paths or Paths.from_env()
    today = today or datetime.now(UTC).date()
    late = lateness.stalled_feeds(paths.warehouse, today, alert_days_late())
    report = lateness.stalled_report(late, today)
    if report:
        raise FeedsLate(report)
    return {"late": 0, "as_of": today.isoformat()}


def is_verdict(exc: BaseException) -> bool:
    """A failure that a retry cannot change: a failing dbt model or test, a failed gate."""
    from penstat.publication.publish import GateFailed
    from penstat.transform.dbt_runner import DbtBuildFailed

    return isinstance(exc, DbtBuildFailed | GateFailed)


def gate_and_publish() -> dict:
    """Validate the staged publication with the mart suites and switch `current`; then
    write the publication's lineage file (penstat.publication.lineage)."""
    # the publisher imports Great Expectations (about 6 s): only the publish task pays it
    from penstat.publication.lineage import record_publication
    from penstat.publication.publish import publish

    paths = Paths.from_env()
    publication = publish(paths)
    lineage = None
    if not publication.unchanged:
        manifest = json.loads((publication.folder / "manifest.json").read_text())
        lineage = record_publication(paths, publication.version, manifest["published_at"],
                                     publication.deliveries, publication.marts)
    return {"version": publication.version, "unchanged": publication.unchanged,
            "marts": publication.marts, "revisions": publication.revisions,
            "retired": publication.retired,
            "lineage": None if lineage is None else str(lineage)}


def build_dashboard(version: str | None = None, rebuild: bool = False) -> dict:
    """The static dashboard of a publication (default: `current`), built from its
    published.duckdb into `published/<version>/dashboard/` unless it is there already
    (penstat.reporting.dashboard). Reads the publication only: it needs no warehouse slot."""
    from penstat.reporting.dashboard import INDEX, install_dashboard

    paths = Paths.from_env()
    publication = paths.published / version if version else paths.current_publication
    if not (publication / "published.duckdb").is_file():
        raise FileNotFoundError(f"no publication at {publication}: nothing to draw")
    dashboard = install_dashboard(publication, rebuild=rebuild)
    return {"version": dashboard.version, "index": str(dashboard.folder / INDEX),
            "built": dashboard.built, "seconds": round(dashboard.seconds, 1)}
