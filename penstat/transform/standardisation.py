"""Risk-standardised reoffending by group: marginal standardisation (g-computation).

The question: would comparable people reoffend less after a small-scale unit
than after a large prison? For each mature cohort year and attribution
(scale class, facility type) one logistic regression is fitted on the cohort
members of the year (statsmodels Logit, Newton-Raphson):

    logit P(recid_2y_general) = age_at_release + age_at_release^2 + sex
                                + index offence + log(1 + prior_convictions)
                                + log(sentence_days) + group indicators

Its group coefficients are the adjusted log odds ratios against the reference
group (large prisons; ordinary prisons for facility types). The standardised
rate of group g is then the model's mean prediction over the WHOLE cohort of
the year, every member predicted as if discharged from g:

    standardised_rate(g) = 1/N sum_i expit(x_i b + c_g)

the rate the national cohort would have had in g (marginal standardisation,
also called g-computation or the regression/"predictive margins" method:
Lane & Nelder 1982, Biometrics 38; Robins 1986; Muller & MacLehose 2014,
Int J Epidemiol 43:962). Every group is standardised to the same population,
so differences between groups are differences for comparable people, and no
group is compared with a reference that contains itself (the bias of O/E
against a model fitted without group terms).

Variance: the delta method on the model's coefficients with the sandwich
(HC0, Huber-White) covariance V: gradient d_g = 1/N sum_i p_ig (1 - p_ig) x_ig,
Var = d_g' V d_g, and for the difference from the reference
(d_g - d_ref)' V (d_g - d_ref). The estimand is conditional on the cohort's
covariates (the standard population is the cohort itself), so V carries all
the sampling uncertainty; there is no separate national rate to add.

A group is estimated when it has at least `min_level_size` members in the
year with both outcomes present; otherwise its figures are null (the reason
recorded), and the model is fitted on the other groups' members. The whole
year is not estimated when the reference group is not estimable, the model
has fewer than `min_events_per_parameter` events (or non-events) per
parameter, is rank deficient, separates the outcome or does not converge.
Yearly fits use disjoint people, so yearly figures are independent: pooled
figures are weighted means with SE = sqrt(sum w_y^2 se_y^2) (`pool_years`).

Validated by simulation: benchmarks/validate_stats.py, docs/statistics-validation.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from penstat.transform.risk_model import OUTCOME, design, mature_releases

# attribution: (column of int_release_outcomes, reference group)
STANDARDISED_GROUPS: dict[str, tuple[str, str]] = {
    "scale_class": ("scale_class", "large"),
    "facility_type": ("facility_type", "prison"),
}
UNKNOWN = "unknown"
ESTIMATED, NOT_ESTIMATED = "estimated", "not_estimated"
COLUMNS = ["cohort_year", "group_type", "group_value", "reference_group", "standard_size",
           "standardised_rate", "standardised_rate_se", "standardised_difference",
           "standardised_difference_se", "standardisation_status", "standardisation_note"]


@dataclass(frozen=True)
class Pooled:
    value: float
    se: float


def _expit(eta: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-eta))


def _fit(y: np.ndarray, x: np.ndarray, min_events_per_parameter: float
         ) -> tuple[np.ndarray, np.ndarray] | str:
    """Coefficients and their sandwich covariance, or why the model is not fitted."""
    n, k = x.shape
    events = float(y.sum())
    limiting = min(events, n - events)
    if limiting < min_events_per_parameter * k:
        return (f"{limiting:.0f} events (or non-events) for {k} parameters: fewer than "
                f"{min_events_per_parameter:g} per parameter")
    if np.linalg.matrix_rank(x) < k:
        return "the design matrix is rank deficient"
    from statsmodels.discrete.discrete_model import Logit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # perfect separation and convergence warnings
            result = Logit(y, x, check_rank=False).fit(method="newton", maxiter=100, disp=0,
                                                       cov_type="HC0")
    except Exception as exc:  # separation, singular Hessian, non-convergence
        return f"{type(exc).__name__}: {exc}".strip()
    params = np.asarray(result.params, dtype=float)
    cov = np.asarray(result.cov_params(), dtype=float)
    if not result.mle_retvals.get("converged", False) or not np.all(np.isfinite(cov)):
        return "the fit did not converge"
    return params, cov


def standardise_year(year: pd.DataFrame, group_type: str, min_events_per_parameter: float,
                     min_level_size: int) -> pd.DataFrame:
    """Standardised rates and differences of every group of one cohort year (COLUMNS)."""
    column, reference = STANDARDISED_GROUPS[group_type]
    year = year.reset_index(drop=True)
    groups = year[column].astype("object").where(year[column].notna(), UNKNOWN).astype(str)
    y = year[OUTCOME].astype(bool).to_numpy(float)
    counts = pd.DataFrame({"g": groups, "y": y}).groupby("g")["y"].agg(["size", "sum"])
    estimable = sorted(g for g, r in counts.iterrows()
                       if r["size"] >= min_level_size and 0 < r["sum"] < r["size"])
    notes = {g: (f"{int(r['size'])} members (fewer than {min_level_size}) or no variation "
                 "in the outcome") for g, r in counts.iterrows() if g not in estimable}
    cohort_year = int(year["cohort_year"].iloc[0])
    base = {"cohort_year": cohort_year, "group_type": group_type,
            "reference_group": reference, "standard_size": len(year)}

    def rows(values: dict[str, tuple[float, float, float, float]], reason: str | None
             ) -> pd.DataFrame:
        out = []
        for g in sorted(counts.index):
            if g in values:
                rate, rate_se, diff, diff_se = values[g]
                out.append({**base, "group_value": g, "standardised_rate": rate,
                            "standardised_rate_se": rate_se, "standardised_difference": diff,
                            "standardised_difference_se": diff_se,
                            "standardisation_status": ESTIMATED, "standardisation_note": None})
            else:
                out.append({**base, "group_value": g, "standardised_rate": None,
                            "standardised_rate_se": None, "standardised_difference": None,
                            "standardised_difference_se": None,
                            "standardisation_status": NOT_ESTIMATED,
                            "standardisation_note": reason or notes.get(g)})
        return pd.DataFrame(out, columns=COLUMNS)

    if reference not in estimable:
        return rows({}, f"the reference group {reference!r} is not estimable in {cohort_year}")
    covariates, _ = design(year, min_level_size)
    covariates = covariates.drop(columns=[c for c in covariates.columns
                                          if c.startswith("cohort_")])
    others = [g for g in estimable if g != reference]
    indicators = np.column_stack([(groups == g).to_numpy(float) for g in others]) \
        if others else np.zeros((len(year), 0))
    x_all = np.hstack([covariates.to_numpy(float), indicators])
    fitted = groups.isin(estimable).to_numpy()
    result = _fit(y[fitted], x_all[fitted], min_events_per_parameter)
    if isinstance(result, str):
        return rows({}, result)
    params, cov = result
    k = covariates.shape[1]
    base_eta = covariates.to_numpy(float) @ params[:k]
    margins: dict[str, tuple[float, np.ndarray]] = {}
    for g in estimable:
        as_if = np.zeros((len(year), len(others)))
        if g != reference:
            as_if[:, others.index(g)] = 1.0
        p = _expit(base_eta + as_if @ params[k:])
        weights = p * (1 - p) / len(year)
        gradient = np.concatenate([weights @ covariates.to_numpy(float), weights @ as_if])
        margins[g] = (float(p.mean()), gradient)
    ref_rate, ref_gradient = margins[reference]
    values = {}
    for g, (rate, gradient) in margins.items():
        d = gradient - ref_gradient
        values[g] = (rate, math.sqrt(max(float(gradient @ cov @ gradient), 0.0)),
                     rate - ref_rate, math.sqrt(max(float(d @ cov @ d), 0.0)))
    return rows(values, None)


def standardised_frame(outcomes: pd.DataFrame, min_events_per_parameter: float,
                       min_level_size: int) -> pd.DataFrame:
    """One row per mature cohort year, attribution and group: COLUMNS."""
    frame = mature_releases(outcomes)
    parts = [standardise_year(year, group_type, min_events_per_parameter, min_level_size)
             for group_type in STANDARDISED_GROUPS
             for _, year in frame.groupby("cohort_year", sort=True)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    for col in ("standardised_rate", "standardised_rate_se", "standardised_difference",
                "standardised_difference_se"):
        out[col] = out[col].astype("float64")
    return out[COLUMNS]


def pool_years(weights: list[float], values: list[float], ses: list[float]) -> Pooled:
    """Weighted mean of independent yearly estimates, SE = sqrt(sum w^2 se^2) / sum w."""
    total = float(sum(weights))
    value = sum(w * v for w, v in zip(weights, values, strict=True)) / total
    se = math.sqrt(sum((w * s) ** 2 for w, s in zip(weights, ses, strict=True))) / total
    return Pooled(value, se)
