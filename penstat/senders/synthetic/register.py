"""The facility register: every facility and its validity intervals (SCD type 2).

Intervals are inclusive at both ends: `valid_to` is the last day a row is
valid, and a facility's next row starts the day after (valid_from = previous
valid_to + 1 day). An empty `valid_to` means still valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import pandas as pd

from penstat.contract.feeds import FACILITY_TYPES, FEEDS
from penstat.senders.synthetic.streams import stream

REGISTER_COLUMNS = FEEDS["facility_register"].file("facilities").column_names
REGISTER_EPOCH = date(2000, 1, 1)  # most facilities are on the register from here
SMALL_MAX_PLACES = 30  # RESCALED: small-scale = at most 30 places
LARGE_MIN_PLACES = 200
MIN_SCALE = 0.05


@dataclass(frozen=True)
class FacilityTypeSpec:
    facility_type: str
    per_scale_1: int  # facilities of this type at scale 1
    minimum: int  # facilities of this type at any scale
    label: str  # used in the facility's name
    small_scale: bool


TYPE_SPECS: tuple[FacilityTypeSpec, ...] = (
    FacilityTypeSpec("prison", 50, 2, "Prison", False),
    FacilityTypeSpec("remand_centre", 22, 1, "Remand Centre", False),
    FacilityTypeSpec("open_institution", 15, 1, "Open Institution", False),
    FacilityTypeSpec("forensic_unit", 10, 1, "Forensic Unit", False),
    FacilityTypeSpec("detention_house", 16, 3, "Detention House", True),
    FacilityTypeSpec("transition_house", 10, 1, "Transition House", True),
    FacilityTypeSpec("juvenile_small_scale", 7, 1, "Youth Unit", True),
)
SMALL_SCALE_TYPES = tuple(s.facility_type for s in TYPE_SPECS if s.small_scale)
assert {s.facility_type for s in TYPE_SPECS} == set(FACILITY_TYPES)

_PLACE_HEADS = ("Ar", "Bel", "Cor", "Dal", "Ems", "Fen", "Gar", "Hol", "Ist", "Kal", "Lin",
                "Mar", "Nor", "Ost", "Pel", "Ros", "Sal", "Ter", "Ulm", "Ves", "Wal", "Zan")
_PLACE_TAILS = ("burg", "dale", "ford", "haven", "hof", "mere", "stad", "wick", "ton",
                "veld", "berg", "lund", "moor", "field")


@dataclass(frozen=True)
class FacilityRegister:
    """All register rows (contract columns; valid_from/valid_to as datetime64, NaT = open)."""

    rows: pd.DataFrame

    @cached_property
    def facility_ids(self) -> np.ndarray:
        return np.sort(self.rows["facility_id"].unique())

    @cached_property
    def facilities(self) -> pd.DataFrame:
        """One row per facility (sorted by id): first row's attributes, first day, last day."""
        ordered = self.rows.sort_values(["facility_id", "valid_from"])
        grouped = ordered.groupby("facility_id", sort=True)
        first = grouped.first()
        first["first_day"] = grouped["valid_from"].min()
        first["last_day"] = grouped["valid_to"].apply(lambda s: s.iloc[-1])
        return first.reset_index()

    def valid_on(self, day: date) -> pd.DataFrame:
        """Register rows in force on `day`."""
        ts = pd.Timestamp(day)
        r = self.rows
        mask = (r["valid_from"] <= ts) & (r["valid_to"].isna() | (r["valid_to"] >= ts))
        return r[mask]

    def capacity_grid(self, days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """(capacity_places, operational_capacity) per day x facility; 0 where not valid."""
        index = {fid: i for i, fid in enumerate(self.facility_ids)}
        capacity = np.zeros((len(days), len(index)), dtype=np.int64)
        operational = np.zeros_like(capacity)
        first = days.searchsorted(self.rows["valid_from"].to_numpy(), side="left")
        to = self.rows["valid_to"].fillna(pd.Timestamp.max.normalize()).to_numpy()
        last = days.searchsorted(to, side="right")
        for row, (i0, i1) in enumerate(zip(first, last, strict=True)):
            col = index[self.rows["facility_id"].iat[row]]
            capacity[i0:i1, col] = self.rows["capacity_places"].iat[row]
            operational[i0:i1, col] = self.rows["operational_capacity"].iat[row]
        return capacity, operational

    def epochs(self, start: date, end: date) -> list[tuple[date, date]]:
        """Consecutive intervals of [start, end] over which the set of valid rows is constant."""
        changes = set(self.rows["valid_from"].dt.date)
        changes |= {d + timedelta(days=1) for d in self.rows["valid_to"].dropna().dt.date}
        cuts = sorted({start} | {d for d in changes if start < d <= end})
        ends = [c - timedelta(days=1) for c in cuts[1:]] + [end]
        return list(zip(cuts, ends, strict=True))


def facility_counts(scale: float) -> dict[str, int]:
    """Facilities per type: proportional to scale, never below the type's minimum."""
    if scale < MIN_SCALE:
        raise ValueError(f"scale must be >= {MIN_SCALE}, got {scale}")
    return {s.facility_type: max(s.minimum, round(s.per_scale_1 * scale)) for s in TYPE_SPECS}


def build_register(seed: int, scale: float, start: date, end: date) -> FacilityRegister:
    """The full register for a system of this scale over the occupancy horizon [start, end]."""
    rng = stream(seed, "register")
    base = _draw_facilities(rng, facility_counts(scale))
    base = _identify(rng, base, scale)
    rows = _apply_events(rng, base, scale, start, end)
    rows = rows.sort_values(["facility_id", "valid_from"], ignore_index=True)
    return FacilityRegister(rows[list(REGISTER_COLUMNS)])


def _draw_facilities(rng: np.random.Generator, counts: dict[str, int]) -> pd.DataFrame:
    parts = [_draw_type(rng, spec, counts[spec.facility_type]) for spec in TYPE_SPECS]
    return pd.concat(parts, ignore_index=True)


def _draw_type(rng: np.random.Generator, spec: FacilityTypeSpec, n: int) -> pd.DataFrame:
    capacity = _draw_capacity(rng, spec.facility_type, n)
    headroom = rng.uniform(1.0, 1.12, n)
    security, community = _draw_security(rng, spec.facility_type, n)
    return pd.DataFrame(
        {
            "facility_type": spec.facility_type,
            "label": spec.label,
            "security_level": security,
            "capacity_places": capacity,
            "operational_capacity": np.ceil(capacity * headroom).astype(np.int64),
            "living_group_size": _draw_living_group(rng, spec.facility_type, capacity),
            "community_integrated": community,
        }
    )


def _draw_capacity(rng: np.random.Generator, facility_type: str, n: int) -> np.ndarray:
    """Certified places: small-scale types <= 30, the rest medium (31..199) or large (>= 200)."""
    if facility_type in ("detention_house", "transition_house"):
        return rng.integers(10, 31, n)
    if facility_type == "juvenile_small_scale":
        return rng.integers(8, 25, n)
    large_share, medium, large_median, large_max = {
        "prison": (0.55, (60, 200), 420, 1200),
        "remand_centre": (0.6, (80, 200), 320, 750),
        "open_institution": (0.15, (40, 200), 240, 320),
        "forensic_unit": (0.0, (40, 181), 200, 200),
    }[facility_type]
    is_large = rng.random(n) < large_share
    excess = np.exp(rng.normal(np.log(large_median - LARGE_MIN_PLACES + 1), 0.7, n))
    large = np.clip(LARGE_MIN_PLACES + excess, LARGE_MIN_PLACES, large_max)
    medium_places = rng.integers(medium[0], medium[1], n)
    return np.where(is_large, np.round(large), medium_places).astype(np.int64)


def _draw_security(rng: np.random.Generator, facility_type: str,
                   n: int) -> tuple[np.ndarray, np.ndarray]:
    levels, probs, community_share = {
        "prison": (("high", "medium"), (0.45, 0.55), 0.0),
        "remand_centre": (("high", "medium"), (0.6, 0.4), 0.0),
        "open_institution": (("open",), (1.0,), 0.35),
        "forensic_unit": (("high", "medium"), (0.7, 0.3), 0.0),
        "detention_house": (("low", "open"), (0.6, 0.4), 1.0),
        "transition_house": (("open", "low"), (0.7, 0.3), 0.9),
        "juvenile_small_scale": (("medium", "low"), (0.4, 0.6), 0.8),
    }[facility_type]
    security = rng.choice(np.array(levels), size=n, p=np.array(probs))
    community = rng.random(n) < community_share
    return security, community


def _draw_living_group(rng: np.random.Generator, facility_type: str,
                       capacity: np.ndarray) -> pd.Series:
    if facility_type in SMALL_SCALE_TYPES:
        group = np.minimum(rng.integers(4, 11, len(capacity)), capacity)
        return pd.Series(group, dtype="Int64")
    group = pd.Series(rng.integers(12, 41, len(capacity)), dtype="Int64")
    unknown = rng.random(len(capacity)) < 0.1  # optional column: some senders leave it empty
    return group.mask(unknown)


def _identify(rng: np.random.Generator, base: pd.DataFrame, scale: float) -> pd.DataFrame:
    """Shuffle, then give ids (SY-0001...), names, regions and first register days."""
    n = len(base)
    base = base.iloc[rng.permutation(n)].reset_index(drop=True)
    width = max(4, len(str(n)))
    base["facility_id"] = [f"SY-{i + 1:0{width}d}" for i in range(n)]
    heads = rng.choice(np.array(_PLACE_HEADS), n)
    tails = rng.choice(np.array(_PLACE_TAILS), n)
    base["name"] = [f"{h}{t} {lab}" for h, t, lab in zip(heads, tails, base["label"], strict=True)]
    base["region"] = rng.choice(_region_codes(scale), n)
    later = rng.random(n) < 0.12  # a minority joined the register after 2000, all before 2017
    offsets = rng.integers(0, (date(2016, 12, 31) - REGISTER_EPOCH).days, n)
    first_days = [REGISTER_EPOCH + timedelta(days=int(o)) if lt else REGISTER_EPOCH
                  for o, lt in zip(offsets, later, strict=True)]
    base["valid_from"] = pd.to_datetime(first_days)
    base["valid_to"] = pd.NaT
    return base


def _region_codes(scale: float) -> np.ndarray:
    """NUTS-2-like codes SY11, SY12, ... (four per first digit)."""
    n = int(np.clip(round(12 * np.sqrt(scale)), 4, 36))
    return np.array([f"SY{1 + i // 4}{1 + i % 4}" for i in range(n)])


def _apply_events(rng: np.random.Generator, base: pd.DataFrame, scale: float,
                  start: date, end: date) -> pd.DataFrame:
    """Register history inside the horizon: a small unit growing past 30 places,
    other capacity changes, openings and closures."""
    since_epoch = base["valid_from"] == pd.Timestamp(REGISTER_EPOCH)
    taken: set[int] = set()

    def pick(mask: pd.Series, k: int) -> list[int]:
        pool = [int(i) for i in np.flatnonzero(mask) if int(i) not in taken]
        chosen = sorted(int(i) for i in rng.choice(pool, size=min(k, len(pool)), replace=False))
        taken.update(chosen)
        return chosen

    dh = base["facility_type"] == "detention_house"
    grower = pick(dh, 1)
    openings = pick(dh, max(1, round(2 * scale)))
    prison = (base["facility_type"] == "prison") & since_epoch
    n_closures = max(1, round(scale))
    closures = pick(prison & (base["capacity_places"] >= LARGE_MIN_PLACES), n_closures) or pick(
        prison, n_closures)
    changeable = base["facility_type"].isin(["prison", "remand_centre", "open_institution"])
    changes = pick(changeable & since_epoch, max(1, round(0.04 * len(base))))

    extra: list[pd.DataFrame] = []
    for i in grower:
        extra.append(_change_capacity(base, i, _mid_month_day(rng, start, end, 0.35, 0.55), 24, 36))
    for i in changes:
        factor = 1 + rng.choice([-1, 1]) * rng.uniform(0.1, 0.3)
        new_places = max(SMALL_MAX_PLACES + 1, round(base.at[i, "capacity_places"] * factor))
        when = _mid_month_day(rng, start, end, 0.1, 0.9)
        extra.append(_change_capacity(base, i, when, None, new_places))
    for i in openings:
        base.at[i, "valid_from"] = pd.Timestamp(_day_within(rng, start, end, 0.15, 0.6))
    for i in closures:
        base.at[i, "valid_to"] = pd.Timestamp(_day_within(rng, start, end, 0.4, 0.85))
    return pd.concat([base, *extra], ignore_index=True)


def _change_capacity(base: pd.DataFrame, i: int, when: date,
                     old_places: int | None, new_places: int) -> pd.DataFrame:
    """End row i the day before `when`; return the row valid from `when` with new places."""
    if old_places is not None:
        base.at[i, "capacity_places"] = old_places
        base.at[i, "operational_capacity"] = old_places + 2
    headroom = base.at[i, "operational_capacity"] / base.at[i, "capacity_places"]
    base.at[i, "valid_to"] = pd.Timestamp(when - timedelta(days=1))
    new = base.loc[[i]].copy()
    new["capacity_places"] = new_places
    new["operational_capacity"] = int(np.ceil(new_places * headroom))
    new["valid_from"] = pd.Timestamp(when)
    new["valid_to"] = pd.NaT
    return new


def _day_within(rng: np.random.Generator, start: date, end: date, lo: float, hi: float) -> date:
    span = (end - start).days
    return start + timedelta(days=int(span * rng.uniform(lo, hi)))


def _mid_month_day(rng: np.random.Generator, start: date, end: date, lo: float, hi: float) -> date:
    """A day between the 10th and the 20th of a month inside the horizon."""
    anchor = _day_within(rng, start, end, lo, hi)
    return anchor.replace(day=int(rng.integers(10, 21)))
