"""The classical digital link: bits -> [CRC] -> [5G LDPC] -> [interleaver] -> Gray QAM/PAM -> channel
-> APP demapper -> [deinterleaver] -> [BP decoder] -> [CRC check]."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.interleaving import Deinterleaver, RandomInterleaver
from sionna.phy.fec.ldpc import LDPC5GDecoder
from sionna.phy.mapping import (
    Constellation,
    Mapper,
    SymbolDemapper,
    SymbolInds2Bits,
)
from torch import nn

from linksim.channels.base import Channel
from linksim.link.demapping import make_demapper
from linksim.link.ldpc import MINSUM_SCALE, LDPC5GEarlyStopDecoder
from linksim.link.ldpc_cpu import LDPC5GCompiledDecoder
from linksim.link.ldpc_encoder import make_ldpc_encoder

__all__ = ["DecoderParams", "DigitalLink", "DigitalLinkParams"]

_CRC_BITS = {"CRC24A": 24, "CRC24B": 24, "CRC24C": 24, "CRC16": 16, "CRC11": 11, "CRC6": 6}


def _check_5g_ldpc(k: int, n: int) -> None:
    """The (k, n) rules Sionna's ``LDPC5GEncoder`` applies when it is built (38.212 base-graph
    selection: BG2 for k <= 292, for k <= 3824 at rate <= 0.67 and for rate <= 1/4; BG1 otherwise),
    checked when the scenario is read instead of after points have run.

    :raises ValueError: naming k, n and the rule.
    """
    if not 12 <= k <= 8448:
        raise ValueError(f"5G LDPC needs 12 <= k <= 8448, found k={k}")
    if not k < n <= 316 * 384:
        raise ValueError(f"5G LDPC needs k < n <= 121344, found k={k}, n={n}")
    rate = k / n
    if not 1 / 5 <= rate <= 0.95:
        raise ValueError(f"5G LDPC needs a rate k/n in [1/5, 0.95] (no repetition coding), found k={k}, n={n}: "
                         f"{rate:.3f}")
    graph = "BG2" if k <= 292 or (k <= 3824 and rate <= 0.67) or rate <= 0.25 else "BG1"
    if graph == "BG2" and k > 3840:
        raise ValueError(f"5G LDPC: k={k}, n={n} (rate {rate:.3f} <= 1/4) selects base graph 2, which takes "
                         "k <= 3840; raise the rate above 1/4 or lower k")
    if graph == "BG1" and rate < 1 / 3:
        raise ValueError(f"5G LDPC: k={k}, n={n} selects base graph 1, which needs a rate of at least 1/3 "
                         f"(found {rate:.3f}); raise the rate or lower k to 3824")


class DecoderParams(BaseModel):
    """5G LDPC BP decoder settings.

    ``implementation``: ``auto`` (the default) is :class:`~linksim.link.ldpc_cpu.LDPC5GCompiledDecoder`,
    Sionna's rate recovery around linksim's flooding core compiled with numba for CPUs (float32 on a
    CPU; anything else goes to the torch core, with the same decisions); ``torch`` is
    :class:`~linksim.link.ldpc.LDPC5GEarlyStopDecoder`, the same core in torch on any device; ``cpu``
    the compiled core only (an error off a CPU); ``sionna`` is Sionna's ``LDPC5GDecoder`` as it is
    (always ``num_iter`` iterations). ``early_stop`` (all but ``sionna``): a codeword stops once its
    hard decisions satisfy every parity check. ``cn_update``: boxplus-phi (exact BP) | boxplus | minsum
    | offset-minsum (Sionna's offset, 0.5) | normalized-minsum (the minimum times ``minsum_scale``).
    ``schedule``: ``flooding`` (every check node from the last iteration's messages, as Sionna) or
    ``layered`` (each check node's update seen at once by the next; compiled core only: fewer
    iterations, other decisions).
    """

    model_config = ConfigDict(extra="forbid")
    num_iter: int = Field(20, ge=1, le=10_000)
    cn_update: Literal["boxplus-phi", "boxplus", "minsum", "offset-minsum", "normalized-minsum"] = "boxplus-phi"
    minsum_scale: float = Field(MINSUM_SCALE, gt=0, le=1)
    schedule: Literal["flooding", "layered"] = "flooding"
    implementation: Literal["auto", "torch", "cpu", "sionna"] = "auto"
    early_stop: bool = True

    @model_validator(mode="after")
    def _consistent(self):
        if self.implementation == "sionna":
            if self.early_stop:
                raise ValueError("Sionna's LDPC5GDecoder has no early stop: set early_stop: false with "
                                 "implementation: sionna")
            if self.cn_update == "normalized-minsum" or self.schedule != "flooding":
                raise ValueError("Sionna's LDPC5GDecoder has no normalized-minsum and no layered schedule")
        if self.schedule == "layered" and self.implementation == "torch":
            raise ValueError("the layered schedule runs in the compiled core: implementation: auto or cpu")
        return self


class DigitalLinkParams(BaseModel):
    """One modulation and coding scheme.

    A coded link feeds APP (or max-log) LLRs to the BP decoder; an uncoded link decides each symbol
    by maximum likelihood (nearest point), so its BER follows the classical closed forms.

    ``k``: bits per block entering the encoder (CRC included); ``n``: coded bits per block, or
    ``None`` for an uncoded link (then ``k`` bits are mapped directly). ``bits_per_symbol``: 1 for
    BPSK (``pam``), even for ``qam``. ``interleaver``: ``nr`` is the 38.212 bit interleaver of the
    5G encoder, ``random`` a fixed random permutation of the coded block.
    """

    model_config = ConfigDict(extra="forbid")
    k: int = Field(..., ge=1)
    n: int | None = None
    modulation: Literal["qam", "pam"] = "qam"
    bits_per_symbol: int = Field(2, ge=1, le=16)
    interleaver: Literal["none", "nr", "random"] = "none"
    crc: Literal["CRC24A", "CRC24B", "CRC24C", "CRC16", "CRC11", "CRC6"] | None = None
    demapping: Literal["app", "maxlog"] = "app"
    decoder: DecoderParams = DecoderParams()

    @model_validator(mode="after")
    def _consistent(self):
        m = self.bits_per_symbol
        if self.modulation == "qam" and m % 2:
            raise ValueError(f"qam needs an even bits_per_symbol, found {m} (use modulation: pam)")
        coded = self.k if self.n is None else self.n
        if coded % m:
            raise ValueError(f"coded block length {coded} is not a multiple of bits_per_symbol {m}")
        if self.n is not None:
            _check_5g_ldpc(self.k, self.n)
        elif self.interleaver == "nr":
            raise ValueError("interleaver 'nr' belongs to the 5G LDPC encoder; an uncoded link has none")
        if self.crc is not None and _CRC_BITS[self.crc] >= self.k:
            raise ValueError(f"{self.crc} leaves no payload in k={self.k} bits")
        return self

    @property
    def crc_bits(self) -> int:
        return 0 if self.crc is None else _CRC_BITS[self.crc]

    @property
    def payload_bits(self) -> int:
        """Information bits per block (``k`` minus the CRC)."""
        return self.k - self.crc_bits

    @property
    def coded_bits(self) -> int:
        return self.k if self.n is None else self.n

    @property
    def num_symbols(self) -> int:
        """Data symbols per block."""
        return self.coded_bits // self.bits_per_symbol


class DigitalLink(nn.Module):
    """A reusable digital transceiver around any :class:`~linksim.channels.base.Channel`.

    :param params: the modulation and coding scheme.

    :input bits: [batch, payload_bits], float32 in {0, 1}.
    :input channel: the channel (with its equaliser).
    :input no: [] or [batch], float32. Noise variance per complex symbol.
    :output bits_hat: [batch, payload_bits], float32 in {0, 1}. Hard decisions.
    :output block_ok: [batch] bool from the CRC, or ``None`` without a CRC (then only a comparison
        with the sent bits detects errors).

    .. rubric:: Example

    >>> link = DigitalLink(DigitalLinkParams(k=512, n=1024, bits_per_symbol=4))
    >>> bits = torch.randint(0, 2, (8, 512)).float()
    >>> bits_hat, ok = link(bits, AWGNChannel(), torch.tensor(0.1))
    """

    def __init__(self, params: DigitalLinkParams):
        super().__init__()
        self.params = p = params
        const = Constellation(p.modulation, p.bits_per_symbol)
        self.mapper = Mapper(constellation=const)
        self.demapper = make_demapper(p.demapping, const)
        if p.n is None:  # uncoded: maximum-likelihood symbol decisions, as in the classical closed forms
            self.detector = SymbolDemapper(constellation=const, hard_out=True)
            self.index_to_bits = SymbolInds2Bits(p.bits_per_symbol)
        self.crc_encoder = CRCEncoder(p.crc) if p.crc else None
        self.crc_decoder = CRCDecoder(self.crc_encoder) if p.crc else None
        if p.n is not None:
            m_nr = p.bits_per_symbol if p.interleaver == "nr" else None
            self.encoder = make_ldpc_encoder(p.k, p.n, m_nr)
            d = p.decoder
            if d.implementation == "sionna":
                self.decoder = LDPC5GDecoder(self.encoder, cn_update=d.cn_update, num_iter=d.num_iter, hard_out=True)
            elif d.implementation == "torch":
                self.decoder = LDPC5GEarlyStopDecoder(self.encoder, cn_update=d.cn_update, num_iter=d.num_iter,
                                                      early_stop=d.early_stop, minsum_scale=d.minsum_scale)
            else:
                self.decoder = LDPC5GCompiledDecoder(self.encoder, cn_update=d.cn_update, num_iter=d.num_iter,
                                                     early_stop=d.early_stop, minsum_scale=d.minsum_scale,
                                                     schedule=d.schedule, cpu_only=d.implementation == "cpu")
        else:
            self.encoder = self.decoder = None
        if p.interleaver == "random":
            self.interleaver = RandomInterleaver(seed=1234, keep_batch_constant=True)
            self.deinterleaver = Deinterleaver(self.interleaver)
        else:
            self.interleaver = self.deinterleaver = None

    def transmit(self, bits: torch.Tensor) -> torch.Tensor:
        """[batch, payload_bits] bits -> [batch, num_symbols] complex64 unit-energy symbols."""
        c = bits if self.crc_encoder is None else self.crc_encoder(bits)
        if self.encoder is not None:
            c = self.encoder(c)
        if self.interleaver is not None:
            c = self.interleaver(c)
        return self.mapper(c)

    def receive(self, y: torch.Tensor, no_eff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Equalised symbols and their noise variance -> (bits_hat, block_ok)."""
        if self.decoder is None:
            c_hat = self.index_to_bits(self.detector(y, no_eff)).flatten(-2)
        else:
            c_hat = self.demapper(y, no_eff)
        if self.deinterleaver is not None:
            c_hat = self.deinterleaver(c_hat)
        if self.decoder is not None:
            c_hat = self.decoder(c_hat)
        if self.crc_decoder is None:
            return c_hat, None
        bits_hat, ok = self.crc_decoder(c_hat)
        return bits_hat, ok.squeeze(-1)

    def compile_decoder(self) -> None:
        """Compile the BP iterations of linksim's torch decoder (no effect for the others or an uncoded link)."""
        if hasattr(self.decoder, "compile_iterations"):
            self.decoder.compile_iterations()

    @property
    def last_iterations(self) -> torch.Tensor | None:
        """[blocks] int32: BP iterations each block of the last :meth:`receive` used, or ``None`` (uncoded
        link, or Sionna's decoder, which always runs ``num_iter``)."""
        return getattr(self.decoder, "last_iterations", None)

    def forward(
        self, bits: torch.Tensor, channel: Channel, no: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        y, no_eff = channel(self.transmit(bits), no)
        return self.receive(y, no_eff)
