"""Rayleigh block fading, with perfect-CSI equalisation or none."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, PositiveInt
from sionna.phy.channel import AWGN, RayleighBlockFading

from linksim.registry import register_channel, register_channel_preset
from linksim.channels.base import Channel, expand_noise

__all__ = ["RayleighChannel", "RayleighParams"]


class RayleighParams(BaseModel):
    """``coherence_symbols``: symbols per fading block; ``None`` = one fade per item (codeword, image).
    ``csi``: ``perfect`` (zero forcing with the true fade) or ``none`` (the receiver gets ``y`` as it
    is and knows only the average SNR, as DeepJSCC's slow-fading receiver, which learns to cope)."""

    model_config = ConfigDict(extra="forbid")
    coherence_symbols: PositiveInt | None = None
    csi: Literal["perfect", "none"] = "perfect"


@register_channel("rayleigh", RayleighParams)
class RayleighChannel(Channel):
    """SISO Rayleigh block fading: ``y = h x + n``, ``h ~ CN(0, 1)`` constant over a block, then
    zero-forcing with perfect CSI: ``x_hat = y / h``, ``no_eff = no / |h|^2``; without CSI
    (``csi: none``) ``x_hat = y`` and ``no_eff = no`` (E|h|^2 = 1, so Es/N0 is the average SNR).

    The fading coefficients come from Sionna's ``RayleighBlockFading``; ``coherence_symbols = 1``
    gives i.i.d. (fast) fading per symbol, ``None`` one coefficient per row of ``x``.
    Shapes and units as :class:`~linksim.channels.base.Channel`.
    """

    def __init__(self, params: RayleighParams | None = None):
        super().__init__()
        params = params or RayleighParams()
        self.coherence, self.csi = params.coherence_symbols, params.csi
        self.fading = RayleighBlockFading(1, 1, 1, 1)
        self.awgn = AWGN()

    def forward(self, x: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n = x.shape
        block = n if self.coherence is None else min(self.coherence, n)
        num_blocks = -(-n // block)
        a, _ = self.fading(batch * num_blocks, 1)
        h = a.reshape(batch, num_blocks).repeat_interleave(block, dim=1)[:, :n]
        no_full = expand_noise(no, x)
        y = self.awgn(h * x, no_full)
        if self.csi == "none":
            return y, no_full
        gain = h.abs().square()
        return y / h, no_full / gain


register_channel_preset("rayleigh", "rayleigh")
register_channel_preset("rayleigh-fast", "rayleigh", {"coherence_symbols": 1})
register_channel_preset("rayleigh-nocsi", "rayleigh", {"csi": "none"})
