"""Figures drawn from results files (never from live objects): metric vs SNR, one curve per
scheme x channel, confidence intervals as error bars, theory overlays where the CSV has them.

Any column ``<metric>`` with ``<metric>_ci_low``/``<metric>_ci_high`` columns gets error bars (the
primary ``error_rate`` uses ``ci_low``/``ci_high``). The y axis is logarithmic by default for
rates (``error_rate``, and columns with an interval but no ``<metric>_std``) and linear for means
(which have ``<metric>_std``: PSNR in dB, SSIM, MSE) and every other column.
"""

from __future__ import annotations

import json
import re
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from linksim.config import PlotSpec  # noqa: E402
from linksim.results import is_rate, read_results  # noqa: E402
from linksim.snr import axis_label  # noqa: E402

__all__ = ["PlotStyle", "STYLES", "METRIC_LABELS", "metric_label", "RunData", "load_run", "rate_columns",
           "figure_filters", "select_rows", "plot_metric", "plot_run", "plot_files", "save_figure", "indexed_columns",
           "indexed_rows", "plot_indexed"]

_MARKERS = ["o", "s", "^", "v", "D", "x", "+", "*"]
_LINES = ["-", "--", "-.", (0, (3, 1, 1, 1)), (0, (5, 2))]
_X_AXIS = {"esno_db": "esno", "ebno_db": "ebno", "snr_norm_db": "snr_norm"}


@dataclass(frozen=True)
class PlotStyle:
    """How a figure looks: ``size`` in inches, fonts in points, where the legend goes (``inside`` the
    axes while it has at most ``legend_inside_max`` entries of at most ``label_chars`` characters, else
    under them; ``outside``: right of them), the raster resolution in dpi (PDF and SVG are vector)."""

    size: tuple[float, float]
    font_pt: float
    legend: Literal["inside", "outside"]
    line_width: float
    marker_size: float
    dpi: int
    label_chars: int
    legend_inside_max: int = 4


#: ``paper``: one column of a two-column paper (3.5 in wide, 8 pt); ``wide``: a screen or a slide
STYLES: dict[str, PlotStyle] = {
    "paper": PlotStyle(size=(3.5, 2.6), font_pt=8, legend="inside", line_width=1.0, marker_size=3.0, dpi=300,
                       label_chars=40),
    "wide": PlotStyle(size=(9.5, 5.2), font_pt=10, legend="outside", line_width=1.2, marker_size=3.5, dpi=150,
                      label_chars=70),
}

#: axis labels for the columns linksim writes (any other column: its name, ``_db`` shown as ``[dB]``)
METRIC_LABELS = {
    "ber": "Bit error rate", "bler": "Block error rate", "psnr_db": "PSNR [dB]",
    "psnr_paper_db": "PSNR, the paper's convention [dB]", "ssim": "SSIM", "mse": "MSE",
    "accuracy": "Classification accuracy", "image_failure_rate": "Image failure rate",
    "session_failure_rate": "Session failure rate", "rr": "Recognition ratio",
    "occupancy_entropy_bits": "Entropy of the points sent [bit]", "psnr_of_mean_mse_db": "PSNR of the mean MSE [dB]",
}

#: what ``error_rate`` (each row's primary rate) is where the schemes' primary is itself called ``error_rate``
_CLASSIFIER_ERROR = "Classification error rate"


def metric_label(metric: str, primaries: set[str] | None = None) -> str:
    """The y-axis label of ``metric``; ``error_rate`` is named after the schemes' primary
    (``primaries``: their names) when they share one."""
    if metric == "error_rate":
        if primaries and len(primaries) == 1:
            (name,) = primaries
            return _CLASSIFIER_ERROR if name == "error_rate" else metric_label(name)
        return "Error rate" if not primaries else "Error rate (each scheme's primary)"
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    text = metric[: -len("_db")] + " [dB]" if metric.endswith("_db") else metric
    return text.replace("_", " ")


class RunData:
    """A results table with what the figures need from its manifest (labels, primaries, axis reference)."""

    def __init__(self, df: pd.DataFrame, manifest: dict, name: str):
        df = df if "config" in df.columns else df.assign(config="")  # a table made in code may have none
        self.df, self.manifest, self.name = df, manifest, name
        sc = manifest.get("scenario", {})
        self.labels = {s["name"]: s.get("label") or s["name"] for s in sc.get("schemes", [])}
        self.primaries = {n: e["primary"]["name"] for n, e in manifest.get("schemes", {}).items() if "primary" in e}
        snr = sc.get("snr", {})
        ref = snr.get("reference_channel_uses")
        self.reference_shown = None if ref is None else f"{ref:g} {snr.get('reference_unit', 'complex')}"

    def where(self, df: pd.DataFrame) -> RunData:
        return RunData(df, self.manifest, self.name)


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


