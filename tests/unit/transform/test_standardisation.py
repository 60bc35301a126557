"""penstat.transform.standardisation: marginal standardisation on releases with a planted effect.

The data-generating model (`releases`): logit p = -0.4 - 0.03 (age - 35) + 0.6 log1p(priors)
- 0.4 female + 0.5 offence 05 + EFFECT x small, with small units selecting older people with
fewer priors (so the raw gap overstates the effect). The truth of each replicate is the
model's own standardised difference over that replicate's cohort:
mean expit(eta_i + EFFECT) - mean expit(eta_i).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from penstat.transform import risk_model
from penstat.transform.standardisation import (
    ESTIMATED,
    NOT_ESTIMATED,
    pool_years,
    standardise_year,
    standardised_frame,
)

Z = 1.959964
EFFECT = -0.5  # planted small-vs-large log odds ratio
PLANTED_SEED = 20_261_130  # the replicate whose published interval must hold the truth
REPLICATES = 200


def _expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def releases(n: int, seed: int, effect: float = EFFECT, year: int = 2020
             ) -> tuple[pd.DataFrame, float]:
    """One cohort year of releases and the true standardised small - large difference."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, n)
    priors = rng.poisson(3, n)
    female = rng.random(n) < 0.1
    offence = rng.choice(["01", "02", "05"], n, p=[0.2, 0.3, 0.5])
    small = rng.random(n) < _expit(-1.5 + 0.05 * (age - 35) - 0.3 * (priors - 3))
    medium = ~small & (rng.random(n) < 0.3)
    eta = (-0.4 - 0.03 * (age - 35) + 0.6 * np.log1p(priors) - 0.4 * female
           + 0.5 * (offence == "05"))
    y = rng.random(n) < _expit(eta + effect * small)
    frame = pd.DataFrame({
        "release_id": [f"R{year}-{i:06d}" for i in range(n)],
        "cohort_year": year,
        "age_at_release": age,
        "sex": np.where(female, "F", "M"),
        "index_offence": offence,
        "prior_convictions": priors,
        "sentence_days": rng.integers(30, 900, n),
        "recid_2y_general": y,
        "is_cohort_mature": True,
        "is_cohort_member": True,
        "scale_class": np.where(small, "small", np.where(medium, "medium", "large")),
        "facility_type": np.where(small, "detention_house", "prison"),
        "small_scale_days_group": np.where(small, "majority", "none"),
    })
    truth = float(np.mean(_expit(eta + effect)) - np.mean(_expit(eta)))
    return frame, truth


def small_row(frame: pd.DataFrame) -> pd.Series:
    out = standardise_year(frame, "scale_class", 10, 30)
    return out.set_index("group_value").loc["small"]


def test_planted_effect_is_recovered_with_intervals_of_the_right_width():
    """Good case: the published interval holds the truth (seed PLANTED_SEED), and over
    REPLICATES replicates the mean SE is within 10 % of the empirical SD of the error, the
    mean error is below 10 % of the effect and coverage is about 95 %."""
    frame, truth = releases(2500, PLANTED_SEED)
    row = small_row(frame)
    assert row["standardisation_status"] == ESTIMATED
    low = row["standardised_difference"] - Z * row["standardised_difference_se"]
    high = row["standardised_difference"] + Z * row["standardised_difference_se"]
    assert low <= truth <= high, (row["standardised_difference"], low, high, truth)
    assert truth < -0.05  # a real planted effect, not a null one

    errors, ses, truths = [], [], []
    for seed in range(REPLICATES):
        frame, truth = releases(2500, seed)
        row = small_row(frame)
        errors.append(row["standardised_difference"] - truth)
        ses.append(row["standardised_difference_se"])
        truths.append(truth)
    errors, ses = np.array(errors), np.array(ses)
    effect = abs(np.mean(truths))
    assert abs(errors.mean()) < 0.10 * effect, (errors.mean(), effect)
    assert ses.mean() / errors.std(ddof=1) == pytest.approx(1.0, abs=0.10)
    coverage = np.mean(np.abs(errors) <= Z * ses)
    assert 0.92 <= coverage <= 0.98, coverage


