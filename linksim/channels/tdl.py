"""3GPP TR 38.901 tapped-delay-line (TDL) channel over an OFDM resource grid."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator
from sionna.phy.channel import OFDMChannel
from sionna.phy.channel.tr38901 import TDL
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import LMMSEEqualizer, LSChannelEstimator, ResourceGrid, ResourceGridMapper

from linksim.registry import register_channel, register_channel_preset
from linksim.channels.base import Channel

__all__ = ["TDLChannel", "TDLParams"]


class TDLParams(BaseModel):
    """TDL profile, OFDM numerology and receiver.

    ``delay_spread`` in seconds, ``carrier_frequency`` in Hz, speeds in m/s,
    ``subcarrier_spacing`` in Hz. ``csi``: ``perfect`` (true frequency response) or ``ls``
    (least-squares estimates on Kronecker pilots, linear interpolation); LMMSE equalisation either way.
    """

    model_config = ConfigDict(extra="forbid")
    model: Literal["A", "B", "C", "D", "E"] = "A"
    delay_spread: float = Field(100e-9, gt=0, le=1e-3, allow_inf_nan=False)
    carrier_frequency: float = Field(3.5e9, gt=0, le=1e12, allow_inf_nan=False)
    min_speed: float = Field(0.0, ge=0, le=1e4, allow_inf_nan=False)
    max_speed: float | None = Field(None, ge=0, le=1e4, allow_inf_nan=False)
    fft_size: PositiveInt = 72
    subcarrier_spacing: PositiveFloat = 30e3
    num_ofdm_symbols: PositiveInt = 14
    pilot_ofdm_symbols: list[int] = [2, 11]
    csi: Literal["perfect", "ls"] = "perfect"

    @model_validator(mode="after")
    def _speeds_ordered(self):
        if self.max_speed is not None and self.max_speed < self.min_speed:
            raise ValueError(f"max_speed must be at least min_speed ({self.min_speed}), found {self.max_speed}")
        return self

    @model_validator(mode="after")
    def _pilots_inside_grid(self):
        if any(not 0 <= i < self.num_ofdm_symbols for i in self.pilot_ofdm_symbols):
            raise ValueError(f"pilot_ofdm_symbols must lie in [0, {self.num_ofdm_symbols - 1}]")
        if len(set(self.pilot_ofdm_symbols)) >= self.num_ofdm_symbols:
            raise ValueError("pilot_ofdm_symbols leave no OFDM symbol for data")
        return self


@register_channel("tdl", TDLParams)
class TDLChannel(Channel):
    """SISO TDL-A..E channel simulated in the frequency domain with Sionna's ``OFDMChannel``.

    Each row of ``x`` is zero-padded to whole resource grids (``G = ceil(n / data REs)`` grids per
    row, each with its own channel realisation), passed through the channel, then equalised
    (LMMSE, perfect CSI or LS estimates). The cyclic prefix is not simulated (no inter-symbol
    interference in this frequency-domain model) and not counted; pilots are: one data symbol costs
    ``resource elements / data resource elements`` complex channel uses (:meth:`channel_uses`).
    The padding is not counted, as other traffic could fill it.
    Shapes and units as :class:`~linksim.channels.base.Channel`; ``no`` is the noise variance per
    resource element, so Es/N0 is per resource element (pilots have the energy of data symbols).
    """

    def __init__(self, params: TDLParams | None = None):
        super().__init__()
        p = params or TDLParams()
        self.params = p
        self.grid = ResourceGrid(
            num_ofdm_symbols=p.num_ofdm_symbols,
            fft_size=p.fft_size,
            subcarrier_spacing=p.subcarrier_spacing,
            pilot_pattern="kronecker",
            pilot_ofdm_symbol_indices=p.pilot_ofdm_symbols,
        )
        tdl = TDL(
            p.model,
            delay_spread=p.delay_spread,
            carrier_frequency=p.carrier_frequency,
            min_speed=p.min_speed,
            max_speed=p.max_speed,
        )
        self.ofdm = OFDMChannel(tdl, self.grid, normalize_channel=False, return_channel=True)
        self.mapper = ResourceGridMapper(self.grid)
        streams = StreamManagement(np.array([[1]]), 1)
        self.estimator = LSChannelEstimator(self.grid, interpolation_type="lin") if p.csi == "ls" else None
        self.equalizer = LMMSEEqualizer(self.grid, streams)

    @property
    def overhead(self) -> float:
        """Resource elements per data resource element (>= 1)."""
        return self.grid.num_resource_elements / self.grid.num_data_symbols

    def channel_uses(self, num_symbols: int) -> float:
        return num_symbols * self.overhead

    def forward(self, x: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n = x.shape
        per_grid = self.grid.num_data_symbols
        grids = -(-n // per_grid)
        x_pad = torch.nn.functional.pad(x, (0, grids * per_grid - n))
        x_rg = self.mapper(x_pad.reshape(batch * grids, 1, 1, per_grid))
        no = torch.as_tensor(no, dtype=x.real.dtype, device=x.device)
        no_g = no.repeat_interleave(grids) if no.dim() == 1 else no.expand(batch * grids)
        y, h = self.ofdm(x_rg, no_g)
        if self.estimator is None:
            h_hat, err_var = h, torch.zeros((), device=x.device)  # one stream per tx antenna
        else:
            h_hat, err_var = self.estimator(y, no_g)
        x_hat, no_eff = self.equalizer(y, h_hat, err_var, no_g)
        x_hat = x_hat.reshape(batch, grids * per_grid)[:, :n]
        no_eff = no_eff.reshape(batch, grids * per_grid)[:, :n]
        return x_hat, no_eff


for _model in "ABCDE":
    register_channel_preset(f"tdl-{_model.lower()}", "tdl", {"model": _model})
    register_channel_preset(f"tdl-{_model.lower()}-ls", "tdl", {"model": _model, "csi": "ls"})
