"""Figures drawn from results files (never from live objects): metric vs SNR, one curve per
scheme x channel, confidence intervals as error bars, theory overlays where the CSV has them.

Any column ``<metric>`` with ``<metric>_ci_low``/``<metric>_ci_high`` columns gets error bars (the
primary ``error_rate`` uses ``ci_low``/``ci_high``). The y axis is logarithmic by default for
rates (``error_rate``, and columns with an interval but no ``<metric>_std``) and linear for means
(which have ``<metric>_std``: PSNR in dB, SSIM, MSE) and every other column.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from linksim.config import PlotSpec  # noqa: E402
from linksim.results import is_rate, read_results  # noqa: E402
from linksim.snr import axis_label  # noqa: E402

__all__ = ["RunData", "load_run", "rate_columns", "plot_metric", "plot_run", "plot_files", "save_figure"]

_MARKERS = ["o", "s", "^", "v", "D", "x", "+", "*"]
_LINES = ["-", "--", "-.", (0, (3, 1, 1, 1)), (0, (5, 2))]
_X_AXIS = {"esno_db": "esno", "ebno_db": "ebno", "snr_norm_db": "snr_norm"}


class RunData:
    """A results table with what the figures need from its manifest (labels, axis reference)."""

    def __init__(self, df: pd.DataFrame, manifest: dict, name: str):
        self.df, self.manifest, self.name = df, manifest, name
        sc = manifest.get("scenario", {})
        self.labels = {s["name"]: s.get("label") or s["name"] for s in sc.get("schemes", [])}
        snr = sc.get("snr", {})
        ref = snr.get("reference_channel_uses")
        self.reference_shown = None if ref is None else f"{ref:g} {snr.get('reference_unit', 'complex')}"


def load_run(csv: str | Path) -> RunData:
    csv = Path(csv)
    m = csv.parent / "manifest.json"
    manifest = json.loads(m.read_text()) if m.is_file() else {}
    name = csv.parent.name if csv.name == "results.csv" else csv.stem
    return RunData(read_results(csv), manifest, name)


def rate_columns(df: pd.DataFrame) -> list[str]:
    """The statistics with confidence intervals in a results table (rates and means), the primary
    ``error_rate`` first unless no row has one (every scheme's primary a mean)."""
    stats = [c[: -len("_ci_low")] for c in df.columns if c.endswith("_ci_low")]
    head = ["error_rate"] if "error_rate" in df and df["error_rate"].notna().any() else []
    return head + [r for r in stats if r != "error_rate"]


def _x_label(runs: list[RunData], x: str) -> str:
    run = runs[0]
    axis = _X_AXIS.get(x) or str(run.df["snr_axis"].iloc[0])
    return axis_label(axis, run.reference_shown)


def plot_metric(runs: list[RunData], metric: str, x: str = "snr_db", log_y: bool | None = None,
                schemes: list[str] | None = None, title: str | None = None,
                channels: list[str] | None = None, band: tuple[str, str] | None = None) -> plt.Figure:
    """One figure of ``metric`` against ``x`` with every (run, scheme, channel) as a curve (only the
    schemes named in ``schemes`` and the channels named in ``channels``, if given), the columns
    ``band = (low, high)`` shaded around the curves that have values there."""
    for column, keep in (("scheme", schemes), ("channel", channels)):
        if keep is not None:
            runs = [RunData(run.df[run.df[column].isin(keep)], run.manifest, run.name) for run in runs]
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    curves = [(run, key) for run in runs for key in run.df.groupby(["scheme", "channel"], sort=False).groups]
    run_schemes = list(dict.fromkeys((id(run), k[0]) for run, k in curves))
    channels = list(dict.fromkeys(k[1] for _, k in curves))
    colour = {s: f"C{i % 10}" for i, s in enumerate(run_schemes)}  # one colour per scheme,
    style = {c: (_MARKERS[i % len(_MARKERS)], _LINES[i % len(_LINES)]) for i, c in enumerate(channels)}  # per channel
    log_y = is_rate(runs[0].df, metric) if log_y is None else log_y
    lo, hi = ("ci_low", "ci_high") if metric == "error_rate" else (f"{metric}_ci_low", f"{metric}_ci_high")
    for run in runs:
        df = run.df
        for (scheme, channel), g in df.groupby(["scheme", "channel"], sort=False):
            g = g.sort_values(x)
            y = g[metric].to_numpy(float)
            if np.all(np.isnan(y)):
                continue
            label = textwrap.shorten(f"{run.labels.get(scheme, scheme)} | {channel}", 70, placeholder="...")
            if len(runs) > 1:
                label = f"{run.name}: {label}"
            xs = g[x].to_numpy(float)
            if log_y:
                y = np.where(y > 0, y, np.nan)  # zero errors cannot be drawn on a log axis
            marker, ls = style[channel]
            fmt = {"color": colour[(id(run), scheme)], "marker": marker, "ls": ls, "ms": 3.5, "lw": 1.2}
            if lo in g:
                yerr = np.vstack([y - g[lo].to_numpy(float), g[hi].to_numpy(float) - y])
                ax.errorbar(xs, y, yerr=np.clip(np.nan_to_num(yerr), 0, None), capsize=2, label=label, **fmt)
            else:
                ax.plot(xs, y, label=label, **fmt)
            if band is not None and all(c in g for c in band) and g[band[0]].notna().any():
                ax.fill_between(xs, g[band[0]].to_numpy(float), g[band[1]].to_numpy(float), color=fmt["color"],
                                alpha=0.15, lw=0)
            if f"{metric}_theory" in g and g[f"{metric}_theory"].notna().any():
                ax.plot(xs, g[f"{metric}_theory"], ls=(0, (1, 1)), color="k", lw=1, label=f"{label} (theory)")
            if "shannon_esno_db" in g and g["shannon_esno_db"].notna().any():
                shift = (g[x] - g["esno_db"]).iloc[0]
                ax.axvline(g["shannon_esno_db"].iloc[0] + shift, ls=":", color=fmt["color"], lw=1,
                           label=f"{label} (Shannon limit)")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(_x_label(runs, x))
    ax.set_ylabel(metric)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, stem: Path, formats: list[str] | tuple[str, ...]) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format (150 dpi), close it, return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{fmt}") for fmt in formats]
    for p in paths:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return paths


