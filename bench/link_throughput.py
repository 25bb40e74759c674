"""Digital-link throughput: linksim's coded link against the direct Sionna chain.

Both chains: random bits -> 5G LDPC encoder -> QAM/PAM mapper -> AWGN -> APP demapper -> BP decoder
(20 iterations, boxplus-phi), the same k, n, modulation, batch and Eb/N0, the same device, in this
process. The reference is Sionna's blocks called directly (BinarySource, LDPC5GEncoder, Mapper, AWGN,
Demapper, LDPC5GDecoder); linksim is its ``digital_link`` scheme (DigitalLink + AWGN channel +
counters) with its default decoder (on a CPU the compiled core, ``implementation: auto``; elsewhere
the torch core), the compiled core with offset min-sum and with the layered schedule (CPU only), the
torch core (``implementation: torch``, the CPU default before the compiled core) with and without
early stopping, through ``torch.compile`` (the first, untimed call compiles) and with offset
min-sum, and with Sionna's decoder. The timed calls of all chains are interleaved in ``ROUNDS``
rounds, so that a change of load cannot favour one. ``bench/ldpc_decoder.py`` times the decoders
alone.

Prints per chain and configuration information Mbit/s, G edge updates/s (edges of the code's graph
x BP iterations run, per second: one check-node and one variable-node message per edge and
iteration), BLER and the ratio over the Sionna chain, the default path over the torch core, then
``ratio=<x>``: linksim's default path on this device (the compiled core on a CPU; the torch core,
through ``torch.compile`` as ``--compile auto``, on a GPU) over the Sionna chain on (512, 1024, 16-QAM).

    python bench/link_throughput.py [--device cpu] [--min-time 3]
"""

from __future__ import annotations

import time

import torch
from _common import LDPC_CONFIGS as CONFIGS
from _common import NUM_ITER, ROUNDS, rate, sionna_bench_args, sync
from sionna.phy.channel import AWGN
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import BinarySource, Constellation, Demapper, Mapper
from sionna.phy.utils import ebnodb2no

from linksim.accel import resolve_compile
from linksim.channels.awgn import AWGNChannel
from linksim.link.digital import DecoderParams, DigitalLinkParams
from linksim.link.ldpc import LDPC5GEarlyStopDecoder
from linksim.schemes.base import SchemeContext
from linksim.schemes.digital_link import DigitalLinkScheme

TORCH = DecoderParams(implementation="torch")
# name -> (decoder settings, torch.compile of the BP iterations, CPU only)
VARIANTS = {
    "linksim, default decoder": (DecoderParams(), False, False),
    "linksim, offset min-sum": (DecoderParams(cn_update="offset-minsum"), False, True),
    "linksim, layered": (DecoderParams(schedule="layered"), False, True),
    "torch core, early stop": (TORCH, False, False),
    "torch core, torch.compile": (TORCH, True, False),
    "torch core, 20 iterations": (TORCH.model_copy(update={"early_stop": False}), False, False),
    "torch core, offset min-sum": (TORCH.model_copy(update={"cn_update": "offset-minsum"}), False, False),
    "linksim + Sionna decoder": (DecoderParams(implementation="sionna", early_stop=False), False, False),
}


class SionnaChain:
    """The reference: Sionna's blocks called one after the other."""

    def __init__(self, k: int, n: int, m: int):
        const = Constellation("qam" if m > 1 else "pam", m)
        self.k, self.source, self.encoder = k, BinarySource(), LDPC5GEncoder(k, n)
        self.mapper, self.awgn = Mapper(constellation=const), AWGN()
        self.demapper = Demapper("app", constellation=const)
        self.decoder = LDPC5GDecoder(self.encoder, num_iter=NUM_ITER, hard_out=True)

    def __call__(self, batch: int, no: torch.Tensor) -> tuple[int, int, int]:
        """(blocks, block errors, BP iterations run)."""
        bits = self.source([batch, self.k])
        llr = self.demapper(self.awgn(self.mapper(self.encoder(bits)), no), no)
        return batch, int((self.decoder(llr) != bits).any(dim=1).sum()), batch * NUM_ITER


