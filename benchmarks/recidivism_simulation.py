"""A lean simulator of the synthetic recidivism model, with the true standardised figures.

`simulate` draws one replicate of the synthetic system's releases with the generator
itself (penstat.senders.synthetic.recidivism.draw_releases: the same people, selection,
returns to custody and outcome model as `make demo`), on a fixed facility register, and
hands back what int_release_outcomes would hold for the mature cohorts, without the
detour through CSV files, ingestion and dbt (those are tested elsewhere; the generator
guarantees that the latent two-year outcome of a mature release is the observed one,
tests/unit/senders/test_synthetic.py). The cohort is built as the pipeline builds it:
a person's first release in the calendar year.

`truth` gives the generator's true standardised rates and differences for exactly the
estimands of penstat.transform.standardisation: the mean over the year's cohort of the
true probability with every member discharged from group g (for a facility type whose
facilities are not all small, the mix of small and other units of its releases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from penstat.senders.synthetic import recidivism as generator
from penstat.senders.synthetic.register import FacilityRegister
from penstat.transform.standardisation import STANDARDISED_GROUPS, pool_years

LAST_MATURE_COHORT = 2022  # of the synthetic extraction (2026-06-30)
SMALL_MAX_PLACES, LARGE_MIN_PLACES = 30, 200  # [classification] of config/penstat.toml


@dataclass(frozen=True)
class Replicate:
    outcomes: pd.DataFrame  # int_release_outcomes columns the models read (mature years)
    base_log_odds: np.ndarray  # generator's log-odds without the small-scale effect, per row
    small: np.ndarray  # discharged from a unit of <= 30 places, per row


def scale_class(capacity: np.ndarray) -> np.ndarray:
    return np.where(capacity <= SMALL_MAX_PLACES, "small",
                    np.where(capacity >= LARGE_MIN_PLACES, "large", "medium"))


def simulate(seed: int, scale: float, register: FacilityRegister,
             last_mature: int = LAST_MATURE_COHORT) -> Replicate:
    releases = generator.draw_releases(seed, scale, register)
    years = releases["release_date"].dt.year.astype(int)
    releases = releases[years <= last_mature].reset_index(drop=True)
    years = releases["release_date"].dt.year.astype(int)
    member = ~releases.assign(_year=years).duplicated(["person_ref", "_year"])
    outcomes = pd.DataFrame({
        "release_id": releases["release_id"],
        "cohort_year": years,
        "age_at_release": years - releases["birth_year"].astype(int),
        "sex": releases["sex"],
        "index_offence": releases["index_offence"],
        "prior_convictions": releases["prior_convictions"],
        "sentence_days": releases["sentence_days"],
        "recid_2y_general": releases["_reoffended"].astype(bool),
        "is_cohort_mature": True,
        "is_cohort_member": member.to_numpy(),
        "scale_class": scale_class(releases["_capacity"].to_numpy()),
        "small_scale_days_group": None,
        "facility_type": releases["_facility_type"].astype(str),
    })
    beta = np.array(list(generator.RISK_COEFFICIENTS.values()))
    eta = generator.risk_design(releases).to_numpy() @ beta
    return Replicate(outcomes, eta, releases["_small"].to_numpy(bool))


def truth(replicate: Replicate) -> pd.DataFrame:
    """True standardised rate and difference from the reference per (group_type, year, group),
    and pooled over the years (cohort_year = 0), with the weights the headline uses."""
    frame = replicate.outcomes
    members = frame["is_cohort_member"].to_numpy()
    rows = []
    effect = generator.TRUE_SMALL_SCALE_LOG_ODDS
    for group_type, (column, reference) in STANDARDISED_GROUPS.items():
        for year, index in frame[members].groupby("cohort_year").groups.items():
            in_year = frame.loc[index]
            eta = replicate.base_log_odds[index]
            small = replicate.small[index]
            rate = {}
            for g, g_index in in_year.groupby(column).groups.items():
                share_small = small[in_year.index.get_indexer(g_index)].mean()
                rate[g] = float(np.mean(share_small / (1 + np.exp(-(eta + effect)))
                                        + (1 - share_small) / (1 + np.exp(-eta))))
            for g, value in rate.items():
                rows.append({"group_type": group_type, "cohort_year": int(year),
                             "group_value": g, "size": len(index), "standardised_rate": value,
                             "standardised_difference": value - rate.get(reference, np.nan)})
    out = pd.DataFrame(rows)
    pooled = []
    for (group_type, g), part in out.groupby(["group_type", "group_value"]):
        w = part["size"].tolist()
        pooled.append({"group_type": group_type, "cohort_year": 0, "group_value": g,
                       "size": sum(w),
                       "standardised_rate": pool_years(w, part["standardised_rate"].tolist(),
                                                       [0.0] * len(w)).value,
                       "standardised_difference": pool_years(
                           w, part["standardised_difference"].tolist(), [0.0] * len(w)).value})
    return pd.concat([out, pd.DataFrame(pooled)], ignore_index=True)
