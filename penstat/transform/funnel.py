"""Funnel-plot control limits for a proportion (Spiegelhalter 2005).

Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance.
Statistics in Medicine 24(8), 1185-1202: an institution's observed proportion y = r / n
is plotted against its size n, with control limits around the target proportion
theta (here the national rate of the same cohorts) at p = 0.025 / 0.975 (95 %, about
2 standard errors) and p = 0.001 / 0.999 (99.8 %, about 3 standard errors). An
institution outside the 99.8 % limits is "out of control": its difference from the
target is unlikely to be chance alone.

The limits are the exact binomial ones with the interpolation of the paper's
Appendix A.1.1, so that they are smooth in n:

    r_p   = the p-quantile of Binomial(n, theta): the smallest r with F(r) >= p
    alpha = (F(r_p) - p) / (F(r_p) - F(r_p - 1))
    limit = (r_p - alpha) / n, clipped to [0, 1]

where F is the Binomial(n, theta) distribution function. The WODC Recidivism Monitor
compares institutions this way, over pooled cohort years.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom

# (column, p): the four limits the marts publish.
LIMITS: tuple[tuple[str, float], ...] = (
    ("limit_95_low", 0.025),
    ("limit_95_high", 0.975),
    ("limit_998_low", 0.001),
    ("limit_998_high", 0.999),
)


def control_limit(n: np.ndarray, theta: np.ndarray, p: float) -> np.ndarray:
    """The p control limit (a proportion) for sizes `n` around targets `theta`.

    NaN where n < 1 or theta is not a proportion."""
    n = np.asarray(n, dtype=float)
    theta = np.asarray(theta, dtype=float)
    with np.errstate(invalid="ignore"):
        valid = (n >= 1) & (theta >= 0) & (theta <= 1)
    n_ok = np.where(valid, n, 1.0)
    theta_ok = np.where(valid, theta, 0.5)
    r = binom.ppf(p, n_ok, theta_ok)
    at_r = binom.cdf(r, n_ok, theta_ok)
    below = np.where(r >= 1, binom.cdf(r - 1, n_ok, theta_ok), 0.0)
    step = at_r - below
    alpha = np.divide(at_r - p, step, out=np.zeros_like(step), where=step > 0)
    limit = np.clip((r - alpha) / n_ok, 0.0, 1.0)
    return np.where(valid, limit, np.nan)


def with_limits(frame: pd.DataFrame, n: str = "releases",
                theta: str = "national_rate") -> pd.DataFrame:
    """`frame` with the LIMITS columns added, from its size and target columns."""
    out = frame.copy()
    for column, p in LIMITS:
        sizes = pd.to_numeric(out[n]).to_numpy(dtype=float, na_value=np.nan)
        targets = pd.to_numeric(out[theta]).to_numpy(dtype=float, na_value=np.nan)
        out[column] = control_limit(sizes, targets, p)
    return out
