"""Rayleigh block fading with perfect-CSI equalisation."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, PositiveInt
from sionna.phy.channel import AWGN, RayleighBlockFading

from linksim.registry import register_channel, register_channel_preset
from linksim.channels.base import Channel, expand_noise

__all__ = ["RayleighChannel", "RayleighParams"]


class RayleighParams(BaseModel):
    """``coherence_symbols``: symbols per fading block; ``None`` = one fade per item (codeword, image)."""

    model_config = ConfigDict(extra="forbid")
    coherence_symbols: PositiveInt | None = None


@register_channel("rayleigh", RayleighParams)
class RayleighChannel(Channel):
    """SISO Rayleigh block fading: ``y = h x + n``, ``h ~ CN(0, 1)`` constant over a block, then
    zero-forcing with perfect CSI: ``x_hat = y / h``, ``no_eff = no / |h|^2``.

    The fading coefficients come from Sionna's ``RayleighBlockFading``; ``coherence_symbols = 1``
    gives i.i.d. (fast) fading per symbol, ``None`` one coefficient per row of ``x``.
    Shapes and units as :class:`~linksim.channels.base.Channel`.
    """

    def __init__(self, params: RayleighParams | None = None):
        super().__init__()
        self.coherence = (params or RayleighParams()).coherence_symbols
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
        gain = h.abs().square()
        return y / h, no_full / gain


register_channel_preset("rayleigh", "rayleigh")
register_channel_preset("rayleigh-fast", "rayleigh", {"coherence_symbols": 1})
