"""Lateness as of a day, from the ledger alone: no build, no marts (DAG penstat_lateness).

`marts.mart_delivery_status` judges every feed and facility, but only when a build runs,
that is when some feed delivered: a sender that stops altogether is never reported. This
judges each monitored feed by its last delivery in `meta.deliveries` (read-only) and its
cadence (`Feed.cadence`, as in the dbt seed `feed_cadence`), with the rules of the mart:

    daily     the period after the last one is due the day after it: last + 2 days
    monthly   the month after the last one is due the day after it ends
    yearly    the next extraction is due a year after the last (created_at)
    on_change never late

A feed that never delivered is not judged here (`penstat_build` reports it). Lateness
here is per feed, not per facility, so a facility that closed (status `closed` in the
mart, never alerted) plays no part.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from penstat.contract.feeds import FEEDS
from penstat.warehouse.schema import connect


def _add_months(d: date, months: int) -> date:
    """`d` plus whole months, clipped at the end of the month (like dbt's add_months)."""
    year, month0 = divmod(d.year * 12 + d.month - 1 + months, 12)
    first = date(year, month0 + 1, 1)
    following = date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1)
    return min(first + timedelta(days=d.day - 1), following - timedelta(days=1))


def next_due(cadence: str, last_period: date, last_created: date) -> date | None:
    """The day the feed's next delivery is due, after its last period (or extraction)."""
    if cadence == "daily":
        return last_period + timedelta(days=2)
    if cadence == "monthly":
        return _add_months(last_period.replace(day=1), 2)
    if cadence == "yearly":
        return _add_months(last_created, 12)
    return None  # on_change: a register is sent when it changes


def feed_lateness(warehouse: Path, today: date) -> list[dict]:
    """Per monitored feed that has delivered: last period, next due day and days late."""
    if not warehouse.exists():
        return []
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT feed, max(coalesce(period_end, CAST(created_at AS DATE))), "
            "CAST(max(created_at) AS DATE), arg_max(delivery_id, delivery_seq) "
            "FROM meta.deliveries GROUP BY feed ORDER BY feed").fetchall()
    out = []
    for feed, last_period, last_created, delivery_id in rows:
        spec = FEEDS.get(feed)
        if spec is None or not spec.monitored:
            continue
        due = next_due(spec.cadence, last_period, last_created)
        if due is None:
            continue
        out.append({"feed": feed, "cadence": spec.cadence,
                    "last_period_received": last_period.isoformat(),
                    "last_delivery_id": delivery_id, "due": due.isoformat(),
                    "days_late": max(0, (today - due).days)})
    return out


def stalled_feeds(warehouse: Path, today: date, min_days_late: int) -> list[dict]:
    """The feeds late by at least `min_days_late` (and at least one) days as of `today`."""
    return [row for row in feed_lateness(warehouse, today)
            if row["days_late"] >= max(1, min_days_late)]


def stalled_report(late: list[dict], today: date) -> str | None:
    """None if every feed is on time, else one line per late feed."""
    if not late:
        return None
    lines = [f"{len(late)} feed(s) late as of {today.isoformat()} (meta.deliveries; "
             "no delivery since):"]
    lines += [f"  {row['feed']} ({row['cadence']}): {row['days_late']} days late, last period "
              f"{row['last_period_received']} ({row['last_delivery_id']}), next was due "
              f"{row['due']}" for row in late]
    return "\n".join(lines)
