"""penstat_lateness: lateness judged from the ledger alone, as of a fixed day, no build.

The warehouse holds a ledger (meta.deliveries) only: no marts were ever built. As of
2026-03-10:

- occupancy (daily) last sent 2026-03-08: 2026-03-09 is due on 2026-03-10, on time;
- staffing (monthly) stopped after December 2025: January was due 2026-02-01, 37 late;
- recidivism (yearly) extracted 2025-06-30: the next is due 2026-06-30, on time;
- facility_register (on change): never late.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from penstat.contract.layout import Paths
from penstat.orchestration import lateness, tasks
from penstat.warehouse.schema import connect

TODAY = date(2026, 3, 10)
LEDGER = [  # feed, delivery_id, created_at, period_start, period_end
    ("facility_register", "reg-1", datetime(2022, 12, 31, 2), None, None),
    ("occupancy", "occ-2025", datetime(2026, 1, 1, 2), date(2025, 1, 1), date(2025, 12, 31)),
    ("occupancy", "occ-2026-03-08", datetime(2026, 3, 9, 2), date(2026, 3, 8),
     date(2026, 3, 8)),
    ("staffing", "stf-2025", datetime(2026, 1, 1, 3), date(2025, 1, 1), date(2025, 12, 31)),
    ("recidivism", "rec-2025-06-30", datetime(2025, 6, 30), date(2018, 1, 1),
     date(2025, 6, 30)),
]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Paths:
    monkeypatch.setenv("PENSTAT_HOME", str(tmp_path / "home"))
    paths = Paths.from_env()
    paths.ensure()
    with connect(paths.warehouse) as con:
        for seq, (feed, delivery_id, created, start, end) in enumerate(LEDGER, 1):
            con.execute(
                "INSERT INTO meta.deliveries (delivery_seq, feed, delivery_id, sender, "
                "created_at, period_start, period_end, manifest_sha256, content_sha256, "
                "rows_loaded, loaded_at) VALUES (?, ?, ?, 'TEST', ?, ?, ?, 'm', 'c', 1, ?)",
                [seq, feed, delivery_id, created, start, end, created])
    return paths


def test_each_feed_is_judged_by_its_last_delivery_and_cadence(home):
    rows = {r["feed"]: r for r in lateness.feed_lateness(home.warehouse, TODAY)}
    assert set(rows) == {"occupancy", "staffing", "recidivism"}  # a register is never late
    assert rows["occupancy"] == {
        "feed": "occupancy", "cadence": "daily", "last_period_received": "2026-03-08",
        "last_delivery_id": "occ-2026-03-08", "due": "2026-03-10", "days_late": 0}
    assert (rows["staffing"]["due"], rows["staffing"]["days_late"]) == ("2026-02-01", 37)
    assert (rows["recidivism"]["due"], rows["recidivism"]["days_late"]) == ("2026-06-30", 0)


def test_a_feed_that_stopped_sending_fails_the_check_without_a_delivery(home):
    with pytest.raises(tasks.FeedsLate) as late:
        tasks.check_lateness(TODAY)
    report = str(late.value)
    assert report.splitlines()[0] == \
        "1 feed(s) late as of 2026-03-10 (meta.deliveries; no delivery since):"
    assert "staffing (monthly): 37 days late, last period 2025-12-31 (stf-2025)" in report
    assert "occupancy" not in report and "recidivism" not in report


def test_on_time_feeds_pass(home):
    assert tasks.check_lateness(date(2026, 1, 31)) == {"late": 0, "as_of": "2026-01-31"}
    # one day after occupancy's next period fell due, it is late too
    with pytest.raises(tasks.FeedsLate, match=r"occupancy \(daily\): 1 days late"):
        tasks.check_lateness(date(2026, 3, 11))


def test_the_threshold_is_alert_days_late(home):
    assert lateness.stalled_feeds(home.warehouse, TODAY, 38) == []
    assert [r["feed"] for r in lateness.stalled_feeds(home.warehouse, TODAY, 37)] == \
        ["staffing"]
    assert [r["feed"] for r in lateness.stalled_feeds(home.warehouse, TODAY, 0)] == \
        ["staffing"]  # on time is never late, whatever the threshold


def test_no_warehouse_yet_is_nothing_to_report(tmp_path, monkeypatch):
    monkeypatch.setenv("PENSTAT_HOME", str(tmp_path / "empty"))
    assert tasks.check_lateness(TODAY) == {"late": 0, "as_of": "2026-03-10"}
    assert not Paths.from_env().warehouse.exists()  # read-only: nothing was created


@pytest.mark.parametrize(("cadence", "last", "due"), [
    ("daily", date(2026, 2, 28), date(2026, 3, 2)),
    ("monthly", date(2026, 1, 31), date(2026, 3, 1)),
    ("monthly", date(2026, 1, 1), date(2026, 3, 1)),
    ("monthly", date(2025, 11, 15), date(2026, 1, 1)),
    ("yearly", date(2024, 2, 29), date(2025, 2, 28)),
    ("on_change", date(2026, 1, 1), None),
])
def test_next_due_follows_mart_delivery_status(cadence, last, due):
    assert lateness.next_due(cadence, last, last) == due
