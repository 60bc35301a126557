"""The synthetic senders: turn the system into deliveries in an inbox."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from penstat.contract.feeds import MANIFEST, V1_FEEDS
from penstat.senders.delivery import csv_bytes, ring_doorbell, write_delivery
from penstat.senders.synthetic.occupancy import OCCUPANCY_COLUMNS
from penstat.senders.synthetic.periods import (
    Period,
    Split,
    month_end,
    split_periods,
    utc_timestamp,
)
from penstat.senders.synthetic.recidivism import RECONVICTION_COLUMNS, RELEASE_COLUMNS
from penstat.senders.synthetic.regime import REGIME_COLUMNS
from penstat.senders.synthetic.register import REGISTER_COLUMNS
from penstat.senders.synthetic.staffing import STAFFING_COLUMNS
from penstat.senders.synthetic.system import (
    DEFAULT_SEED,
    DEFAULT_START,
    DEFAULT_YEARS,
    SyntheticSystem,
    SystemConfig,
)

# The synthetic system sends the four contract-v1 feeds (v2 feeds come from real sources).
ALL_FEEDS: tuple[str, ...] = V1_FEEDS
PRISON_ADMINISTRATION = "SYN-PA"  # sends the register, occupancy and staffing
CRIMINAL_RECORDS = "SYN-CRO"  # sends the recidivism feed
REGISTER_DELIVERY_ID = "syn-reg-1"


def generate(
    inbox: Path,
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    split: Split = "year",
    *,
    start: date = DEFAULT_START,
    years: int = DEFAULT_YEARS,
    feeds: Iterable[str] = ALL_FEEDS,
    until: date | None = None,
) -> list[Path]:
    """Write the register, occupancy, staffing and recidivism deliveries (or the chosen
    `feeds`) and ring each feed's doorbell once at the end. Returns the delivery folders.

    `until` ends the history on that day instead of after `years` (the demo and the
    end-to-end test pass yesterday, `periods.history_until()`, so that no feed is late
    today): the criminal-records extraction is then that day too, and a delivery whose
    period ends on it is created at 00:00 UTC the next day, never later than now."""
    inbox = Path(inbox)
    feeds = tuple(feeds)
    unknown = set(feeds) - set(ALL_FEEDS)
    if unknown:
        raise ValueError(f"unknown feeds {sorted(unknown)}; expected some of {ALL_FEEDS}")
    system = SyntheticSystem(_config(seed, scale, start, years, until))
    writers = {
        "facility_register": lambda: [_send_register(inbox, system)],
        "occupancy": lambda: _send_occupancy(inbox, system, split),
        "staffing": lambda: _send_staffing(inbox, system, "month" if split == "day" else split),
        "recidivism": lambda: [_send_recidivism(inbox, system)],
    }
    folders = [folder for feed in ALL_FEEDS if feed in feeds for folder in writers[feed]()]
    for feed in feeds:
        ring_doorbell(inbox / feed)
    return folders


def next_day(
    inbox: Path,
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    day: date = date(2026, 1, 1),
    *,
    start: date = DEFAULT_START,
    years: int = DEFAULT_YEARS,
    ring: bool = True,
    until: date | None = None,
    created_at: str | None = None,
) -> Path:
    """One occupancy delivery for `day`, continuing the generated census (same seed,
    scale, start, years and until) for the facilities on the register that day. With
    `ring=False` the doorbell is left alone (the caller announces it another way).
    `created_at` (default: 02:00 UTC the day after `day`) must not lie in the future
    when the delivery is ingested: a delivery for today passes the current time."""
    system = SyntheticSystem(_config(seed, scale, start, years, until))
    rows = system.occupancy_through(day).frame(day, day)
    return write_delivery(
        Path(inbox), "occupancy", f"syn-occ-{day.isoformat()}",
        {"occupancy.csv": csv_bytes(rows, OCCUPANCY_COLUMNS)},
        sender=PRISON_ADMINISTRATION,
        created_at=created_at or utc_timestamp(day + timedelta(days=1), 2),
        period=(day.isoformat(), day.isoformat()),
        ring=ring,
    )


def _config(seed: int, scale: float, start: date, years: int,
            until: date | None) -> SystemConfig:
    """The system's configuration; a history ending `until` is extracted that day."""
    if until is None:
        return SystemConfig(seed=seed, scale=scale, start=start, years=years)
    return SystemConfig(seed=seed, scale=scale, start=start, years=years, until=until,
                        extraction=until)


