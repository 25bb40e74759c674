"""Scheme: a classical coded (5G LDPC) or uncoded QAM/PAM link carrying random bits."""

from __future__ import annotations

import torch
from sionna.phy.mapping import BinarySource

from linksim.channels.awgn import AWGNChannel
from linksim.channels.base import Channel
from linksim.channels.rayleigh import RayleighChannel
from linksim.link.digital import DigitalLink, DigitalLinkParams
from linksim.registry import register_scheme
from linksim.schemes.base import Rate, Scheme, SchemeContext
from linksim.snr import LinkBudget
from linksim.theory import shannon_esno_db, uncoded_ber_awgn, uncoded_ber_rayleigh

__all__ = ["DigitalLinkScheme"]


@register_scheme("digital_link", DigitalLinkParams)
class DigitalLinkScheme(Scheme):
    """Uniform random bits through :class:`~linksim.link.digital.DigitalLink`; an item is one block.

    The primary rate (``error_rate``, ``target_errors``) is the BLER of a coded link and the BER of
    an uncoded one.

    Counters: ``samples`` (blocks), ``block_errors``, ``bits``, ``bit_errors``, with a CRC
    ``undetected_errors`` (blocks in error that passed the CRC), and with linksim's BP decoder
    ``bp_iterations`` (reported per block as ``bp_iterations_mean``). Theory columns: ``ber_theory``
    for an uncoded link over AWGN or Rayleigh, ``shannon_esno_db`` (AWGN capacity at the link's
    information rate) for a coded link over AWGN.
    """

    rates = {"bler": Rate("block_errors", "samples"), "ber": Rate("bit_errors", "bits")}

    def __init__(self, params: DigitalLinkParams):
        super().__init__()
        self.params = params
        self.primary = "ber" if params.n is None else "bler"
        self.link = DigitalLink(params)
        if params.n is not None and params.decoder.implementation != "sionna":
            self.rates = {**self.rates, "bp_iterations_mean": Rate("bp_iterations", "samples", interval=False)}
        self.source = BinarySource()

    def prepare(self, context: SchemeContext) -> None:
        if context.compile:
            self.link.compile_decoder()

    def budget(self, channel: Channel) -> LinkBudget:
        return LinkBudget(channel.channel_uses(self.params.num_symbols), float(self.params.payload_bits))

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        bits = self.source([batch_size, self.params.payload_bits])
        bits_hat, ok = self.link(bits, channel, no)
        wrong = bits != bits_hat
        block_wrong = wrong.any(dim=-1)
        counters = {
            "samples": batch_size,
            "block_errors": int(block_wrong.sum()),
            "bits": bits.numel(),
            "bit_errors": int(wrong.sum()),
        }
        if ok is not None:
            counters["undetected_errors"] = int((block_wrong & ok).sum())
        if self.link.last_iterations is not None:
            counters["bp_iterations"] = int(self.link.last_iterations.sum())
        return counters

    def theory(self, channel: Channel, esno_db: float) -> dict[str, float]:
        p = self.params
        if p.n is not None:
            if isinstance(channel, AWGNChannel):
                bpcu = self.budget(channel).bits_per_channel_use
                return {"shannon_esno_db": shannon_esno_db(bpcu)}
            return {}
        if isinstance(channel, AWGNChannel):
            return {"ber_theory": uncoded_ber_awgn(p.modulation, p.bits_per_symbol, esno_db)}
        if isinstance(channel, RayleighChannel):
            return {"ber_theory": uncoded_ber_rayleigh(p.modulation, p.bits_per_symbol, esno_db)}
        return {}
