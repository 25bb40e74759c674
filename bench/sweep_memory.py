"""Memory over a long sweep: does a simulator process grow while it runs hundreds of points?

Runs a scenario of 5G LDPC links over AWGN and TDL-A with LS channel estimation (``--points`` SNR
points per curve, a few hundred work units in all) through the real runner, in chunks of
``--max-units`` units resumed in the same process, as a long session would. After every chunk it
records the process's resident memory (and, on a GPU, the memory torch holds). Prints peak and end
values and the growth between the first chunk and the end, then ``ratio=<x>``: resident memory at
the end over resident memory after the first chunk (1.0 means no growth).

    python bench/sweep_memory.py [--device cpu] [--points 100]
"""

from __future__ import annotations

import argparse
import gc
import resource
import tempfile
from pathlib import Path

import torch
from _common import environment, pick_device

from linksim.config import load_scenario
from linksim.runner import RunOptions, run_scenario

SCENARIO = """
name: sweep_memory
seed: 3
device: {device}
snr: {{axis: ebno, start: -2, stop: {stop}, step: {step}}}
stop: {{batch_size: {batch}, target_errors: 1000000, max_samples: {batch}}}
schemes:
  - {{name: ldpc-16qam, type: digital_link, params: {{k: 512, n: 1024, bits_per_symbol: 4}}}}
  - {{name: ldpc-qpsk, type: digital_link, params: {{k: 1024, n: 2048, bits_per_symbol: 2, crc: CRC24A}}}}
channels: [awgn, tdl-a-ls]
"""


def rss_mib() -> float:
    """Current resident set size of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--points", type=int, default=100, help="SNR points per curve (4 curves)")
    ap.add_argument("--max-units", type=int, default=40, help="work units per resumed chunk")
    args = ap.parse_args()
    device = pick_device(args.device)
    print(environment(device))
    cuda = device.startswith("cuda")
    batch = 2000 if cuda else 100
    step = 10 / args.points
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep_memory.yaml"
        path.write_text(SCENARIO.format(device="cuda" if cuda else "cpu", stop=-2 + step * (args.points - 0.5),
                                        step=step, batch=batch))
        scenario = load_scenario(path)
        samples: list[tuple[int, float, float]] = []  # (units done, RSS MiB, torch GPU MiB)
        done = 0
        while True:
            summary = run_scenario(scenario, RunOptions(out=tmp, run_id="run", resume=done > 0,
                                                        max_units=args.max_units, plots=False, progress=False))
            done += summary.finished
            gc.collect()
            gpu = torch.cuda.memory_allocated(device) / 2**20 if cuda else 0.0
            samples.append((done, rss_mib(), gpu))
            print(f"  {done:4d} units: RSS {samples[-1][1]:8.1f} MiB" + (f", GPU {gpu:8.1f} MiB" if cuda else ""),
                  flush=True)
            if summary.remaining == 0:
                break
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first, end = samples[0], samples[-1]
    print(f"units {end[0]}; RSS after the first chunk {first[1]:.1f} MiB, at the end {end[1]:.1f} MiB, "
          f"peak {peak_rss:.1f} MiB")
    if cuda:
        print(f"GPU: after the first chunk {first[2]:.1f} MiB, at the end {end[2]:.1f} MiB, "
              f"peak {torch.cuda.max_memory_allocated(device) / 2**20:.1f} MiB")
    print(f"ratio={end[1] / first[1]:.3f}")


if __name__ == "__main__":
    main()