def _created_at(system: SyntheticSystem, period: Period, hour: int) -> str:
    """`hour` UTC the day after the period; 00:00 for the last period of a history
    ending `until` (yesterday), so that it is not created later than now."""
    if system.config.until is not None and period.end >= system.config.until:
        hour = 0
    return utc_timestamp(period.end + timedelta(days=1), hour)


def summarize(folders: Iterable[Path]) -> dict[str, tuple[int, dict[str, int]]]:
    """Per feed: number of deliveries and data rows per file stem (from the manifests)."""
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for folder in folders:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        count, rows = out.get(manifest["feed"], (0, {}))
        for entry in manifest["files"]:
            stem = entry["name"].rsplit(".", 1)[0]
            rows[stem] = rows.get(stem, 0) + entry["rows"]
        out[manifest["feed"]] = (count + 1, rows)
    return out


def _send_register(inbox: Path, system: SyntheticSystem) -> Path:
    """The full register, as known before the first census day."""
    return write_delivery(
        inbox, "facility_register", REGISTER_DELIVERY_ID,
        {"facilities.csv": csv_bytes(system.register.rows, REGISTER_COLUMNS)},
        sender=PRISON_ADMINISTRATION,
        created_at=utc_timestamp(system.config.start - timedelta(days=1), 2),
        period=None, ring=False,
    )


def _send_occupancy(inbox: Path, system: SyntheticSystem, split: Split) -> list[Path]:
    """Per period: occupancy.csv for its days, regime.csv for the months ending in it."""
    folders = []
    for period in split_periods(system.config.start, system.config.end, split):
        files = {"occupancy.csv": csv_bytes(system.occupancy.frame(period.start, period.end),
                                            OCCUPANCY_COLUMNS)}
        regime = _months_closing_in(system.regime, period, system.config.end)
        if len(regime):
            files["regime.csv"] = csv_bytes(regime, REGIME_COLUMNS)
        folders.append(write_delivery(
            inbox, "occupancy", f"syn-occ-{period.label}", files,
            sender=PRISON_ADMINISTRATION,
            created_at=_created_at(system, period, 2),
            period=period.as_manifest(), ring=False,
        ))
    return folders


def _send_staffing(inbox: Path, system: SyntheticSystem, split: Split) -> list[Path]:
    folders = []
    for period in split_periods(system.config.start, system.config.end, split):
        rows = _months_closing_in(system.staffing, period, system.config.end)
        folders.append(write_delivery(
            inbox, "staffing", f"syn-stf-{period.label}",
            {"staffing.csv": csv_bytes(rows, STAFFING_COLUMNS)},
            sender=PRISON_ADMINISTRATION,
            created_at=_created_at(system, period, 3),
            period=period.as_manifest(), ring=False,
        ))
    return folders


def _send_recidivism(inbox: Path, system: SyntheticSystem) -> Path:
    """Both files in one delivery; created_at is the criminal-records extraction date."""
    data = system.recidivism
    c = system.config
    return write_delivery(
        inbox, "recidivism", f"syn-rec-{c.extraction.isoformat()}",
        {"releases.csv": csv_bytes(data.releases, RELEASE_COLUMNS),
         "reconvictions.csv": csv_bytes(data.reconvictions, RECONVICTION_COLUMNS)},
        sender=CRIMINAL_RECORDS,
        created_at=utc_timestamp(c.extraction, 0),
        period=(date(c.cohorts[0], 1, 1).isoformat(), c.extraction.isoformat()),
        ring=False,
    )


def _months_closing_in(monthly: pd.DataFrame, period: Period, horizon_end: date) -> pd.DataFrame:
    """Rows of the months whose last census day (within the horizon) falls in the period."""
    closing = {m: min(month_end(date.fromisoformat(f"{m}-01")), horizon_end)
               for m in monthly["month"].unique()}
    months = [m for m, last in closing.items() if period.start <= last <= period.end]
    return monthly[monthly["month"].isin(months)]
