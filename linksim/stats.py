"""Confidence intervals for error rates estimated from Monte Carlo counts."""

from __future__ import annotations

import math
from typing import Literal

from scipy import stats as _st

__all__ = ["IntervalMethod", "binomial_interval"]

IntervalMethod = Literal["wilson", "clopper-pearson"]


def binomial_interval(
    errors: float, trials: float, confidence: float = 0.95, method: IntervalMethod = "wilson"
) -> tuple[float, float]:
    """Two-sided interval of a binomial proportion ``errors / trials``.

    :param errors: number of events (may be fractional for pooled counters; rounded for Clopper-Pearson).
    :param trials: number of trials; ``(nan, nan)`` when it is zero.
    :param confidence: coverage, e.g. 0.95.
    :param method: ``"wilson"`` (score interval) or ``"clopper-pearson"`` (exact, conservative).
    :output: ``(low, high)`` in [0, 1].
    """
    if trials <= 0:
        return math.nan, math.nan
    alpha = 1.0 - confidence
    if method == "clopper-pearson":
        k, n = round(errors), round(trials)
        low = 0.0 if k == 0 else float(_st.beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(_st.beta.ppf(1 - alpha / 2, k + 1, n - k))
        return low, high
    z = float(_st.norm.ppf(1 - alpha / 2))
    p = errors / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
