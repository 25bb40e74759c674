"""The training-SNR sampler every learned scheme shares: a fixed Es/N0, or one drawn per example."""

from __future__ import annotations

import torch

from linksim.snr import esno_db_to_no

__all__ = ["training_snr_db", "training_no"]


def training_snr_db(snr_db: float | tuple[float, float], batch: int, generator: torch.Generator,
                    device: torch.device | str) -> torch.Tensor:
    """Es/N0 in dB per example.

    :param snr_db: a fixed value, or ``(low, high)``: uniform in dB, one draw per example from ``generator``.
    :output: [batch], torch.float32, dB.
    """
    if isinstance(snr_db, (tuple, list)):
        u = torch.rand(batch, generator=generator, device=device)
        return snr_db[0] + (snr_db[1] - snr_db[0]) * u
    return torch.full((batch,), float(snr_db), device=device)


def training_no(snr_db: float | tuple[float, float] | None, batch: int, generator: torch.Generator,
                device: torch.device | str) -> torch.Tensor | None:
    """Noise variance per complex channel use (linear) per example, ``[batch]`` float32; ``None`` when
    ``snr_db`` is ``None`` (noise-free training)."""
    if snr_db is None:
        return None
    return esno_db_to_no(training_snr_db(snr_db, batch, generator, device))