class LinksimChain:
    """linksim's ``digital_link`` scheme on its AWGN channel."""

    def __init__(self, k: int, n: int, m: int, decoder: DecoderParams, compile_decoder: bool):
        params = DigitalLinkParams(k=k, n=n, modulation="qam" if m > 1 else "pam", bits_per_symbol=m, decoder=decoder)
        self.scheme, self.channel = DigitalLinkScheme(params), AWGNChannel()
        self.scheme.prepare(SchemeContext(compile=compile_decoder))  # as `linksim run --compile` does

    def __call__(self, batch: int, no: torch.Tensor) -> tuple[int, int, int]:
        """(blocks, block errors, BP iterations run)."""
        c = self.scheme.simulate(batch, no, self.channel)
        return c["samples"], c["block_errors"], c.get("bp_iterations", batch * NUM_ITER)


def interleaved(chains: dict, batch: int, no: torch.Tensor, device: str, min_time: float) -> dict[str, list]:
    """name -> [blocks, block errors, BP iterations, seconds] of each chain's timed calls: one untimed
    call per chain, then ``ROUNDS`` rounds in which every chain runs ``min_time / ROUNDS`` seconds."""
    for chain in chains.values():
        chain(batch, no)
    sync(device)
    stats = {name: [0, 0, 0, 0.0] for name in chains}
    for _ in range(ROUNDS):
        for name, chain in chains.items():
            t0, spent = time.perf_counter(), 0.0
            while spent < min_time / ROUNDS:
                blocks, errors, iterations = chain(batch, no)
                sync(device)
                spent = time.perf_counter() - t0
                for i, x in enumerate((blocks, errors, iterations)):
                    stats[name][i] += x
            stats[name][3] += spent
    return stats


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
    args, device = sionna_bench_args(__doc__, "chain and configuration")
    ratios = {}
    for label, k, n, m, ebno, gpu_batch, cpu_batch in CONFIGS:
        batch = gpu_batch if device.startswith("cuda") else cpu_batch
        no = torch.as_tensor(ebnodb2no(ebno, m, k / n), dtype=torch.float32).to(device)
        edges = len(LDPC5GEarlyStopDecoder(LDPC5GEncoder(k, n))._edge_vn)
        chains = {"Sionna chain (reference)": SionnaChain(k, n, m)}
        chains.update({name: LinksimChain(k, n, m, decoder, compile_decoder)
                       for name, (decoder, compile_decoder, cpu_only) in VARIANTS.items()
                       if not (cpu_only and device.startswith("cuda"))})
        stats = interleaved(chains, batch, no, device, args.min_time)
        ref = stats["Sionna chain (reference)"]
        print(f"\n{label}, Eb/N0 {ebno} dB, batch {batch}, {edges} edges, {ROUNDS} interleaved rounds:")
        for name, (blocks, errors, iterations, seconds) in stats.items():
            ratios[(label, name)] = ratio = blocks / seconds / (ref[0] / ref[3])
            print(f"  {name:30s} {blocks / seconds * k / 1e6:9.3f} Mbit/s  {edges * iterations / seconds / 1e9:6.3f} G edge "
                  f"updates/s  {iterations / blocks:5.2f} it/block  BLER {errors / blocks:.4f}  ratio {ratio:6.2f}")
        if "linksim, offset min-sum" in stats:
            over = [ratios[(label, fast)] / ratios[(label, slow)] for fast, slow in (
                ("linksim, default decoder", "torch core, early stop"),
                ("linksim, offset min-sum", "torch core, offset min-sum"))]
            print(f"  compiled core over the torch core, whole link: {over[0]:.2f}x (boxplus-phi), "
                  f"{over[1]:.2f}x (offset min-sum)")
    label, k, n, m, ebno, gpu_batch, cpu_batch = CONFIGS[0]
    batch = gpu_batch if device.startswith("cuda") else cpu_batch
    chain = LinksimChain(k, n, m, DecoderParams(), False)
    per_point, one_call = multi_snr(chain, k, m, n, batch, device, args.min_time)
    print(f"\n{label}, {SNR_POINTS} Eb/N0 points ({ebno - 1:g} to {ebno + 0.75:g} dB), batch {batch} in all:")
    print(f"  one call per point          {per_point:9.3f} Mbit/s")
    print(f"  all points in one call      {one_call:9.3f} Mbit/s  ratio {one_call / per_point:6.2f}")
    default = "torch core, torch.compile" if resolve_compile("auto", device) else "linksim, default decoder"
    print(f"default path on this device: {default}")
    print(f"ratio={ratios[(CONFIGS[0][0], default)]:.2f}")


if __name__ == "__main__":
    main()
