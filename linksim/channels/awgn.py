"""Additive white Gaussian noise channel."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict
from sionna.phy.channel import AWGN

from linksim.registry import register_channel, register_channel_preset
from linksim.channels.base import Channel, expand_noise

__all__ = ["AWGNChannel", "AWGNParams"]


class AWGNParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_channel("awgn", AWGNParams)
class AWGNChannel(Channel):
    """``y = x + n``, ``n ~ CN(0, no)`` (Sionna ``AWGN``); no equalisation needed, ``no_eff = no``.

    Shapes and units as :class:`~linksim.channels.base.Channel`.

    .. rubric:: Example

    >>> ch = AWGNChannel(AWGNParams())
    >>> y, no_eff = ch(torch.ones(4, 8, dtype=torch.complex64), torch.tensor(0.1))
    >>> y.shape, no_eff.shape
    (torch.Size([4, 8]), torch.Size([4, 8]))
    """

    def __init__(self, params: AWGNParams | None = None):
        super().__init__()
        self.awgn = AWGN()

    def forward(self, x: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        no_full = expand_noise(no, x)
        return self.awgn(x, no_full), no_full


register_channel_preset("awgn", "awgn")
