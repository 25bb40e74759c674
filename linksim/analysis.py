"""Reading results: the SNR each curve needs to reach a target error rate, and the shifts between curves.

The paper comparisons this project reports ("about 20 dB between SINFONY and the digital design")
are differences of such SNRs on the rate-normalised axis.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["snr_at"]


def _crossing(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """First ``x`` (ascending) where ``y`` falls to ``target``, interpolated linearly in ``log10(y)``;
    NaN when the curve never gets there (or starts there: no crossing within the grid)."""
    below = np.flatnonzero(y <= target)
    if len(below) == 0 or below[0] == 0:
        return math.nan
    i = below[0]
    (x0, x1), (y0, y1) = x[i - 1 : i + 1], y[i - 1 : i + 1]
    if y1 <= 0:  # no errors at the second point: interpolation in log space is undefined, take the grid point
        return float(x1)
    t = (math.log10(y0) - math.log10(target)) / (math.log10(y0) - math.log10(y1))
    return float(x0 + t * (x1 - x0))


def snr_at(results: pd.DataFrame, target: float, x: str = "snr_norm_db", metric: str = "error_rate",
           reference: str | None = None) -> pd.DataFrame:
    """The SNR each (scheme, channel) curve needs to bring ``metric`` down to ``target``.

    :param results: a ``results.csv`` as read by :func:`linksim.results.read_results`.
    :param target: error rate (linear, e.g. 0.02).
    :param x: SNR column, in dB (``snr_norm_db``, ``esno_db``, ``ebno_db``, ``snr_db``).
    :param reference: a scheme name: adds ``shift_db`` = each curve's SNR minus the reference's on the
        same channel (positive: the curve needs more SNR).
    :output: one row per curve: ``scheme, channel, <x>_at_target`` (NaN if the curve does not reach the
        target inside its grid, or is already below it at its first point), ``floor`` (the curve's
        lowest value of ``metric``), and ``shift_db`` with a reference.
    """
    for column in (x, metric):
        if column not in results.columns:
            raise ValueError(f"results have no column {column!r}")
    col = f"{x}_at_target"
    rows = []
    for (scheme, channel), curve in results.groupby(["scheme", "channel"], sort=False):
        curve = curve.dropna(subset=[x, metric]).sort_values(x)
        rows.append({"scheme": scheme, "channel": channel,
                     col: _crossing(curve[x].to_numpy(float), curve[metric].to_numpy(float), target),
                     "floor": float(curve[metric].min()) if len(curve) else math.nan})
    out = pd.DataFrame(rows, columns=["scheme", "channel", col, "floor"])
    if reference is not None:
        if reference not in set(out.scheme):
            raise ValueError(f"reference scheme {reference!r} is not in the results (schemes: {', '.join(out.scheme.unique())})")
        ref = out[out.scheme == reference].set_index("channel")[col]
        out["shift_db"] = out[col] - out.channel.map(ref)
    return out
