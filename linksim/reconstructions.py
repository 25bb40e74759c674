"""The example-reconstruction figure: a few evaluation images as sent and as each image scheme's
receiver shows them at chosen SNR points (``outputs.examples`` in a scenario)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sionna.phy import config as sionna_config  # noqa: E402

from linksim.engine import derived_seed, seed_everything  # noqa: E402
from linksim.metrics import psnr  # noqa: E402
from linksim.snr import esno_db_to_no, esno_from_axis  # noqa: E402

__all__ = ["reconstruction_rows", "plot_reconstructions"]


@torch.no_grad()
def reconstruction_rows(schemes: dict, labels: dict[str, str], channel, spec, grid,
                        seed: int) -> list[tuple[str, torch.Tensor]]:
    """``(row label, uint8 [B, C, H, W])`` rows: the originals, then every scheme at every SNR point.

    :param schemes: scheme name -> prepared :class:`~linksim.schemes.base.Scheme` (image schemes).
    :param labels: scheme name -> the name shown on its rows.
    :param channel: the channel every row goes through.
    :param spec: the scenario's ``outputs.examples`` (:class:`~linksim.config.ExamplesSpec`).
    :param grid: the scenario's SNR grid (``spec.snr_db`` is on its axis).
    :param seed: the scenario seed; every row is seeded from (seed, scheme, channel, SNR).
    """
    first = schemes[spec.schemes[0]]
    idx = torch.arange(spec.images)
    rows = [("original", first.originals(idx).cpu())]
    for name in spec.schemes:
        scheme = schemes[name]
        for snr in spec.snr_db:
            esno = esno_from_axis(snr, grid.axis, scheme.budget(channel), grid.reference_complex_uses)
            no = esno_db_to_no(torch.tensor(esno, dtype=torch.float32, device=sionna_config.device))
            seed_everything(derived_seed(seed, "examples", name, spec.channel, f"{snr:.6f}"))
            shown = scheme.reconstruct(idx, no.repeat(len(idx)), channel).cpu()
            value = float(psnr(rows[0][1], shown, layout="NCHW").mean())
            rows.append((f"{labels.get(name, name)} @ {snr:g} dB\n({value:.1f} dB PSNR)", shown))
    return rows


def plot_reconstructions(rows: list[tuple[str, torch.Tensor]], stem: Path, formats: list[str],
                         title: str | None = None) -> list[Path]:
    """One row of thumbnails per entry of :func:`reconstruction_rows`, saved as ``stem.<format>``."""
    n_rows, n_cols = len(rows), len(rows[0][1])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.1 * n_cols + 2.4, 1.1 * n_rows + 0.3), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            img = images[c].permute(1, 2, 0).numpy()
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                      vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150)
        out.append(path)
    plt.close(fig)
    return out
