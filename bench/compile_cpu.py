"""What ``--compile on`` buys on this device, against what compiling costs: the data behind ``--compile auto``.

linksim compiles four functions when a run asks for it (:func:`linksim.accel.compiled`): a SINFONY
model's training forward pass, a SINFONY receiver (the evaluation pass once the transmitter's symbols
are computed once), the DeepJSCC decoder, and the BP iteration of the torch LDPC core. For each, this
script times the eager and the compiled call on the shapes a run uses (rounds interleaved, so load
favours neither), the first compiled call (which compiles), and prints

- ``speedup``: eager time per call over compiled time per call (steady state);
- ``compile_s``: the first compiled call minus one steady-state compiled call;
- ``break_even``: the calls (and items: images or codewords) after which compiling has paid for
  itself, ``compile_s / (eager - compiled)``; ``never`` when the compiled call is not faster.

Compare ``break_even`` with a sweep's calls per process: SINFONY's quick profile evaluates about 11
points x 2,000 images (86 receiver calls of 256 images per scheme), the full profile up to 21 points
x 100,000 (8,200 calls); one training epoch on MNIST is 938 steps of 64 images. The last line is
``ratio=<x>``: the geometric mean of the steady-state speedups.

    python bench/compile_cpu.py [--device cpu] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _common import NUM_ITER, environment, pick_device, rate, sync
from ldpc_decoder import llrs
from sionna.phy.fec.ldpc import LDPC5GEncoder

from linksim.accel import compiled
from linksim.layers import inference_chunk, preferred_memory_format
from linksim.link.ldpc import LDPC5GEarlyStopDecoder
from linksim.models import DeepJSCC, Sinfony

__all__ = ["break_even", "main"]


def break_even(eager_s: float, compiled_s: float, compile_s: float) -> float:
    """Calls after which a compiled function has made up its compile time: ``compile_s / (eager_s -
    compiled_s)`` (seconds per call, seconds); ``inf`` when the compiled call is not faster."""
    gain = eager_s - compiled_s
    return compile_s / gain if gain > 0 else math.inf


def _cases(device: str) -> dict[str, tuple[Callable[[bool], Callable[[], object]], int, str]]:
    """name: (a factory of ``fn(compile_it) -> call``, items per call, item unit)."""
    fmt = preferred_memory_format(device)
    chunk = inference_chunk(device) or 2000

    def sinfony_train(compile_it: bool):
        torch.manual_seed(0)
        model = Sinfony(in_channels=1, image_size=28, units_per_stage=2, base_width=14, n_tx=14, n_rx=56)
        model.to(device, memory_format=fmt).train()
        forward = compiled(model, dynamic=False) if compile_it else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        images = torch.rand(64, 1, 28, 28, device=device)
        labels = torch.randint(0, 10, (64,), device=device)

        def call():
            logits = forward(images, lambda x: x + 0.3 * torch.randn_like(x))
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return call

    def sinfony_receiver(compile_it: bool):
        torch.manual_seed(0)
        model = Sinfony(in_channels=1, image_size=28, units_per_stage=2, base_width=14, n_tx=14, n_rx=56)
        model.to(device, memory_format=fmt).eval()
        decode = compiled(model.decode, dynamic=False) if compile_it else model.decode
        y = torch.randn(chunk, 4, 14, device=device)
        return torch.no_grad()(lambda: decode(y))

    def deepjscc_decoder(compile_it: bool):
        torch.manual_seed(0)
        model = DeepJSCC(latent_channels=8).to(device).eval()  # 32 x 32 images: 8 x 8 x 8 reals, rho 1/12
        decode = compiled(model.decode, dynamic=False) if compile_it else model.decode
        y = torch.randn(chunk, 8, 8, 8, device=device)
        return torch.no_grad()(lambda: decode(y))

    def ldpc_torch_core(compile_it: bool):
        decoder = LDPC5GEarlyStopDecoder(LDPC5GEncoder(512, 1024), num_iter=NUM_ITER)
        if compile_it:
            decoder.compile_iterations()
        torch.manual_seed(0)
        llr = llrs(512, 1024, 4, 4.0, 2000, device)[1]  # 16-QAM at Eb/N0 4 dB, as bench/ldpc_decoder.py
        return torch.no_grad()(lambda: decoder(llr))

    return {
        "SINFONY training step": (sinfony_train, 64, "images"),
        "SINFONY receiver": (sinfony_receiver, chunk, "images"),
        "DeepJSCC decoder": (deepjscc_decoder, chunk, "images"),
        "LDPC torch core (512, 1024)": (ldpc_torch_core, 2000, "codewords"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-time", type=float, default=1.0, help="seconds of calls per path and round")
    args = ap.parse_args()
    device = pick_device(args.device)
    print(environment(device))
    speedups = []
    for name, (factory, items, unit) in _cases(device).items():
        eager, fast = factory(False), factory(True)
        eager()  # warm-up (allocator, oneDNN primitives)
        t0 = time.perf_counter()
        fast()  # compiles
        sync(device)
        first = time.perf_counter() - t0
        eager_s, fast_s = [], []
        for _ in range(args.rounds):  # seconds per call, the two paths interleaved
            eager_s.append(1.0 / rate(eager, 1, device, args.round_time, warmup=0))
            fast_s.append(1.0 / rate(fast, 1, device, args.round_time, warmup=0))
        e, c = sorted(eager_s)[len(eager_s) // 2], sorted(fast_s)[len(fast_s) // 2]
        compile_s = max(first - c, 0.0)
        even = break_even(e, c, compile_s)
        speedups.append(e / c)
        even_text = "never" if math.isinf(even) else f"{even:,.0f} calls = {even * items:,.0f} {unit}"
        print(f"  {name:30s} eager {e * 1e3:8.2f} ms  compiled {c * 1e3:8.2f} ms  speedup {e / c:5.2f}x  "
              f"compile_s {compile_s:6.1f}  break_even {even_text}", flush=True)
    print(f"ratio={math.exp(sum(map(math.log, speedups)) / len(speedups)):.2f}")


if __name__ == "__main__":
    main()
