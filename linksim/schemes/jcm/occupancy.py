"""The paper's Figs. 6-7: how often each constellation point was sent, one panel per SNR point.

Reads a finished run: the ``occupancy_<i>`` counters of ``results.csv`` and the scheme's point coordinates
(``constellation`` in the manifest's facts). Marker area is proportional to the probability of the point;
each panel's title gives the SNR and the entropy in bits per symbol (``log2 M`` for uniform use).

Usage: ``python -m linksim.schemes.jcm.occupancy RUN_DIR SCHEME [--channel awgn]`` writes
``RUN_DIR/plots/<SCHEME>_occupancy.{png,pdf}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from linksim.results import RunDirectory

__all__ = ["occupancy_figure", "plot_occupancy"]


def occupancy_figure(points: np.ndarray, counts: dict[float, np.ndarray], title: str = "") -> plt.Figure:
    """Scatter of the ``M`` points per SNR, marker area proportional to probability.

    :input points: [M, 2], float. Point coordinates (I, Q).
    :input counts: SNR in dB -> [M] counts of the points sent at that SNR.
    """
    fig, axes = plt.subplots(1, len(counts), figsize=(3.2 * len(counts), 3.4), squeeze=False)
    lim = 1.15 * np.abs(points).max()
    for ax, (snr, c) in zip(axes[0], sorted(counts.items()), strict=True):
        p = c / c.sum()
        nz = p[p > 0]
        entropy = float(-(nz * np.log2(nz)).sum())
        ax.scatter(points[:, 0], points[:, 1], s=2000 * p * len(p) / 16, alpha=0.7)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="I", ylabel="Q")
        ax.set_title(f"{snr:g} dB: H = {entropy:.2f} of {np.log2(len(p)):.0f} bits", fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_occupancy(run_dir: str | Path, scheme: str, channel: str = "awgn",
                   formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """:func:`occupancy_figure` of ``scheme`` on ``channel`` in a run; returns the files written."""
    run = RunDirectory(Path(run_dir))
    facts = run.load_manifest()["schemes"][scheme]
    if "constellation" not in facts:
        raise ValueError(f"{scheme}: sends no constellation points (an analog scheme?)")
    points = np.asarray(facts["constellation"], dtype=float)
    df = pd.read_csv(run.csv)
    rows = df[(df["scheme"] == scheme) & (df["channel"] == channel)]
    if rows.empty:
        raise ValueError(f"{run.csv}: no rows of {scheme} on {channel}")
    columns = [f"occupancy_{i}" for i in range(len(points))]
    counts = {float(r["esno_db"]): r[columns].to_numpy(float) for _, r in rows.iterrows()}
    fig = occupancy_figure(points, counts, f"{scheme} on {channel}: points sent (area ~ probability)")
    out = []
    for fmt in formats:
        path = run.plots / f"{scheme}_occupancy.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
        out.append(path)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("scheme")
    parser.add_argument("--channel", default="awgn")
    args = parser.parse_args(argv)
    for path in plot_occupancy(args.run_dir, args.scheme, args.channel):
        print(path)


if __name__ == "__main__":
    main()
