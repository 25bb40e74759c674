"""Digital-link throughput: linksim's coded link against the direct Sionna chain.

Both chains: random bits -> 5G LDPC encoder -> QAM/PAM mapper -> AWGN -> APP demapper -> BP decoder
(20 iterations, boxplus-phi), the same k, n, modulation, batch and Eb/N0, the same device, in this
process. The reference is Sionna's blocks called directly (BinarySource, LDPC5GEncoder, Mapper, AWGN,
Demapper, LDPC5GDecoder); linksim is its ``digital_link`` scheme (DigitalLink + AWGN channel +
counters), with linksim's decoder with and without early stopping, compiled (the first, untimed call
compiles), and with Sionna's decoder.

Prints information Mbit/s and BLER per chain and configuration, then ``ratio=<x>``: linksim's default
path on this device (early stop; compiled on a GPU, as ``--compile auto``) over the Sionna chain on
(512, 1024, 16-QAM).

    python bench/link_throughput.py [--device cpu] [--min-time 3]
"""

from __future__ import annotations

import argparse

import torch
from _common import environment, pick_device, rate
from sionna.phy import config as sionna_config
from sionna.phy.channel import AWGN
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import BinarySource, Constellation, Demapper, Mapper
from sionna.phy.utils import ebnodb2no

from linksim.accel import resolve_compile
from linksim.channels.awgn import AWGNChannel
from linksim.link.digital import DecoderParams, DigitalLinkParams
from linksim.schemes.base import SchemeContext
from linksim.schemes.digital_link import DigitalLinkScheme

# (label, k, n, bits per symbol, Eb/N0 dB at or just above the waterfall, batch on GPU, batch on CPU)
CONFIGS = [
    ("(512, 1024) 16-QAM", 512, 1024, 4, 4.0, 50_000, 2_000),
    ("(3840, 15360) BPSK", 3840, 15360, 1, 0.75, 5_000, 100),
]

# name -> (decoder settings, torch.compile of the BP iterations)
VARIANTS = {
    "linksim, early stop": (DecoderParams(), False),
    "linksim, early stop, compiled": (DecoderParams(), True),
    "linksim, 20 iterations": (DecoderParams(early_stop=False), False),
    "linksim + Sionna decoder": (DecoderParams(implementation="sionna", early_stop=False), False),
}


class SionnaChain:
    """The reference: Sionna's blocks called one after the other."""

    def __init__(self, k: int, n: int, m: int):
        const = Constellation("qam" if m > 1 else "pam", m)
        self.k, self.source, self.encoder = k, BinarySource(), LDPC5GEncoder(k, n)
        self.mapper, self.awgn = Mapper(constellation=const), AWGN()
        self.demapper = Demapper("app", constellation=const)
        self.decoder = LDPC5GDecoder(self.encoder, num_iter=20, hard_out=True)

    def __call__(self, batch: int, no: torch.Tensor) -> tuple[int, int]:
        bits = self.source([batch, self.k])
        llr = self.demapper(self.awgn(self.mapper(self.encoder(bits)), no), no)
        return batch, int((self.decoder(llr) != bits).any(dim=1).sum())


class LinksimChain:
    """linksim's ``digital_link`` scheme on its AWGN channel."""

    def __init__(self, k: int, n: int, m: int, decoder: DecoderParams, compile_decoder: bool):
        params = DigitalLinkParams(k=k, n=n, modulation="qam" if m > 1 else "pam", bits_per_symbol=m, decoder=decoder)
        self.scheme, self.channel = DigitalLinkScheme(params), AWGNChannel()
        self.scheme.prepare(SchemeContext(compile=compile_decoder))  # as `linksim run --compile` does

    def __call__(self, batch: int, no: torch.Tensor) -> tuple[int, int]:
        c = self.scheme.simulate(batch, no, self.channel)
        return c["samples"], c["block_errors"]


def measure(chain, k: int, batch: int, no: torch.Tensor, device: str, min_time: float) -> tuple[float, float]:
    """(information Mbit/s, BLER over the timed and warm-up calls)."""
    counts = [0, 0]

    def call():
        blocks, errors = chain(batch, no)
        counts[0] += blocks
        counts[1] += errors

    blocks_per_s = rate(call, batch, device, min_time)
    return blocks_per_s * k / 1e6, counts[1] / counts[0]


SNR_POINTS = 8


def multi_snr(chain: LinksimChain, k: int, m: int, n: int, batch: int, device: str, min_time: float):
    """Information Mbit/s of ``SNR_POINTS`` Eb/N0 points simulated one call each (``batch /
    SNR_POINTS`` blocks) and all in one call (per-block noise variances)."""
    ebno = CONFIGS[0][4] + torch.linspace(-1, 0.75, SNR_POINTS)
    no = torch.as_tensor(ebnodb2no(ebno, m, k / n), dtype=torch.float32).to(device)
    part = batch // SNR_POINTS
    no_blocks = no.repeat_interleave(part)

    def per_point():
        for i in range(SNR_POINTS):
            chain(part, no[i].expand(part))

    def one_call():
        chain(part * SNR_POINTS, no_blocks)

    items = part * SNR_POINTS
    return (rate(per_point, items, device, min_time) * k / 1e6, rate(one_call, items, device, min_time) * k / 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds timed per chain and configuration")
    args = ap.parse_args()
    device = pick_device(args.device)
    sionna_config.device = device
    sionna_config.seed = 1
    print(environment(device))
    ratios = {}
    for label, k, n, m, ebno, gpu_batch, cpu_batch in CONFIGS:
        batch = gpu_batch if device.startswith("cuda") else cpu_batch
        no = torch.as_tensor(ebnodb2no(ebno, m, k / n), dtype=torch.float32).to(device)
        print(f"\n{label}, Eb/N0 {ebno} dB, batch {batch}:")
        ref, ref_bler = measure(SionnaChain(k, n, m), k, batch, no, device, args.min_time)
        print(f"  {'Sionna chain (reference)':28s} {ref:9.3f} Mbit/s  BLER {ref_bler:.4f}")
        for name, (decoder, compile_decoder) in VARIANTS.items():
            mbps, bler = measure(LinksimChain(k, n, m, decoder, compile_decoder), k, batch, no, device, args.min_time)
            ratios[(label, name)] = mbps / ref
            print(f"  {name:28s} {mbps:9.3f} Mbit/s  BLER {bler:.4f}  ratio {mbps / ref:6.2f}")
    label, k, n, m, ebno, gpu_batch, cpu_batch = CONFIGS[0]
    batch = gpu_batch if device.startswith("cuda") else cpu_batch
    chain = LinksimChain(k, n, m, DecoderParams(), False)
    per_point, one_call = multi_snr(chain, k, m, n, batch, device, args.min_time)
    print(f"\n{label}, {SNR_POINTS} Eb/N0 points ({ebno - 1:g} to {ebno + 0.75:g} dB), batch {batch} in all:")
    print(f"  one call per point          {per_point:9.3f} Mbit/s")
    print(f"  all points in one call      {one_call:9.3f} Mbit/s  ratio {one_call / per_point:6.2f}")
    default = "linksim, early stop, compiled" if resolve_compile("auto", device) else "linksim, early stop"
    print(f"default path on this device: {default}")
    print(f"ratio={ratios[(CONFIGS[0][0], default)]:.2f}")


if __name__ == "__main__":
    main()
