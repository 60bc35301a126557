"""staffing.csv: monthly FTE, headcount, vacancies and training per staff category.

Custodial FTE follows the facility's places and population; small-scale units
staff more per detainee (fewer detainees per custodial FTE) and have more
rehabilitation staff. The other categories are facility-specific ratios to
custodial FTE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from penstat.contract.feeds import FEEDS, STAFF_CATEGORIES
from penstat.senders.synthetic.monthly import MonthlyCensus
from penstat.senders.synthetic.occupancy import FacilityProfile
from penstat.senders.synthetic.streams import stream

STAFFING_COLUMNS = FEEDS["staffing"].file("staffing").column_names

# Detainees per custodial FTE, by facility type (low, high).
DETAINEES_PER_CUSTODIAL_FTE: dict[str, tuple[float, float]] = {
    "prison": (2.2, 3.8),
    "remand_centre": (2.2, 3.5),
    "open_institution": (3.5, 5.5),
    "forensic_unit": (0.8, 1.4),
    "detention_house": (1.0, 1.8),
    "transition_house": (1.3, 2.2),
    "juvenile_small_scale": (0.7, 1.2),
}
# Non-custodial FTE as a ratio to custodial FTE: (small-scale range, other range).
CATEGORY_RATIOS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "rehabilitation": ((0.2, 0.35), (0.1, 0.2)),
    "education": ((0.08, 0.15), (0.04, 0.08)),
    "healthcare": ((0.05, 0.1), (0.05, 0.1)),
    "management": ((0.08, 0.12), (0.04, 0.07)),
    "other": ((0.08, 0.15), (0.1, 0.2)),
}


def category_ratios(rng: np.random.Generator, types: np.ndarray,
                    small: np.ndarray) -> np.ndarray:
    """(facilities, categories) FTE ratio to custodial FTE; custodial itself is 1."""
    n = len(types)
    ratios = [np.ones(n)]
    for category in STAFF_CATEGORIES[1:]:
        small_range, other_range = CATEGORY_RATIOS[category]
        ratios.append(np.where(small, rng.uniform(*small_range, n), rng.uniform(*other_range, n)))
    out = np.column_stack(ratios)
    health = STAFF_CATEGORIES.index("healthcare")
    out[:, health] = np.where(types == "forensic_unit", rng.uniform(0.3, 0.5, n), out[:, health])
    education = STAFF_CATEGORIES.index("education")
    out[:, education] = np.where(types == "juvenile_small_scale", rng.uniform(0.25, 0.4, n),
                                 out[:, education])
    return out


def staffing_frame(seed: int, census: MonthlyCensus, types: np.ndarray,
                   profile: FacilityProfile) -> pd.DataFrame:
    """Rows per facility-month x staff category, ordered by month, facility_id, category."""
    rng = stream(seed, "staffing-profile")
    n = len(types)
    small = profile.small_scale_type
    lo = np.array([DETAINEES_PER_CUSTODIAL_FTE[t][0] for t in types])
    hi = np.array([DETAINEES_PER_CUSTODIAL_FTE[t][1] for t in types])
    per_fte = rng.uniform(lo, hi)
    ratios = category_ratios(rng, types, small)
    part_time = rng.uniform(1.02, 1.25, n)
    vacancy = np.where(small, rng.uniform(0.01, 0.08, n), rng.uniform(0.04, 0.15, n))
    trained = np.where(small, rng.uniform(0.7, 0.95, n), rng.uniform(0.4, 0.75, n))

    monthly = stream(seed, "staffing")
    shape = (*census.avg_population.shape, len(STAFF_CATEGORIES))
    planned = 0.5 * np.nan_to_num(census.avg_capacity) * profile.occupancy_rate.clip(max=1.0)
    held = 0.5 * np.nan_to_num(census.avg_population)
    custodial = (planned + held) / per_fte
    fte = custodial[..., None] * ratios[None] * (1 + monthly.normal(0, 0.03, shape))
    fte = np.round(np.maximum(fte, 0), 2)
    headcount = np.ceil(np.round(fte * part_time[None, :, None], 6)).astype(np.int64)
    vacancies = np.round(fte * vacancy[None, :, None] * monthly.uniform(0.5, 1.5, shape), 2)
    trained_count = monthly.binomial(headcount, trained[None, :, None])

    m, f, c = np.nonzero(np.broadcast_to(census.present[..., None], shape))
    return pd.DataFrame(
        {
            "facility_id": census.facility_ids[f],
            "month": census.months[m],
            "staff_category": np.array(STAFF_CATEGORIES)[c],
            "fte": fte[m, f, c],
            "headcount": headcount[m, f, c],
            "vacancies_fte": vacancies[m, f, c],
            "trained_last_24m": trained_count[m, f, c],
        },
        columns=list(STAFFING_COLUMNS),
    )
