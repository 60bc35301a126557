"""Risk adjustment of two-year general reoffending (WODC per-facility method, Justice Data Lab).

One logistic regression is fitted on the WHOLE mature release cohort (every
cohort member, a person's first release in the year, of every cohort year whose
follow-up has fully elapsed), with the risk
factors the recidivism feed carries and nothing about the facility:

    logit P(recid_2y_general) = cohort year (fixed effects)
                                + age_at_release + age_at_release^2
                                + sex + index offence (ICCS section)
                                + log(1 + prior_convictions) + log(sentence_days)

Its fitted probability for a release is that person's EXPECTED risk given who
they are. Summed over a group (scale class, facility type, ...) it gives the
expected number of reoffenders E; with the observed number O the group's
O/E ratio follows, and adjusted rate = O/E x national rate (mart SQL).
With cohort-year fixed effects, E = O for every whole cohort year (the
logistic score equations), so O/E = 1 nationally, year by year.

O/E is kept for published interface v1 but is NOT the figure for comparing
groups: with no group term the group's own effect leaks into its expected
values, biasing O/E toward 1 (tests/unit/transform/test_standardisation.py).
Comparisons use marginal standardisation (standardisation.py), validated by
simulation (docs/statistics-validation.md).

A second, *comparison* model adds indicators of the attributed scale class
(large is the reference) to the same covariates. Its small-scale coefficient
is the adjusted log odds ratio of reoffending, small vs large, with a Wald
95 % interval: the figure the synthetic system's true effect is checked
against. It is recorded with the fit statistics, not used for the marts.

Modelling choices (docs/kpis.md): levels of sex and index offence with fewer
than `min_level_size` mature releases are merged into the reference level
(the most frequent one); the model is not fitted (expected values null, the
reason recorded) when it would have fewer than `min_events_per_parameter`
events (or non-events) per parameter (Peduzzi et al. 1996), when a level
separates the outcome, or when the fit does not converge.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

OUTCOME = "recid_2y_general"
Z95 = 1.959963984540054
AGE_CENTRE = 35.0
# columns the model needs from int_release_outcomes
COLUMNS = ("release_id", "cohort_year", "age_at_release", "sex", "index_offence",
           "prior_convictions", "sentence_days", OUTCOME)
COMPARISON_GROUPS = {
    # name: (column of the attribution, reference level)
    "scale_class": ("scale_class", "large"),
    "small_scale_days": ("small_scale_days_group", "none"),
}


@dataclass
class Fit:
    """A fitted (or refused) logistic model."""

    name: str
    status: str  # fitted | not_fitted
    reason: str | None = None
    stats: dict[str, float] = field(default_factory=dict)
    coefficients: pd.DataFrame | None = None  # term, estimate, std_error, ci_low, ci_high
    expected: pd.Series | None = None  # fitted probability per release_id


def _levels(values: pd.Series, min_level_size: int) -> tuple[str, list[str]]:
    """(reference level, other levels kept) of a categorical covariate."""
    counts = values.value_counts()
    reference = str(counts.sort_index().idxmax()) if len(counts) else ""
    kept = sorted(str(v) for v, n in counts.items() if n >= min_level_size and v != reference)
    return reference, kept


def design(frame: pd.DataFrame, min_level_size: int,
           extra: tuple[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, object]]:
    """The design matrix (and the level choices) for the releases in `frame`.

    extra = (column, reference): indicators of a group attribution to add."""
    age = frame["age_at_release"].astype(float) - AGE_CENTRE
    columns: dict[str, np.ndarray] = {"const": np.ones(len(frame))}
    choices: dict[str, object] = {}
    years = sorted(int(y) for y in frame["cohort_year"].unique())
    choices["cohort_year_reference"] = years[0] if years else None
    for y in years[1:]:
        columns[f"cohort_{y}"] = (frame["cohort_year"].astype(int) == y).to_numpy(float)
    columns["age_at_release_minus_35"] = age.to_numpy()
    columns["age_at_release_minus_35_sq_per_100"] = (age ** 2 / 100).to_numpy()
    for name in ("sex", "index_offence"):
        values = frame[name].astype(str)
        reference, kept = _levels(values, min_level_size)
        choices[f"{name}_reference"] = reference
        choices[f"{name}_merged_into_reference"] = sorted(
            set(values.unique()) - set(kept) - {reference})
        for level in kept:
            columns[f"{name}_{level}"] = (values == level).to_numpy(float)
    columns["log1p_prior_convictions"] = np.log1p(
        frame["prior_convictions"].astype(float).clip(lower=0)).to_numpy()
    columns["log_sentence_days"] = np.log(
        frame["sentence_days"].astype(float).clip(lower=1)).to_numpy()
    if extra is not None:
        column, reference = extra
        values = frame[column].astype(str)
        for level in sorted(set(values.unique()) - {reference}):
            columns[f"{column}_{level}"] = (values == level).to_numpy(float)
    return pd.DataFrame(columns, index=frame.index), choices


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """C-statistic (area under the ROC curve) by the Mann-Whitney rank formula."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(p).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def _hosmer_lemeshow(y: np.ndarray, p: np.ndarray, groups: int = 10) -> tuple[float, int, float]:
    """Hosmer-Lemeshow statistic over deciles of risk, its degrees of freedom and p-value."""
    from scipy.stats import chi2

    order = np.argsort(p, kind="stable")
    chi_square = 0.0
    bins = [b for b in np.array_split(order, groups) if len(b)]
    for b in bins:
        observed, expected, n = y[b].sum(), p[b].sum(), len(b)
        if 0 < expected < n:
            chi_square += (observed - expected) ** 2 / (expected * (1 - expected / n))
    dof = max(len(bins) - 2, 1)
    return float(chi_square), dof, float(chi2.sf(chi_square, dof))


