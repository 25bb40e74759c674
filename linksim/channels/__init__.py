"""Channels: complex symbols + noise variance in, equalised symbols + post-equalisation noise variance out."""

from linksim.channels.awgn import AWGNChannel, AWGNParams
from linksim.channels.base import Channel
from linksim.channels.rayleigh import RayleighChannel, RayleighParams
from linksim.channels.tdl import TDLChannel, TDLParams

__all__ = ["Channel", "AWGNChannel", "AWGNParams", "RayleighChannel", "RayleighParams", "TDLChannel", "TDLParams"]
