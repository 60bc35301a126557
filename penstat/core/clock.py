"""The one clock: naive UTC timestamps, as the warehouse stores them."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now(whole_seconds: bool = False) -> datetime:
    """Now in UTC, without tzinfo (DuckDB TIMESTAMP columns hold naive UTC).

    `whole_seconds` drops the microseconds (the ledger's load times)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=0) if whole_seconds else now