def _fit_logit(name: str, frame: pd.DataFrame, x: pd.DataFrame,
               min_events_per_parameter: float) -> Fit:
    y = frame[OUTCOME].astype(bool).to_numpy(float)
    n, k = x.shape
    events = float(y.sum())
    limiting = min(events, n - events)
    base = {"releases": float(n), "events": events, "parameters": float(k),
            "events_per_parameter": limiting / k if k else float("nan")}
    if n == 0 or limiting < min_events_per_parameter * k:
        return Fit(name, "not_fitted", f"{limiting:.0f} events (or non-events) for {k} "
                   f"parameters: fewer than {min_events_per_parameter:g} per parameter",
                   stats=base)
    if np.linalg.matrix_rank(x.to_numpy()) < k:
        return Fit(name, "not_fitted", "the design matrix is rank deficient", stats=base)
    # imported only when a fit is due; the discrete-model module alone, as
    # statsmodels.api imports everything (seconds)
    from statsmodels.discrete.discrete_model import Logit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # perfect separation and convergence warnings
            result = Logit(y, x).fit(method="newton", maxiter=100, disp=0)
    except Exception as exc:  # separation, singular Hessian, non-convergence
        return Fit(name, "not_fitted", f"{type(exc).__name__}: {exc}".strip(), stats=base)
    if not result.mle_retvals.get("converged", False) or not np.all(np.isfinite(result.bse)):
        return Fit(name, "not_fitted", "the fit did not converge", stats=base)
    p = np.asarray(result.predict(x), dtype=float)
    hl, hl_dof, hl_p = _hosmer_lemeshow(y, p)
    stats = {
        **base,
        "converged": 1.0,
        "iterations": float(result.mle_retvals.get("iterations", float("nan"))),
        "log_likelihood": float(result.llf),
        "null_log_likelihood": float(result.llnull),
        "mcfadden_pseudo_r2": float(result.prsquared),
        "likelihood_ratio_chi2": float(result.llr),
        "likelihood_ratio_p_value": float(result.llr_pvalue),
        "aic": float(result.aic),
        "bic": float(result.bic),
        "c_statistic": _auc(y, p),
        "brier_score": float(np.mean((p - y) ** 2)),
        "hosmer_lemeshow_chi2": hl,
        "hosmer_lemeshow_dof": float(hl_dof),
        "hosmer_lemeshow_p_value": hl_p,
        "observed_rate": float(y.mean()),
        "mean_expected_rate": float(p.mean()),
    }
    ci = result.conf_int(alpha=0.05)
    coefficients = pd.DataFrame({
        "term": x.columns,
        "estimate": np.asarray(result.params, dtype=float),
        "std_error": np.asarray(result.bse, dtype=float),
        "ci_low": np.asarray(ci.iloc[:, 0], dtype=float),
        "ci_high": np.asarray(ci.iloc[:, 1], dtype=float),
        "p_value": np.asarray(result.pvalues, dtype=float),
    })
    expected = pd.Series(p, index=frame["release_id"].to_numpy(), name="expected")
    return Fit(name, "fitted", None, stats, coefficients, expected)


