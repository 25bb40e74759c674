"""The SNR convention of linksim, in one place.

Every channel in linksim carries unit-energy complex symbols, so the physical quantity is
**Es/N0 per complex channel use**: ``no = 10**(-esno_db/10)`` is the noise variance per complex
symbol (``no/2`` per real dimension). A real-valued learned transmitter that packs two real
channel uses into one complex symbol of energy 1 (each real part of power 1/2) sees the same
SNR per real dimension, ``1/sigma^2 = Es/N0``, so the papers' "SNR = 1/sigma^2" is this Es/N0.

A scenario's SNR grid may be given on three axes; each scheme converts it with its own budget:

* ``esno``: Es/N0 per complex channel use, dB.
* ``ebno``: Eb/N0 = Es/N0 - 10 log10(info_bits / channel_uses), dB (needs info bits per item).
* ``snr_norm``: rate-normalised SNR = Es/N0 + 10 log10(channel_uses / reference_channel_uses), dB:
  the energy spent per item relative to a reference scheme that uses ``reference_channel_uses``.

``channel_uses`` always counts **complex** channel uses per source item (a codeword, an image),
overheads such as OFDM pilots included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["SnrAxis", "LinkBudget", "esno_db_to_no", "axis_label", "snr_on_all_axes", "esno_from_axis"]

SnrAxis = Literal["esno", "ebno", "snr_norm"]


@dataclass(frozen=True)
class LinkBudget:
    """What one source item costs on the channel.

    :param channel_uses: complex channel uses per item (> 0), overheads included.
    :param info_bits: information bits per item, or ``None`` when the item is not bits
        (an image, a feature vector): the ``ebno`` axis is then undefined.
    """

    channel_uses: float
    info_bits: float | None = None

    @property
    def bits_per_channel_use(self) -> float | None:
        return None if self.info_bits is None else self.info_bits / self.channel_uses


def esno_db_to_no(esno_db: torch.Tensor) -> torch.Tensor:
    """Noise variance per complex symbol for unit-energy symbols: ``no = 10^(-Es/N0 [dB] / 10)``."""
    return 10.0 ** (-esno_db / 10.0)


def _offsets(budget: LinkBudget, reference_channel_uses: float | None) -> dict[str, float | None]:
    """dB to add to Es/N0 to land on each axis (``None`` where the axis is undefined)."""
    bpcu = budget.bits_per_channel_use
    return {
        "esno": 0.0,
        "ebno": None if bpcu is None else -10.0 * math.log10(bpcu),
        "snr_norm": None
        if reference_channel_uses is None
        else 10.0 * math.log10(budget.channel_uses / reference_channel_uses),
    }


def esno_from_axis(
    value_db: float, axis: SnrAxis, budget: LinkBudget, reference_channel_uses: float | None = None
) -> float:
    """Es/N0 in dB of a grid value given on ``axis``; raises ``ValueError`` if the axis is undefined."""
    offset = _offsets(budget, reference_channel_uses)[axis]
    if offset is None:
        need = "information bits per item" if axis == "ebno" else "snr.reference_channel_uses"
        raise ValueError(f"the {axis} axis needs {need}")
    return value_db - offset


def snr_on_all_axes(
    esno_db: float, budget: LinkBudget, reference_channel_uses: float | None = None
) -> dict[str, float]:
    """``{"esno_db", "ebno_db", "snr_norm_db"}`` of one operating point (NaN where undefined)."""
    return {
        f"{axis}_db": (math.nan if off is None else esno_db + off)
        for axis, off in _offsets(budget, reference_channel_uses).items()
    }


def axis_label(axis: SnrAxis, reference: str | None = None) -> str:
    """Human label of an SNR axis, stating its convention; ``reference`` names the reference
    channel uses of the rate-normalised axis (e.g. ``"56 real"``)."""
    if axis == "esno":
        return "Es/N0 per complex channel use [dB]"
    if axis == "ebno":
        return "Eb/N0 [dB]"
    return f"rate-normalised SNR = Es/N0 + 10 log10(channel uses / {reference or 'reference'}) [dB]"