def plot_files(csvs: list[str | Path], out_dir: Path, metrics: list[str] | None = None, x: str = "snr_db",
               formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Overlay several runs' results; one figure per metric (default: every rate)."""
    runs = [load_run(c) for c in csvs]
    metrics = metrics or rate_columns(runs[0].df)
    out = []
    for metric in metrics:
        out += save_figure(plot_metric(runs, metric, x), out_dir / f"{metric}_vs_{x}", list(formats))
    return out


def plot_run(run_dir, scenario) -> list[Path]:
    """The scenario's figures (``outputs.plots``, default every rate) into ``<run>/plots/``."""
    run = load_run(run_dir.csv)
    specs = scenario.outputs.plots or [PlotSpec(metric=m) for m in rate_columns(run.df)]
    out = []
    for i, p in enumerate(specs):
        shown = run.df
        for column, keep in (("scheme", p.schemes), ("channel", p.channels)):
            if keep:
                shown = shown[shown[column].isin(keep)]
        if p.metric not in run.df.columns or shown.empty:
            continue  # nothing to draw (a profile or an override may leave a figure's schemes or channels out)
        if not pd.api.types.is_numeric_dtype(run.df[p.metric]):
            warnings.warn(f"outputs.plots[{i}].metric: expected a numeric column, found {p.metric!r} "
                          f"({run.df[p.metric].dtype}); figure skipped, the results are kept", RuntimeWarning,
                          stacklevel=2)
            continue
        stem = f"{p.name}_{p.metric}_vs_{p.x}" if p.name else f"{p.metric}_vs_{p.x}"
        fig = plot_metric([run], p.metric, p.x, p.log_y, p.schemes, p.title, p.channels, p.band)
        out += save_figure(fig, run_dir.plots / stem, scenario.outputs.formats)
    return out
