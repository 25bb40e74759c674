"""Confidence intervals of Monte Carlo estimates: binomial proportions (error rates) from event
counts, and means (PSNR, SSIM, MSE per image) from additive sums."""

from __future__ import annotations

import math
from typing import Literal

from scipy import stats as _st

__all__ = ["IntervalMethod", "binomial_interval", "mean_interval", "sample_std"]

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
    # at no errors (all errors) the bound is exactly 0 (1); centre - half leaves a rounding residue (2e-19)
    low = 0.0 if errors <= 0 else max(0.0, centre - half)
    high = 1.0 if errors >= trials else min(1.0, centre + half)
    return low, high


def sample_std(total: float, total_sq: float, count: float) -> float:
    """Sample standard deviation (``count - 1`` in the denominator) from additive sums.

    :param total: sum of the values.
    :param total_sq: sum of the squared values.
    :param count: number of values; ``nan`` when it is below 2.
    :output: ``sqrt((total_sq - total^2 / count) / (count - 1))``, float; rounding that would make
        the variance negative (all values equal) gives 0. The difference of sums loses about
        ``log10(mean^2 / variance)`` of float64's 16 digits: harmless for PSNR (30 dB +- 3 dB: the
        variance to 14 digits), noticeable only for near-constant values.
    """
    if count < 2:
        return math.nan
    var = (total_sq - total * total / count) / (count - 1)
    return math.sqrt(max(var, 0.0))


def mean_interval(total: float, total_sq: float, count: float, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided interval of a mean ``total / count`` estimated from i.i.d. values.

    Student-t on the sample variance: ``mean +- t_{(1 + confidence) / 2, count - 1} * s / sqrt(count)``
    with ``s`` from :func:`sample_std`. Exact for normal values; for other distributions (PSNR per
    image, SSIM) it holds asymptotically by the central limit theorem, and the t quantile is already
    the normal one to 0.1 % above a few thousand values. Values that are not independent (several
    passes over one evaluation set) make it too narrow.

    :param total: sum of the values.
    :param total_sq: sum of the squared values.
    :param count: number of values; ``(nan, nan)`` when it is below 2.
    :param confidence: coverage, e.g. 0.95.
    :output: ``(low, high)``, in the values' unit (dB for PSNR).
    """
    if count < 2:
        return math.nan, math.nan
    mean = total / count
    half = float(_st.t.ppf(0.5 + confidence / 2, count - 1)) * sample_std(total, total_sq, count) / math.sqrt(count)
    return mean - half, mean + half
