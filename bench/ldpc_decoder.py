"""5G LDPC decoding alone, on fixed LLRs: linksim's decoders against its torch core and Sionna's.

The LLRs are drawn once per code (Sionna's encoder, mapper, AWGN and APP demapper at an Eb/N0 in the
waterfall) and every decoder decodes the same ones: the torch core (``implementation: torch``, the
default before the compiled core), the compiled CPU core (``auto``, the default on CPUs), the same with
offset min-sum and with the layered schedule, and Sionna's ``LDPC5GDecoder`` (20 iterations, no early
stop). The timed calls are interleaved in ``ROUNDS`` rounds, so a change of load reaches every
decoder alike.

Prints per decoder information Mbit/s, G edge updates/s (edges x BP iterations run, per second), the
iterations per block, BLER, the ratio over the torch core and the codewords whose decisions differ
from the torch core's; then ``ratio=<x>``: the default decoder on this device over the torch core on
(512, 1024).

    python bench/ldpc_decoder.py [--device cpu] [--min-time 3]
"""

from __future__ import annotations

import time

import torch
from _common import LDPC_CONFIGS as CONFIGS
from _common import NUM_ITER, ROUNDS, sionna_bench_args, sync
from sionna.phy.channel import AWGN
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import BinarySource, Constellation, Demapper, Mapper
from sionna.phy.utils import ebnodb2no

from linksim.link.ldpc import LDPC5GEarlyStopDecoder
from linksim.link.ldpc_cpu import LDPC5GCompiledDecoder

REFERENCE = "torch core (implementation: torch)"
SIONNA = "Sionna LDPC5GDecoder, 20 iterations"


def decoders(encoder: LDPC5GEncoder, device: str) -> dict:
    """name -> decoder; the compiled core's variants on a CPU only."""
    out = {REFERENCE: LDPC5GEarlyStopDecoder(encoder, num_iter=NUM_ITER)}
    if not device.startswith("cuda"):
        out["compiled core (auto: the default)"] = LDPC5GCompiledDecoder(encoder, num_iter=NUM_ITER)
        out["compiled, offset min-sum"] = LDPC5GCompiledDecoder(encoder, num_iter=NUM_ITER, cn_update="offset-minsum")
        out["compiled, layered"] = LDPC5GCompiledDecoder(encoder, num_iter=NUM_ITER, schedule="layered")
    out[SIONNA] = LDPC5GDecoder(encoder, num_iter=NUM_ITER, hard_out=True)
    return out


def llrs(k: int, n: int, m: int, ebno_db: float, batch: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(information bits [batch, k], APP logits [batch, n]) of one draw."""
    const = Constellation("qam" if m > 1 else "pam", m)
    encoder = LDPC5GEncoder(k, n)
    bits = BinarySource()([batch, k])
    no = torch.as_tensor(ebnodb2no(ebno_db, m, k / n), dtype=torch.float32, device=device)
    y = AWGN()(Mapper(constellation=const)(encoder(bits)), no)
    return bits, Demapper("app", constellation=const)(y, no)


def main() -> None:
    args, device = sionna_bench_args(__doc__, "decoder and configuration")
    ratios = {}
    for label, k, n, m, ebno, gpu_batch, cpu_batch in CONFIGS:
        batch = gpu_batch if device.startswith("cuda") else cpu_batch
        bits, llr = llrs(k, n, m, ebno, batch, device)
        decs = decoders(LDPC5GEncoder(k, n), device)
        edges = len(decs[REFERENCE]._edge_vn)
        # Sionna's decoder is about 10x slower: a tenth of the batch (its speed hardly depends on it)
        size = {name: batch // 10 if name == SIONNA else batch for name in decs}
        out = {name: dec(llr[: size[name]]) for name, dec in decs.items()}  # untimed: compiles; decisions compared
        stats = {name: [0, 0.0] for name in decs}  # codewords, seconds
        for _ in range(ROUNDS):
            for name, dec in decs.items():
                t0, spent = time.perf_counter(), 0.0
                while spent < args.min_time / ROUNDS:
                    dec(llr[: size[name]])
                    sync(device)
                    stats[name][0] += size[name]
                    spent = time.perf_counter() - t0
                stats[name][1] += spent
        ref_rate = stats[REFERENCE][0] / stats[REFERENCE][1]
        print(f"\n{label}, Eb/N0 {ebno} dB, batch {batch}, {edges} edges, {ROUNDS} interleaved rounds:")
        for name, (codewords, seconds) in stats.items():
            iterations = getattr(decs[name], "last_iterations", None)
            it = float(iterations.float().mean()) if iterations is not None else float(NUM_ITER)
            bler = float((out[name] != bits[: size[name]]).any(1).float().mean())
            differ = int((out[name] != out[REFERENCE][: size[name]]).any(1).sum())
            ratios[(label, name)] = ratio = codewords / seconds / ref_rate
            print(f"  {name:36s} {codewords * k / seconds / 1e6:8.3f} Mbit/s  "
                  f"{codewords * it * edges / seconds / 1e9:6.3f} G edge updates/s  {it:5.2f} it/block  "
                  f"BLER {bler:.4f}  ratio {ratio:6.2f}  decisions differ in {differ} of {size[name]} codewords")
    default = REFERENCE if device.startswith("cuda") else "compiled core (auto: the default)"
    print(f"default decoder on this device: {default}")
    print(f"ratio={ratios[(CONFIGS[0][0], default)]:.2f}")


if __name__ == "__main__":
    main()
