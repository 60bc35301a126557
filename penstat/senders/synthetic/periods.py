"""Calendar helpers: the simulated horizon and how deliveries split it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Split = Literal["year", "month", "day"]
SPLITS: tuple[str, ...] = ("year", "month", "day")


@dataclass(frozen=True)
class Period:
    """A delivery period: first and last day (both inclusive) and its label."""

    start: date
    end: date
    label: str  # '2023', '2023-01' or '2023-01-01': used in delivery ids

    def as_manifest(self) -> tuple[str, str]:
        return (self.start.isoformat(), self.end.isoformat())


def horizon_end(start: date, years: int) -> date:
    """Last day of a horizon of `years` whole years from `start`."""
    if years < 1:
        raise ValueError(f"years must be >= 1, got {years}")
    return date(start.year + years, start.month, start.day) - timedelta(days=1)


def history_until(today: date | None = None) -> date:
    """The day before `today` (default: today in UTC): where a history ends so that no
    feed is late today (`generate(..., until=history_until())`, what the demo does)."""
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=1)


def month_start(d: date) -> date:
    return d.replace(day=1)


def month_end(d: date) -> date:
    nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def month_label(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _unit_end(d: date, split: Split) -> tuple[date, str]:
    if split == "year":
        return date(d.year, 12, 31), f"{d.year:04d}"
    if split == "month":
        return month_end(d), month_label(d)
    if split == "day":
        return d, d.isoformat()
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def split_periods(start: date, end: date, split: Split) -> list[Period]:
    """Cut [start, end] into calendar years, months or days (clipped at the edges)."""
    periods: list[Period] = []
    cursor = start
    while cursor <= end:
        unit_end, label = _unit_end(cursor, split)
        last = min(unit_end, end)
        periods.append(Period(cursor, last, label))
        cursor = last + timedelta(days=1)
    return periods


def utc_timestamp(d: date, hour: int = 0) -> str:
    """ISO UTC timestamp 'YYYY-MM-DDTHH:00:00Z' for a day at a whole hour."""
    return f"{d.isoformat()}T{hour:02d}:00:00Z"
