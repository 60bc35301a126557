"""penstat.transform.risk_model: the logistic risk model behind O/E, on simulated releases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from penstat.transform import risk_model

Z = 1.959964


def releases(n: int, seed: int, small_effect: float = -0.3) -> pd.DataFrame:
    """Releases with a known outcome model: logit p = -0.5 - 0.03 (age - 35) + 0.6 log1p(priors)
    - 0.4 female + 0.5 offence 05 + small_effect x small; small units select older people."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, n)
    priors = rng.poisson(3, n)
    female = rng.random(n) < 0.1
    offence = rng.choice(["01", "02", "05"], n, p=[0.2, 0.3, 0.5])
    small = rng.random(n) < 1 / (1 + np.exp(-(-2 + 0.05 * (age - 35))))
    eta = (-0.5 - 0.03 * (age - 35) + 0.6 * np.log1p(priors) - 0.4 * female
           + 0.5 * (offence == "05") + small_effect * small)
    y = rng.random(n) < 1 / (1 + np.exp(-eta))
    return pd.DataFrame({
        "release_id": [f"R{i}" for i in range(n)],
        "cohort_year": rng.choice([2019, 2020], n),
        "age_at_release": age,
        "sex": np.where(female, "F", "M"),
        "index_offence": offence,
        "prior_convictions": priors,
        "sentence_days": rng.integers(30, 900, n),
        "recid_2y_general": y,
        "is_cohort_mature": True,
        "is_cohort_member": True,
        "facility_type": np.where(small, "detention_house", "prison"),
        "scale_class": np.where(small, "small", np.where(rng.random(n) < 0.5, "medium", "large")),
        "small_scale_days_group": np.where(small, "majority", "none"),
    })


def test_comparison_model_recovers_a_known_effect():
    frame = releases(8000, seed=1)
    fit = risk_model.fit_comparison(frame, "scale_class", 10, 30)
    assert fit.status == "fitted"
    row = fit.coefficients.set_index("term").loc["scale_class_small"]
    assert row["ci_low"] <= -0.3 <= row["ci_high"]
    assert row["ci_low"] == pytest.approx(row["estimate"] - Z * row["std_error"], rel=1e-3)
    medium = fit.coefficients.set_index("term").loc["scale_class_medium"]
    assert medium["ci_low"] <= 0 <= medium["ci_high"]


def test_expected_values_add_up_to_observed_in_each_cohort_year():
    frame = releases(3000, seed=2)
    out = risk_model.expected_frame(frame, 10, 30)
    merged = frame.merge(out, on="release_id")
    for _, year in merged.groupby("cohort_year"):
        assert year["expected_2y_general"].sum() == pytest.approx(
            year["recid_2y_general"].sum(), abs=1e-6)
    assert set(out["risk_model_status"]) == {"fitted"}


def test_fit_statistics_describe_the_model():
    frame = releases(3000, seed=3)
    stats = risk_model.fit_statistics_frame(frame, 10, 30)
    fit = stats[(stats.model == "expected") & (stats.section == "fit")].set_index("name")["value"]
    assert fit["releases"] == 3000
    assert 0.5 < fit["c_statistic"] < 1
    assert 0 < fit["mcfadden_pseudo_r2"] < 1
    assert fit["log_likelihood"] > fit["null_log_likelihood"]
    assert fit["mean_expected_rate"] == pytest.approx(fit["observed_rate"])
    models = set(stats["model"])
    assert models == {"expected", "comparison_scale_class", "comparison_small_scale_days"}
    # the risk model holds nothing about the facility
    terms = set(stats[(stats.model == "expected") & (stats.section == "coefficient")]["name"])
    assert not {t for t in terms if "scale" in t}


def test_too_few_events_per_parameter_refuses_the_fit():
    frame = releases(60, seed=4)
    fit, _ = risk_model.fit_expected(frame, 10, 30)
    assert fit.status == "not_fitted" and "per parameter" in fit.reason
    out = risk_model.expected_frame(frame, 10, 30)
    assert out["expected_2y_general"].isna().all()


def test_separation_refuses_the_fit():
    frame = releases(2000, seed=5)
    frame.loc[frame["index_offence"] == "01", "recid_2y_general"] = True  # perfect predictor
    fit, _ = risk_model.fit_expected(frame, 10, 30)
    assert fit.status == "not_fitted", fit.stats


def test_rare_levels_are_merged_into_the_reference():
    frame = releases(2000, seed=6)
    frame.loc[frame.index[:12], "sex"] = "X"  # 12 < min_level_size
    fit, choices = risk_model.fit_expected(frame, 10, 30)
    assert fit.status == "fitted"
    assert choices["sex_reference"] == "M" and choices["sex_merged_into_reference"] == ["X"]
    assert "sex_X" not in set(fit.coefficients["term"])


def test_immature_cohorts_stay_out_of_the_model():
    frame = releases(2000, seed=7)
    frame.loc[frame["cohort_year"] == 2020, "is_cohort_mature"] = False
    out = risk_model.expected_frame(frame, 10, 30)
    assert set(out["release_id"]) == set(frame.loc[frame["cohort_year"] == 2019, "release_id"])


def test_later_releases_of_a_person_in_the_year_stay_out_of_the_model():
    """The cohort counts persons: only cohort members (first release in the year) count."""
    frame = releases(2000, seed=9)
    frame.loc[frame.index[:150], "is_cohort_member"] = False
    out = risk_model.expected_frame(frame, 10, 30)
    assert set(out["release_id"]) == set(frame.loc[frame.index[150:], "release_id"])
    fit, _ = risk_model.fit_expected(frame, 10, 30)
    assert fit.stats["releases"] == 1850


def test_the_model_is_fitted_once_per_data_whatever_the_row_order(monkeypatch):
    """int_recidivism_expected and int_recidivism_risk_model share one fit per build."""
    calls = []
    real_fit = risk_model._fit_logit
    monkeypatch.setattr(risk_model, "_fit_logit",
                        lambda *a, **k: calls.append(a[0]) or real_fit(*a, **k))
    frame = releases(3000, seed=8)
    expected = risk_model.expected_frame(frame, 10, 30)
    shuffled = frame.sample(frac=1, random_state=1)
    stats = risk_model.fit_statistics_frame(shuffled, 10, 30)
    assert calls.count("expected") == 1, calls
    assert expected["expected_2y_general"].notna().all()
    assert (stats["model"] == "expected").any()
    # other data (or other settings) is fitted again
    risk_model.fit_expected(frame.iloc[:2500], 10, 30)
    risk_model.fit_expected(frame, 10, 31)
    assert calls.count("expected") == 3, calls
