"""regime.csv: monthly work, education, digital contact, time out of cell, release plans.

Small-scale units (detention houses, transition houses, youth units) offer more:
higher shares in work, education and digital contact, more hours out of cell
and more releases with a plan started >= 90 days before release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from penstat.contract.feeds import FEEDS
from penstat.senders.synthetic.monthly import MonthlyCensus
from penstat.senders.synthetic.occupancy import FacilityProfile
from penstat.senders.synthetic.streams import stream

REGIME_COLUMNS = FEEDS["occupancy"].file("regime").column_names
MISSING_HOURS_SHARE = 0.02  # optional column: some large-facility months lack it


@dataclass(frozen=True)
class RegimeProfile:
    work: np.ndarray
    education: np.ndarray
    digital: np.ndarray
    hours_out: np.ndarray
    plan: np.ndarray


def regime_profile(seed: int, types: np.ndarray, profile: FacilityProfile) -> RegimeProfile:
    rng = stream(seed, "regime-profile")
    n = len(types)
    small = profile.small_scale_type

    def pick(small_range: tuple[float, float], other_range: tuple[float, float]) -> np.ndarray:
        return np.where(small, rng.uniform(*small_range, n), rng.uniform(*other_range, n))

    work = pick((0.55, 0.85), (0.3, 0.55))
    work = np.where(types == "forensic_unit", rng.uniform(0.15, 0.3, n), work)
    education = pick((0.3, 0.55), (0.12, 0.3))
    education = np.where(types == "juvenile_small_scale", rng.uniform(0.8, 0.95, n), education)
    hours = pick((10, 14), (5.5, 9)) + np.where(types == "open_institution", 5.0, 0.0)
    hours = hours - np.where(profile.overcrowded, 1.5, 0.0)
    return RegimeProfile(work, education, pick((0.7, 0.95), (0.3, 0.65)), hours,
                         pick((0.75, 0.95), (0.35, 0.65)))


def regime_frame(seed: int, census: MonthlyCensus, types: np.ndarray,
                 profile: FacilityProfile) -> pd.DataFrame:
    """One row per facility-month with days on the register, ordered by month, facility_id."""
    p = regime_profile(seed, types, profile)
    rng = stream(seed, "regime")
    shape = census.avg_population.shape
    base = np.floor(np.nan_to_num(census.avg_population)).astype(np.int64)

    def monthly_share(share: np.ndarray) -> np.ndarray:
        return np.clip(share * (1 + rng.normal(0, 0.05, shape)), 0, 1)

    in_paid_work = rng.binomial(base, monthly_share(p.work))
    in_education = rng.binomial(base, monthly_share(p.education))
    with_digital = rng.binomial(base, monthly_share(p.digital))
    hours = np.round(np.maximum(p.hours_out + rng.normal(0, 0.3, shape), 0), 1)
    unrecorded = (rng.random(shape) < MISSING_HOURS_SHARE) & ~profile.small_scale_type
    hours = np.where(unrecorded, np.nan, hours)
    with_plan = rng.binomial(census.releases, monthly_share(p.plan))
    m, f = np.nonzero(census.present)
    return pd.DataFrame(
        {
            "facility_id": census.facility_ids[f],
            "month": census.months[m],
            "avg_population": census.avg_population[m, f],
            "in_paid_work": in_paid_work[m, f],
            "in_education": in_education[m, f],
            "with_digital_contact": with_digital[m, f],
            "avg_hours_out_of_cell": hours[m, f],
            "releases_total": census.releases[m, f],
            "releases_with_plan": with_plan[m, f],
        },
        columns=list(REGIME_COLUMNS),
    )