def figure_filters(schemes: list[str] | None = None, channels: list[str] | None = None,
                   configs: list[str] | None = None, where: dict[str, list] | None = None) -> dict[str, list]:
    """The :func:`select_rows` filter of a figure: its schemes and channels (``None``: all), its
    configurations (``None``: each point's headline row) and any further ``where`` (which wins)."""
    return {**({"scheme": schemes} if schemes is not None else {}),
            **({"channel": channels} if channels is not None else {}), "config": configs or [""], **(where or {})}


def select_rows(df: pd.DataFrame, where: dict[str, list]) -> pd.DataFrame:
    """The rows whose column ``c`` holds one of ``where[c]`` for every ``c`` (numbers compared as
    numbers: ``snr_db=3`` keeps 3.0).

    :raises ValueError: a column the table lacks, naming the columns it has.
    """
    keep = pd.Series(True, index=df.index)
    for column, values in where.items():
        if column not in df.columns:
            raise ValueError(f"no column {column!r} to filter on; the results have {', '.join(df.columns[:12])}, ...")
        if pd.api.types.is_numeric_dtype(df[column]):
            keep &= df[column].isin([float(v) for v in values])
        else:
            keep &= df[column].astype(str).isin([str(v) for v in values])
    return df[keep]


def _x_label(runs: list[RunData], x: str) -> str:
    run = runs[0]
    axis = _X_AXIS.get(x) or str(run.df["snr_axis"].iloc[0])
    return axis_label(axis, run.reference_shown)


def _shortened(label: str, limit: int) -> str:
    """``label`` in at most about ``limit`` characters: the scheme's label is cut, what tells the curves
    of one scheme apart (`` | channel``, `` [config]``, `` (theory)``) is kept."""
    cut = min((i for i in (label.find(" | "), label.find(" [")) if i > 0), default=len(label))
    head, tail = label[:cut], label[cut:]
    return textwrap.shorten(head, max(limit - len(tail), 12), placeholder="...") + tail


