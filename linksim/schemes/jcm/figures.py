"""The paper's figures that are not curves over the SNR grid, drawn from a finished run.

- Figs. 6-7 (:func:`plot_occupancy`): how often each constellation point was sent, one panel per SNR point,
  from the ``occupancy_<i>`` counters of ``results.csv`` and the scheme's point coordinates (``constellation``
  in the manifest's facts). Marker area is proportional to the probability of the point; each panel's title
  gives the SNR and the entropy in bits per symbol (``log2 M`` for uniform use).
- Fig. 8 (:func:`plot_training_curves`): training-split accuracy and PSNR per epoch of the models trained at
  one SNR, from ``<run>/training/<scheme>-snr<SNR>.csv``.

Usage::

    python -m linksim.schemes.jcm.figures occupancy RUN_DIR SCHEME [--channel awgn]   # <SCHEME>_occupancy
    python -m linksim.schemes.jcm.figures curves RUN_DIR SCHEME [SCHEME ...] --snr 18  # training_snr<SNR>

write ``RUN_DIR/plots/<name>.{png,pdf}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from linksim.plots import save_figure
from linksim.results import RunDirectory

__all__ = ["occupancy_figure", "plot_occupancy", "plot_training_curves"]


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
    return save_figure(fig, run.plots / f"{scheme}_occupancy", formats)


def plot_training_curves(run_dir: str | Path, schemes: list[str], snr_db: float,
                         formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Training-split accuracy and PSNR per epoch of each scheme's model trained at ``snr_db`` (Fig. 8)."""
    run = RunDirectory(Path(run_dir))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for scheme in schemes:
        path = run.path / "training" / f"{scheme}-snr{snr_db:g}.csv"
        if not path.is_file():
            raise ValueError(f"{path}: no training log (was {scheme} trained at {snr_db:g} dB in this run?)")
        log = pd.read_csv(path)
        for ax, metric in zip(axes, ("accuracy", "psnr_db"), strict=True):
            ax.plot(log["epoch"], log[metric], marker=".", label=scheme)
    for ax, label in zip(axes, ("accuracy (training split)", "PSNR per colour channel [dB] (training split)"),
                         strict=True):
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Training curves of the models trained at {snr_db:g} dB", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, run.plots / f"training_snr{snr_db:g}", formats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    occ = sub.add_parser("occupancy", help="Figs. 6-7: the points sent per SNR")
    occ.add_argument("run_dir")
    occ.add_argument("scheme")
    occ.add_argument("--channel", default="awgn")
    curves = sub.add_parser("curves", help="Fig. 8: accuracy and PSNR per training epoch")
    curves.add_argument("run_dir")
    curves.add_argument("schemes", nargs="+")
    curves.add_argument("--snr", type=float, required=True, help="training SNR of the models, dB")
    args = parser.parse_args(argv)
    if args.figure == "occupancy":
        paths = plot_occupancy(args.run_dir, args.scheme, args.channel)
    else:
        paths = plot_training_curves(args.run_dir, args.schemes, args.snr)
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