def test_the_old_whole_cohort_estimator_is_biased_toward_no_effect():
    """Bad case, failing for the right reason: O/E from a model fitted on the whole cohort
    without a group term (risk_model.fit_expected) lets the small units' own effect into
    their expected values, so their O/E sits between the true O/E and 1."""
    old_errors, new_errors = [], []
    for seed in range(40):
        frame, truth = releases(2500, 10_000 + seed)
        rng = np.random.default_rng(seed)
        frame["cohort_year"] = rng.choice([2019, 2020], len(frame))
        expected = risk_model.expected_frame(frame, 10, 30)
        merged = frame.merge(expected, on="release_id")
        small = merged[merged["scale_class"] == "small"]
        old_oe = small["recid_2y_general"].sum() / small["expected_2y_general"].sum()
        # the true O/E of the small units: their outcome model with and without the effect
        eta = (-0.4 - 0.03 * (small["age_at_release"] - 35)
               + 0.6 * np.log1p(small["prior_convictions"]) - 0.4 * (small["sex"] == "F")
               + 0.5 * (small["index_offence"] == "05")).to_numpy()
        true_oe = _expit(eta + EFFECT).sum() / _expit(eta).sum()
        old_errors.append(old_oe - true_oe)
        new_errors.append(small_row(frame.assign(cohort_year=2020))["standardised_difference"]
                          - truth)
    old_errors = np.array(old_errors)
    # toward 1 (the effect is negative, so upward), by a fifth or more of the true gap
    assert old_errors.mean() > 3 * old_errors.std(ddof=1) / np.sqrt(len(old_errors))
    assert old_errors.mean() > 0.2 * (1 - true_oe)
    new_errors = np.array(new_errors)
    assert abs(new_errors.mean()) < 3 * new_errors.std(ddof=1) / np.sqrt(len(new_errors))


def test_every_group_is_standardised_to_the_same_people():
    frame, _ = releases(3000, 3)
    out = standardise_year(frame, "scale_class", 10, 30).set_index("group_value")
    assert set(out.index) == {"small", "medium", "large"}
    assert (out["standard_size"] == 3000).all()
    assert out.loc["large", "standardised_difference"] == 0
    assert out.loc["large", "reference_group"] == "large"
    # no true medium effect: its interval holds 0
    medium = out.loc["medium"]
    assert abs(medium["standardised_difference"]) <= Z * medium["standardised_difference_se"]
    # selection: the raw gap is more negative than the standardised one
    raw = frame.groupby("scale_class")["recid_2y_general"].mean()
    assert raw["small"] - raw["large"] < out.loc["small", "standardised_difference"] < 0


def test_a_small_group_is_not_estimated_and_the_others_are():
    frame, _ = releases(3000, 4)
    frame.loc[frame.index[:20], "scale_class"] = "unknown"  # 20 < min_level_size
    out = standardise_year(frame, "scale_class", 10, 30).set_index("group_value")
    assert out.loc["unknown", "standardisation_status"] == NOT_ESTIMATED
    assert "fewer than 30" in out.loc["unknown", "standardisation_note"]
    assert pd.isna(out.loc["unknown", "standardised_rate"])
    assert (out.drop(index="unknown")["standardisation_status"] == ESTIMATED).all()
    # the unknown group's people stay in the standard population
    assert (out["standard_size"] == 3000).all()


def test_no_reference_group_means_nothing_is_estimated():
    frame, _ = releases(3000, 5)
    frame = frame[frame["scale_class"] != "large"]
    out = standardise_year(frame, "scale_class", 10, 30)
    assert (out["standardisation_status"] == NOT_ESTIMATED).all()
    assert out["standardisation_note"].str.contains("reference group 'large'").all()


def test_too_few_events_per_parameter_refuses_the_year():
    frame, _ = releases(600, 6)  # about 300 events for 11 parameters: < 50 per parameter
    out = standardise_year(frame, "scale_class", 50, 30)
    assert (out["standardisation_status"] == NOT_ESTIMATED).all()
    assert out["standardisation_note"].str.contains("per parameter").all()


def test_frame_covers_mature_cohort_members_of_each_year_and_attribution():
    a, _ = releases(2500, 7, year=2019)
    b, _ = releases(2500, 8, year=2020)
    frame = pd.concat([a, b], ignore_index=True)
    frame.loc[frame.index[:100], "is_cohort_member"] = False  # later releases of a person
    out = standardised_frame(frame, 10, 30)
    assert set(out["group_type"]) == {"scale_class", "facility_type"}
    sizes = out.groupby("cohort_year")["standard_size"].first()
    assert sizes[2019] == 2400 and sizes[2020] == 2500
    assert not out.duplicated(["cohort_year", "group_type", "group_value"]).any()


def test_pooling_weights_years_and_adds_variances():
    pooled = pool_years([100, 300], [0.1, 0.2], [0.04, 0.02])
    assert pooled.value == pytest.approx(0.175)
    assert pooled.se == pytest.approx(np.sqrt((100 * 0.04) ** 2 + (300 * 0.02) ** 2) / 400)
