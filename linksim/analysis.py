"""Reading results: the SNR each curve needs to reach a target value of a metric (an error rate that
falls to 2 %, a PSNR that rises to 25 dB), and the shifts between curves.

The paper comparisons this project reports ("about 20 dB between SINFONY and the digital design")
are differences of such SNRs on the rate-normalised axis.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd

from linksim.results import is_rate

__all__ = ["Direction", "snr_at"]

Direction = Literal["falls", "rises"]


def _crossing(x: np.ndarray, y: np.ndarray, target: float, direction: Direction = "falls",
              log: bool = True) -> float:
    """First ``x`` (ascending) where ``y`` falls to (``rises`` to) ``target``, interpolated between the
    two grid points around it, linearly in ``log10(y)`` when ``log`` else in ``y``; NaN when the curve
    never gets there (or starts there: no crossing within the grid)."""
    reached = np.flatnonzero(y <= target if direction == "falls" else y >= target)
    if len(reached) == 0 or reached[0] == 0:
        return math.nan
    i = reached[0]
    (x0, x1), (y0, y1) = x[i - 1 : i + 1], y[i - 1 : i + 1]
    if log:
        if y1 <= 0:  # no errors at the second point: interpolation in log space is undefined, take the grid point
            return float(x1)
        if y0 <= 0:  # a rising rate from zero: no log interpolation either
            return float(x1)
        t = (math.log10(y0) - math.log10(target)) / (math.log10(y0) - math.log10(y1))
    else:
        t = (target - y0) / (y1 - y0)
    return float(x0 + t * (x1 - x0))


def _direction(results: pd.DataFrame, x: str, metric: str) -> Direction:
    """``rises`` when most curves end (highest ``x``) above where they start, else ``falls``."""
    votes = 0
    for _, curve in results.groupby(["scheme", "channel"], sort=False):
        y = curve.dropna(subset=[x, metric]).sort_values(x)[metric].to_numpy(float)
        if len(y) >= 2:
            votes += int(np.sign(y[-1] - y[0]))
    return "rises" if votes > 0 else "falls"


def snr_at(results: pd.DataFrame, target: float, x: str = "snr_norm_db", metric: str = "error_rate",
           reference: str | None = None, direction: Direction | None = None, config: str = "") -> pd.DataFrame:
    """The SNR each (scheme, channel) curve needs to bring ``metric`` to ``target``: down to it for a
    metric that falls with SNR (an error rate), up to it for one that rises (PSNR, SSIM).

    The crossing is the first grid point at which the curve has reached the target, interpolated
    between it and the point before: linearly in ``log10`` of the metric for a rate
    (:func:`linksim.results.is_rate`: ``error_rate``, ``ber``, ...; a zero there gives the grid
    point), linearly in the metric itself for a mean (PSNR in dB, SSIM, MSE) or any other column.

    :param results: a ``results.csv`` as read by :func:`linksim.results.read_results`.
    :param target: the metric's value (linear error rate such as 0.02; dB for a PSNR such as 25).
    :param x: SNR column, in dB (``snr_norm_db``, ``esno_db``, ``ebno_db``, ``snr_db``).
    :param metric: the column to read (default the primary ``error_rate``).
    :param reference: a scheme name: adds ``shift_db`` = each curve's SNR minus the reference's on the
        same channel (positive: the curve needs more SNR).
    :param direction: ``falls`` or ``rises``; ``None``: ``rises`` when most curves end higher than
        they start, else ``falls``.
    :param config: the rows of this configuration (the ``config`` column; default ``""``: each point's
        headline row, e.g. an image baseline's envelope rather than one of its MCS).
    :output: one row per curve: ``scheme, channel, <x>_at_target`` (NaN if the curve does not reach the
        target inside its grid, or has reached it already at its first point), ``floor`` (falls: the
        curve's lowest value) or ``ceiling`` (rises: its highest), and ``shift_db`` with a reference.
    """
    for column in (x, metric):
        if column not in results.columns:
            raise ValueError(f"results have no column {column!r}")
    if "config" in results.columns:
        if config not in set(results["config"]):
            raise ValueError(f"no rows of config {config!r} (the results have {sorted(set(results['config']))})")
        results = results[results["config"] == config]
    if direction not in (None, "falls", "rises"):
        raise ValueError(f"direction: expected falls or rises, found {direction!r}")
    direction = direction or _direction(results, x, metric)
    log = is_rate(results, metric)
    col = f"{x}_at_target"
    extreme = "floor" if direction == "falls" else "ceiling"
    rows = []
    for (scheme, channel), curve in results.groupby(["scheme", "channel"], sort=False):
        curve = curve.dropna(subset=[x, metric]).sort_values(x)
        y = curve[metric].to_numpy(float)
        rows.append({"scheme": scheme, "channel": channel,
                     col: _crossing(curve[x].to_numpy(float), y, target, direction, log),
                     extreme: (float(y.min()) if direction == "falls" else float(y.max())) if len(y) else math.nan})
    out = pd.DataFrame(rows, columns=["scheme", "channel", col, extreme])
    if reference is not None:
        if reference not in set(out.scheme):
            raise ValueError(f"reference scheme {reference!r} is not in the results (schemes: {', '.join(out.scheme.unique())})")
        ref = out[out.scheme == reference].set_index("channel")[col]
        out["shift_db"] = out[col] - out.channel.map(ref)
    return out
