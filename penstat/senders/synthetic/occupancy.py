"""Daily occupancy per facility: a census simulated on a day x facility grid.

Population follows certified capacity x a facility's own occupancy rate x
seasonality (winter peak, summer dip) x a mean-reverting random walk (AR(1)
on the log scale). Openings ramp up, closures run down. Admissions and
releases are a facility's base flow plus the day's net change, so
population[t] = population[t-1] + admissions[t] - releases[t] holds exactly.

Every random draw is made day-major on the full facility axis from its own
stream, so simulating a longer horizon reproduces the shorter one exactly:
that is what lets `next_day` continue the delivered series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from penstat.contract.feeds import FEEDS
from penstat.senders.synthetic.register import (
    LARGE_MIN_PLACES,
    SMALL_SCALE_TYPES,
    FacilityRegister,
)
from penstat.senders.synthetic.streams import stream

OCCUPANCY_COLUMNS = FEEDS["occupancy"].file("occupancy").column_names
COUNT_COLUMNS = OCCUPANCY_COLUMNS[2:]  # places_out_of_use ... releases
AR_PERSISTENCE = 0.97  # day-to-day persistence of the occupancy deviation
RAMP_DAYS = 30  # openings and capacity changes fill at 1/RAMP_DAYS of the gap a day
RUNDOWN_DAYS = 60  # a closing facility empties over its last RUNDOWN_DAYS days
OVERCROWDED_SHARE = 0.35  # of large prisons, held at 105-140 % density
WINTER_PEAK_DAY = 15  # day of year of the seasonal peak (mid-January)


@dataclass(frozen=True)
class TypeProfile:
    """Ranges (low, high) a facility of this type draws its parameters from."""

    occupancy_rate: tuple[float, float]
    length_of_stay: tuple[float, float]  # days; sets the base flow of admissions/releases
    remand: tuple[float, float]
    under_18: tuple[float, float]
    age_18_22: tuple[float, float]  # share of those aged 18+


TYPE_PROFILES: dict[str, TypeProfile] = {
    "prison": TypeProfile((0.86, 0.98), (90, 240), (0.05, 0.25), (0, 0), (0.08, 0.15)),
    "remand_centre": TypeProfile((0.85, 0.99), (25, 60), (0.6, 0.9), (0, 0.01), (0.12, 0.2)),
    "open_institution": TypeProfile((0.8, 0.95), (90, 200), (0, 0), (0, 0), (0.06, 0.12)),
    "forensic_unit": TypeProfile((0.88, 0.98), (300, 700), (0, 0.05), (0, 0), (0.03, 0.08)),
    "detention_house": TypeProfile((0.75, 0.95), (60, 150), (0, 0.05), (0, 0), (0.1, 0.2)),
    "transition_house": TypeProfile((0.75, 0.95), (45, 120), (0, 0), (0, 0), (0.08, 0.18)),
    "juvenile_small_scale": TypeProfile((0.7, 0.9), (60, 150), (0.1, 0.3), (0.85, 1.0),
                                        (0.8, 0.95)),
}


@dataclass(frozen=True)
class FacilityProfile:
    """Per-facility parameters (arrays aligned with the register's sorted facility ids)."""

    occupancy_rate: np.ndarray
    overcrowded: np.ndarray
    small_scale_type: np.ndarray
    season_amplitude: np.ndarray
    noise_sd: np.ndarray
    length_of_stay: np.ndarray
    female: np.ndarray
    remand: np.ndarray
    under_18: np.ndarray
    age_18_22: np.ndarray
    out_of_use: np.ndarray


@dataclass(frozen=True)
class OccupancyGrid:
    """The simulated census: arrays of shape (days, facilities); day 0 is the burn-in day
    before the horizon (never delivered) so that flows on the first day are defined."""

    days: pd.DatetimeIndex
    facility_ids: np.ndarray
    valid: np.ndarray  # facility on the register that day
    capacity: np.ndarray
    operational: np.ndarray
    counts: dict[str, np.ndarray]  # COUNT_COLUMNS -> int arrays

    def day_index(self, day: date) -> int:
        return int(self.days.get_loc(pd.Timestamp(day)))

    def frame(self, first: date, last: date) -> pd.DataFrame:
        """occupancy.csv rows for [first, last], ordered by census_date, facility_id."""
        i0, i1 = self.day_index(first), self.day_index(last) + 1
        day_idx, fac_idx = np.nonzero(self.valid[i0:i1])
        census = self.days[i0:i1].strftime("%Y-%m-%d").to_numpy()
        data = {"facility_id": self.facility_ids[fac_idx], "census_date": census[day_idx]}
        for name in COUNT_COLUMNS:
            data[name] = self.counts[name][i0:i1][day_idx, fac_idx]
        return pd.DataFrame(data, columns=list(OCCUPANCY_COLUMNS))


def facility_profile(seed: int, register: FacilityRegister) -> FacilityProfile:
    """Draw each facility's parameters from its type's ranges (one stream, fixed order)."""
    rng = stream(seed, "occupancy-profile")
    fac = register.facilities
    n = len(fac)
    types = fac["facility_type"].to_numpy()

    def draw(attr: str) -> np.ndarray:
        lo = np.array([getattr(TYPE_PROFILES[t], attr)[0] for t in types])
        hi = np.array([getattr(TYPE_PROFILES[t], attr)[1] for t in types])
        return rng.uniform(lo, hi)

    rate = draw("occupancy_rate")
    overcrowded = _overcrowded(rng, types, fac["capacity_places"].to_numpy())
    rate = np.where(overcrowded, rng.uniform(1.08, 1.32, n), rate)
    small = np.isin(types, SMALL_SCALE_TYPES)
    return FacilityProfile(
        occupancy_rate=rate,
        overcrowded=overcrowded,
        small_scale_type=small,
        season_amplitude=rng.uniform(0.015, 0.04, n),
        noise_sd=np.where(small, rng.uniform(0.05, 0.09, n), rng.uniform(0.015, 0.035, n)),
        length_of_stay=draw("length_of_stay"),
        female=_female_share(rng, types, small),
        remand=draw("remand"),
        under_18=draw("under_18"),
        age_18_22=draw("age_18_22"),
        out_of_use=np.where(rng.random(n) < 0.35, 0.0,
                            np.where(small, rng.uniform(0, 0.02, n), rng.uniform(0, 0.03, n))),
    )


def _overcrowded(rng: np.random.Generator, types: np.ndarray, places: np.ndarray) -> np.ndarray:
    """OVERCROWDED_SHARE of the large prisons (at least two where there are two)."""
    large_prison = (types == "prison") & (places >= LARGE_MIN_PLACES)
    n_large = int(large_prison.sum())
    k = max(min(2, n_large), round(OVERCROWDED_SHARE * n_large))
    order = np.argsort(np.where(large_prison, rng.random(len(types)), np.inf), kind="stable")
    overcrowded = np.zeros(len(types), dtype=bool)
    overcrowded[order[:k]] = True
    return overcrowded


def _female_share(rng: np.random.Generator, types: np.ndarray, small: np.ndarray) -> np.ndarray:
    """Women's prisons (about 1 in 10 closed facilities), male-only and mixed ones;
    small-scale units are mixed."""
    n = len(types)
    u = rng.random(n)
    closed = np.where(u < 0.1, rng.uniform(0.95, 1.0, n),
                      np.where(u < 0.6, 0.0, rng.uniform(0.03, 0.12, n)))
    return np.where(small, rng.uniform(0.1, 0.45, n), closed)


def simulate_occupancy(seed: int, register: FacilityRegister, profile: FacilityProfile,
                       start: date, through: date) -> OccupancyGrid:
    """The census from `start` through `through` (plus the burn-in day before `start`)."""
    days = pd.date_range(start - timedelta(days=1), through, freq="D")
    capacity, operational = register.capacity_grid(days)
    valid = capacity > 0
    population = _population(seed, days, register, profile, capacity, operational)
    counts = _composition(seed, population, capacity, valid, profile)
    counts.update(_flows(seed, population, valid, profile))
    return OccupancyGrid(days, register.facility_ids, valid, capacity, operational,
                         {k: counts[k].astype(np.int32) for k in COUNT_COLUMNS})


def _population(seed: int, days: pd.DatetimeIndex, register: FacilityRegister,
                profile: FacilityProfile, capacity: np.ndarray,
                operational: np.ndarray) -> np.ndarray:
    """Persons held at midnight, day x facility."""
    shocks = stream(seed, "occupancy-walk").standard_normal(capacity.shape)
    walk = _mean_reverting_walk(shocks, profile.noise_sd)
    filled = _ramped_capacity(capacity.astype(float))
    doy = days.dayofyear.to_numpy()[:, None]
    season = 1 + profile.season_amplitude * np.cos(2 * np.pi * (doy - WINTER_PEAK_DAY) / 365.25)
    target = filled * profile.occupancy_rate * season * np.exp(walk) * _rundown(days, register)
    population = np.minimum(np.rint(target), 2 * operational)
    return np.where(capacity > 0, population, 0).astype(np.int64)


def _mean_reverting_walk(shocks: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """AR(1) deviations with stationary standard deviation `sd` per facility."""
    innovation = sd * np.sqrt(1 - AR_PERSISTENCE**2)
    walk = np.empty_like(shocks)
    walk[0] = sd * shocks[0]
    for t in range(1, len(shocks)):
        walk[t] = AR_PERSISTENCE * walk[t - 1] + innovation * shocks[t]
    return walk


def _ramped_capacity(capacity: np.ndarray) -> np.ndarray:
    """Capacity as actually filled: a new facility or extra places fill gradually."""
    filled = np.empty_like(capacity)
    filled[0] = capacity[0]
    for t in range(1, len(capacity)):
        step = (capacity[t] - filled[t - 1]) / RAMP_DAYS
        filled[t] = np.where(capacity[t] > filled[t - 1], filled[t - 1] + step, capacity[t])
    return filled


def _rundown(days: pd.DatetimeIndex, register: FacilityRegister) -> np.ndarray:
    """1 normally; falls linearly to near 0 over a closing facility's last days."""
    last = register.facilities["last_day"].to_numpy(dtype="datetime64[D]")
    day = days.to_numpy(dtype="datetime64[D]")[:, None]
    left = (last[None, :] - day).astype("timedelta64[D]").astype(float) + 1
    left = np.where(np.isnat(last)[None, :], np.inf, left)
    return np.clip(left / RUNDOWN_DAYS, 0, 1)


def _composition(seed: int, population: np.ndarray, capacity: np.ndarray, valid: np.ndarray,
                 profile: FacilityProfile) -> dict[str, np.ndarray]:
    """Places out of use and the female, remand, under-18 and 18-22 counts.

    One stream per count: a longer horizon then only appends draws to each."""

    def draw(name: str, n: np.ndarray, share: np.ndarray) -> np.ndarray:
        return stream(seed, f"occupancy-{name}").binomial(n, share)

    out_of_use = draw("places_out_of_use", capacity, profile.out_of_use)
    female = draw("population_female", population, profile.female)
    remand = draw("population_remand", population, profile.remand)
    under_18 = draw("population_under_18", population, profile.under_18)
    age_18_22 = draw("population_18_22", population - under_18, profile.age_18_22)
    return {
        "places_out_of_use": np.where(valid, out_of_use, 0),
        "population": population,
        "population_female": female,
        "population_remand": remand,
        "population_under_18": under_18,
        "population_18_22": age_18_22,
    }


def _flows(seed: int, population: np.ndarray, valid: np.ndarray,
           profile: FacilityProfile) -> dict[str, np.ndarray]:
    """Admissions and releases: a base flow both ways plus the day's net change."""
    rng = stream(seed, "occupancy-flows")
    previous = np.vstack([population[:1], population[:-1]])
    base = rng.poisson(previous / profile.length_of_stay)
    change = population - previous
    admissions = np.where(valid, base + np.maximum(change, 0), 0)
    releases = np.where(valid, base + np.maximum(-change, 0), 0)
    return {"admissions": admissions, "releases": releases}