def _legend(ax: plt.Axes, fig: plt.Figure, style: PlotStyle, order: list[str]) -> None:
    """Inside the axes (``paper``, few entries), in one column under them (``paper``, many: the figure
    grows by the legend's height, the axes keep theirs), or right of them (``wide``); entries in
    ``order`` (the order the curves were drawn), the others after them."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    rank = {label: i for i, label in enumerate(order)}
    labels, handles = zip(*sorted(zip(labels, handles, strict=True), key=lambda e: rank.get(e[0], len(rank))),
                          strict=True)
    small = style.font_pt - 1.5
    inside = (style.legend == "inside" and len(handles) <= style.legend_inside_max
              and max(map(len, labels)) <= style.label_chars)  # else it would hide the curves
    limit = style.label_chars if inside or style.legend == "outside" else int(
        (fig.get_size_inches()[0] - 0.5) * 72 / (0.52 * small))  # under the axes: the figure's width
    labels = [_shortened(label, limit) for label in labels]
    if style.legend == "outside":
        fig.legend(handles, labels, fontsize=small, loc="outside right upper")
    elif inside:
        ax.legend(handles, labels, fontsize=small, loc="best", framealpha=0.85, handlelength=2.2, borderaxespad=0.4)
    else:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width, height + len(handles) * small * 1.45 / 72)
        fig.legend(handles, labels, fontsize=small, loc="outside lower center", ncol=1, frameon=False,
                   handlelength=2.2)


def plot_metric(runs: list[RunData], metric: str, x: str = "snr_db", log_y: bool | None = None,
                schemes: list[str] | None = None, title: str | None = None,
                channels: list[str] | None = None, band: tuple[str, str] | None = None, style: str = "paper",
                xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
                size: tuple[float, float] | None = None, where: dict[str, list] | None = None,
                configs: list[str] | None = None, ylabel: str | None = None,
                xlabel: str | None = None) -> plt.Figure:
    """One figure of ``metric`` against ``x`` with every (run, scheme, channel, config) as a curve.

    :param schemes: the schemes drawn (default all); ``channels``: the channels (default all);
        ``configs``: the configurations (default: each point's headline row, ``config`` empty; a
        scheme's MCS by name, e.g. ``["qpsk-r1_2", "capacity"]``); ``where``: further filters
        ``{column: [values]}`` (:func:`select_rows`; a ``config`` entry there replaces ``configs``).
    :param band: two columns ``(low, high)`` shaded around the curves that have values there.
    :param style: a :data:`STYLES` name; ``size`` (inches) overrides its size, ``xlim`` / ``ylim`` fix the axes,
        ``ylabel`` replaces the metric's label (:func:`metric_label`), ``xlabel`` the axis's.

    A rate point with no errors has no place on a log axis: it is drawn as the upper end of its
    interval with a downward triangle (``gid="upper-bound"``), the point's value is below it. The
    channel is left out of the labels when the figure shows one channel.
    """
    look = STYLES[style]
    filters = figure_filters(schemes, channels, configs, where)
    runs = [run.where(select_rows(run.df, filters)) for run in runs]
    with plt.rc_context({"font.size": look.font_pt, "axes.titlesize": look.font_pt,
                         "axes.labelsize": look.font_pt, "xtick.labelsize": look.font_pt - 1,
                         "ytick.labelsize": look.font_pt - 1, "pdf.fonttype": 42}):
        fig, ax = plt.subplots(figsize=size or look.size, layout="constrained")
        order = _draw_curves(ax, runs, metric, x, log_y, band, look)
        width_chars = int((fig.get_size_inches()[0] - 0.6) * 72 / (0.58 * look.font_pt))  # the axes' width
        ax.set_xlabel("\n".join(textwrap.wrap(xlabel or _x_label(runs, x), width_chars)))
        ax.set_ylabel(ylabel or metric_label(metric, {run.primaries.get(s) for run in runs
                                                      for s in run.df["scheme"].unique()} - {None}))
        if xlim:
            ax.set_xlim(*xlim)
        if ylim:
            ax.set_ylim(*ylim)
        if title:  # wrapped to the axes' width (about 0.58 em per character)
            ax.set_title("\n".join(textwrap.wrap(title, width_chars)))
        ax.grid(True, which="both", alpha=0.3)
        _legend(ax, fig, look, order)
    return fig


def _draw_curves(ax: plt.Axes, runs: list[RunData], metric: str, x: str, log_y: bool | None,
                 band: tuple[str, str] | None, look: PlotStyle) -> list[str]:
    """Draw every curve; returns their labels in drawing order."""
    keys = ["scheme", "channel", "config"]
    curves = [(run, key) for run in runs for key in run.df.groupby(keys, sort=False).groups]
    run_schemes = list(dict.fromkeys((id(run), k[0], k[2]) for run, k in curves))
    channels = list(dict.fromkeys(k[1] for _, k in curves))
    colour = {s: f"C{i % 10}" for i, s in enumerate(run_schemes)}  # one colour per scheme (and config),
    marker_line = {c: (_MARKERS[i % len(_MARKERS)], _LINES[i % len(_LINES)]) for i, c in enumerate(channels)}
    log_y = is_rate(runs[0].df, metric) if log_y is None else log_y
    if log_y:
        ax.set_yscale("log")
    lo, hi = ("ci_low", "ci_high") if metric == "error_rate" else (f"{metric}_ci_low", f"{metric}_ci_high")
    bound_labelled, order, theory_drawn = False, [], set()
    for run in runs:
        for (scheme, channel, config), g in run.df.groupby(keys, sort=False):
            g = g.sort_values(x)
            y = g[metric].to_numpy(float)
            if np.all(np.isnan(y)):
                continue
            label = run.labels.get(scheme, scheme)  # shortened by _legend, to the room it gets
            if config:
                label = f"{label} [{config}]"
            if len(channels) > 1:
                label = f"{label} | {channel}"
            if len(runs) > 1:
                label = f"{run.name}: {label}"
            order.append(label)
            xs = g[x].to_numpy(float)
            zero = log_y & (y == 0)
            if log_y:
                y = np.where(y > 0, y, np.nan)  # zero errors cannot be drawn on a log axis: see the bound below
            marker, ls = marker_line[channel]
            fmt = {"color": colour[(id(run), scheme, config)], "marker": marker, "ls": ls, "ms": look.marker_size,
                   "lw": look.line_width}
            if lo in g:
                yerr = np.vstack([y - g[lo].to_numpy(float), g[hi].to_numpy(float) - y])
                ax.errorbar(xs, y, yerr=np.clip(np.nan_to_num(yerr), 0, None), capsize=2, label=label, **fmt)
            else:
                ax.plot(xs, y, label=label, **fmt)
            if zero.any() and hi in g:
                bound = g[hi].to_numpy(float)[zero]
                ax.plot(xs[zero], bound, ls="none", marker="v", ms=look.marker_size + 2, mfc="none",
                        mec=fmt["color"], gid="upper-bound",
                        label=None if bound_labelled else "no errors: interval's upper end")
                bound_labelled = True
            if band is not None and all(c in g for c in band) and g[band[0]].notna().any():
                ax.fill_between(xs, g[band[0]].to_numpy(float), g[band[1]].to_numpy(float), color=fmt["color"],
                                alpha=0.15, lw=0)
            theory = g[f"{metric}_theory"].to_numpy(float) if f"{metric}_theory" in g else np.array([np.nan])
            if np.isfinite(theory).any() and (key := (tuple(xs), tuple(theory))) not in theory_drawn:
                theory_drawn.add(key)  # schemes that share a theory curve (a nominal value) show it once
                ax.plot(xs, theory, ls=(0, (1, 1)), color="k", lw=look.line_width * 0.8, label=f"{label} (theory)")
            if "shannon_esno_db" in g and g["shannon_esno_db"].notna().any():
                shift = (g[x] - g["esno_db"]).iloc[0]
                ax.axvline(g["shannon_esno_db"].iloc[0] + shift, ls=":", color=fmt["color"], lw=look.line_width * 0.8,
                           label=f"{label} (Shannon limit)")
    return order


def indexed_columns(df: pd.DataFrame, stem: str) -> list[tuple[int, str]]:
    """The columns ``<stem><i>`` of ``df`` as ``(i, name)``, by ``i`` (``ber_l`` -> ``ber_l1`` .. ``ber_l10``)."""
    pattern = re.compile(rf"^{re.escape(stem)}(\d+)$")
    return sorted((int(m.group(1)), c) for c in df.columns if (m := pattern.match(c)))


def indexed_rows(df: pd.DataFrame, stem: str, snr_db: float, reference: str | None = None) -> pd.DataFrame:
    """The numbered columns ``<stem><i>`` of the rows at ``snr_db`` (the scenario axis) as curves over ``i``.

    :output: one row per (row of ``df`` at ``snr_db``, ``i``): ``scheme``, ``channel``, ``config``,
        ``index`` = i (float), ``<stem>`` = the value of ``<stem><i>``, its interval ``<stem>_ci_low`` /
        ``<stem>_ci_high`` where ``df`` has one, and ``<stem>_theory`` = ``<reference><i>`` with ``reference``.
    :raises ValueError: ``df`` has no column ``<stem><i>``.
    """
    columns = indexed_columns(df, stem)
    if not columns:
        raise ValueError(f"no numbered columns {stem}1, {stem}2, ... in the results")
    at = df[np.isclose(df["snr_db"].to_numpy(float), snr_db)]
    parts = []
    for i, column in columns:
        part = at[["scheme", "channel", "config"]].assign(index=float(i), **{stem: at[column]})
        for suffix in ("_ci_low", "_ci_high"):
            if column + suffix in at:
                part[stem + suffix] = at[column + suffix]
        if reference is not None and f"{reference}{i}" in at:
            part[f"{stem}_theory"] = at[f"{reference}{i}"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def plot_indexed(run: RunData, stem: str, snr_db: float, reference: str | None = None, **figure) -> plt.Figure:
    """:func:`plot_metric` of :func:`indexed_rows`: ``<stem><i>`` against ``i`` at ``snr_db``, each
    (scheme, channel, config) a curve, ``<reference><i>`` as its theory line; ``figure``: what
    :func:`plot_metric` takes besides the runs, metric and x."""
    fig = plot_metric([run.where(indexed_rows(run.df, stem, snr_db, reference))], stem, "index",
                      xlabel=f"i (columns {stem}i), at {snr_db:g} dB", **figure)
    fig.axes[0].xaxis.get_major_locator().set_params(integer=True)
    return fig


def save_figure(fig: plt.Figure, stem: Path, formats: list[str] | tuple[str, ...], dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format (rasters at ``dpi``), close it, return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{fmt}") for fmt in formats]
    for p in paths:
        fig.savefig(p, dpi=dpi)
    plt.close(fig)
    return paths


def plot_files(csvs: list[str | Path], out_dir: Path, metrics: list[str] | None = None, x: str = "snr_db",
               formats: tuple[str, ...] = ("png", "pdf"), style: str = "paper", **figure) -> list[Path]:
    """Overlay several runs' results; one figure per metric (default: every rate).

    :param figure: what :func:`plot_metric` takes besides the runs, metric and x: ``schemes``, ``channels``,
        ``where``, ``title``, ``xlim``, ``ylim``, ``size``, ``log_y``; with ``x="index"`` (one file, the
        metrics numbered-column stems, :func:`plot_indexed`) also ``at_snr_db`` and ``reference``.
    """
    runs = [load_run(c) for c in csvs]
    if x == "index":  # numbered columns at one SNR (plot_indexed): the metrics are their stems
        at_snr_db, reference = figure.pop("at_snr_db", None), figure.pop("reference", None)
        if at_snr_db is None or not metrics or len(runs) != 1:
            raise ValueError("x index draws the numbered columns <metric><i> of one results file at one SNR: "
                             "give one file, --metric STEM and --at-snr-db")
        return [path for metric in metrics for path in save_figure(
            plot_indexed(runs[0], metric, at_snr_db, reference, style=style, **figure),
            out_dir / f"{metric}_vs_index_at_{at_snr_db:g}db", list(formats), STYLES[style].dpi)]
    metrics = metrics or rate_columns(runs[0].df)
    out = []
    for metric in metrics:
        fig = plot_metric(runs, metric, x, style=style, **figure)
        out += save_figure(fig, out_dir / f"{metric}_vs_{x}", list(formats), STYLES[style].dpi)
    return out


#: more curves than this in one figure is hard to read: the scenario should split it (``outputs.plots``)
READABLE_CURVES = 12


def plot_run(run_dir, scenario, style: str | None = None, out_dir: Path | None = None) -> list[Path]:
    """The scenario's figures (``outputs.plots``, default every rate) into ``<run>/plots/`` (or ``out_dir``).

    :param style: a :data:`STYLES` name for every figure, overriding each figure's ``style`` and the
        scenario's ``outputs.style``.
    """
    run = load_run(run_dir.csv)
    specs = scenario.outputs.plots or [PlotSpec(metric=m) for m in rate_columns(run.df)]
    out = []
    for i, p in enumerate(specs):
        shown = select_rows(run.df, figure_filters(p.schemes, p.channels, p.configs))
        look = style or p.style or scenario.outputs.style
        prefix = f"{p.name}_" if p.name else ""
        if p.x == "index":
            if shown.empty or not indexed_columns(run.df, p.metric):
                continue
            fig = plot_indexed(run, p.metric, p.at_snr_db, p.reference, log_y=p.log_y, schemes=p.schemes,
                               title=p.title, channels=p.channels, style=look, ylim=p.ylim, size=p.size,
                               configs=p.configs, ylabel=p.ylabel)
            stem = f"{prefix}{p.metric}_vs_index_at_{p.at_snr_db:g}db"
        else:
            if p.metric not in run.df.columns or shown.empty:
                continue  # nothing to draw (a profile or an override may leave a figure's schemes or channels out)
            if not pd.api.types.is_numeric_dtype(run.df[p.metric]):
                warnings.warn(f"outputs.plots[{i}].metric: expected a numeric column, found {p.metric!r} "
                              f"({run.df[p.metric].dtype}); figure skipped, the results are kept", RuntimeWarning,
                              stacklevel=2)
                continue
            curves = len(shown.dropna(subset=[p.metric]).groupby(["scheme", "channel", "config"]))
            if curves > READABLE_CURVES:
                warnings.warn(f"outputs.plots[{i}] ({p.name or p.metric}): {curves} curves in one figure; split it "
                              "with schemes / channels", RuntimeWarning, stacklevel=2)
            fig = plot_metric([run], p.metric, p.x, p.log_y, p.schemes, p.title, p.channels, p.band, style=look,
                              xlim=p.xlim, ylim=p.ylim, size=p.size, configs=p.configs, ylabel=p.ylabel)
            stem = f"{prefix}{p.metric}_vs_{p.x}"
        out += save_figure(fig, (out_dir or run_dir.plots) / stem, scenario.outputs.formats, STYLES[look].dpi)
    return out