def mature_releases(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The releases the model is fitted on: cohort members (a person's first release in
    the year) of mature cohorts, covariates present.

    Sorted by release_id: the warehouse hands rows over in no fixed order, and
    the fit's floating-point sums must not depend on it (a full rebuild gives
    the same published numbers to the last bit)."""
    frame = outcomes[outcomes["is_cohort_mature"].astype(bool)
                     & outcomes["is_cohort_member"].astype(bool)]
    frame = frame.dropna(subset=list(COLUMNS))
    if not frame["release_id"].is_monotonic_increasing:
        frame = frame.sort_values("release_id", kind="stable")
    return frame.reset_index(drop=True)


# What the models read from int_release_outcomes: the covariates, the outcome, the
# attributions of the comparison and standardisation models, maturity and membership.
INPUT_COLUMNS = (*COLUMNS, "is_cohort_mature", "is_cohort_member",
                 *(column for column, _ in COMPARISON_GROUPS.values()), "facility_type")


def model_input(outcomes) -> pd.DataFrame:
    """The mature cohort members from a DuckDB relation of int_release_outcomes, only the
    columns the models use, sorted by release_id, filtered and sorted by DuckDB (at
    scale 50 this is 1.25 million of 1.75 million rows: pandas would take seconds)."""
    columns = ", ".join(f'"{c}"' for c in INPUT_COLUMNS)
    return (outcomes.filter("is_cohort_mature and is_cohort_member").project(columns)
            .order("release_id").df())


# The last fit of the risk model in this process, keyed by a hash of its data and
# settings: dbt runs int_recidivism_expected and int_recidivism_risk_model one after
# the other in one process, and both need the same fit (it is fitted once per build).
_LAST_EXPECTED_FIT: dict[tuple, tuple[Fit, dict[str, object]]] = {}


def fit_expected(outcomes: pd.DataFrame, min_events_per_parameter: float,
                 min_level_size: int) -> tuple[Fit, dict[str, object]]:
    """The risk model (no facility information) on the whole mature cohort."""
    frame = mature_releases(outcomes)
    key = (int(pd.util.hash_pandas_object(frame, index=False).sum()), len(frame),
           tuple(frame.columns), float(min_events_per_parameter), int(min_level_size))
    if key not in _LAST_EXPECTED_FIT:
        x, choices = design(frame, min_level_size)
        fitted = _fit_logit("expected", frame, x, min_events_per_parameter), choices
        _LAST_EXPECTED_FIT.clear()
        _LAST_EXPECTED_FIT[key] = fitted
    return _LAST_EXPECTED_FIT[key]


def fit_comparison(outcomes: pd.DataFrame, attribution: str, min_events_per_parameter: float,
                   min_level_size: int) -> Fit:
    """The risk model plus indicators of the attributed group (reference level excluded)."""
    column, reference = COMPARISON_GROUPS[attribution]
    frame = mature_releases(outcomes)
    frame = frame[frame[column].notna()].reset_index(drop=True)
    if reference not in set(frame[column].astype(str)):
        return Fit(f"comparison_{attribution}", "not_fitted",
                   f"no mature release in the reference group {reference!r}")
    x, _ = design(frame, min_level_size, extra=(column, reference))
    return _fit_logit(f"comparison_{attribution}", frame, x, min_events_per_parameter)


def expected_frame(outcomes: pd.DataFrame, min_events_per_parameter: float,
                   min_level_size: int) -> pd.DataFrame:
    """One row per release of a mature cohort: its expected probability (null if not fitted)."""
    fit, _ = fit_expected(outcomes, min_events_per_parameter, min_level_size)
    frame = mature_releases(outcomes)
    out = pd.DataFrame({"release_id": frame["release_id"].astype(str)})
    if fit.expected is not None:
        out["expected_2y_general"] = fit.expected.reindex(out["release_id"]).to_numpy(float)
    else:
        out["expected_2y_general"] = pd.Series([None] * len(out), dtype="float64")
    out["risk_model_status"] = fit.status
    return out


def _rows(fit: Fit, choices: dict[str, object] | None = None) -> list[dict]:
    rows = [{"model": fit.name, "section": "status", "name": "status", "value": None,
             "std_error": None, "ci_low": None, "ci_high": None, "p_value": None,
             "note": fit.status if fit.reason is None else f"{fit.status}: {fit.reason}"}]
    for key, value in fit.stats.items():
        rows.append({"model": fit.name, "section": "fit", "name": key,
                     "value": None if value is None or math.isnan(value) else float(value),
                     "std_error": None, "ci_low": None, "ci_high": None, "p_value": None,
                     "note": None})
    for key, value in (choices or {}).items():
        rows.append({"model": fit.name, "section": "design", "name": key, "value": None,
                     "std_error": None, "ci_low": None, "ci_high": None, "p_value": None,
                     "note": str(value)})
    if fit.coefficients is not None:
        for c in fit.coefficients.itertuples(index=False):
            rows.append({"model": fit.name, "section": "coefficient", "name": c.term,
                         "value": c.estimate, "std_error": c.std_error, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "p_value": c.p_value, "note": None})
    return rows


def fit_statistics_frame(outcomes: pd.DataFrame, min_events_per_parameter: float,
                         min_level_size: int) -> pd.DataFrame:
    """Fit statistics and coefficients of the risk model and the comparison models (long)."""
    fit, choices = fit_expected(outcomes, min_events_per_parameter, min_level_size)
    rows = _rows(fit, choices)
    for attribution in COMPARISON_GROUPS:
        rows += _rows(fit_comparison(outcomes, attribution, min_events_per_parameter,
                                     min_level_size))
    frame = pd.DataFrame(rows, columns=["model", "section", "name", "value", "std_error",
                                        "ci_low", "ci_high", "p_value", "note"])
    for col in ("value", "std_error", "ci_low", "ci_high", "p_value"):
        frame[col] = frame[col].astype("float64")
    for col in ("model", "section", "name", "note"):
        frame[col] = frame[col].astype("object")
    return frame
