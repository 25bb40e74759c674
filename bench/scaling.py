"""Scaling out: wall time of one sweep under the local executor and on Ray with 1, 2, ... workers.

Runs the ``ldpc_qam`` quick profile over AWGN and Rayleigh (``--set`` reductions below) through the
real runner: once locally, then on one local Ray instance with each worker count (a first, untimed
Ray run starts the worker processes and loads Sionna in them: its time is printed as ``cold``).
Every run must write the same ``results.csv`` bytes (checked). The task overhead per unit is the
extra wall time of Ray with one worker over the local executor on a sweep of tiny units (one
codeword of a (64, 128) code each), divided by the number of units. Ends with
``ratio=<local wall time / Ray wall time at the largest worker count>``.

    python bench/scaling.py [--workers 1 2] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import environment

from linksim.config import load_scenario
from linksim.runner import RunOptions, run_scenario, work_units

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["channels=[awgn,rayleigh]", "device=cpu"]
TINY = """
name: tiny_units
seed: 1
device: cpu
snr: {axis: ebno, start: 0, stop: 9.5, step: 0.25}
stop: {batch_size: 1, max_samples: 1}
schemes:
  - {name: ldpc, type: digital_link, params: {k: 64, n: 128, bits_per_symbol: 2}}
channels: [awgn]
"""


def timed(path: Path, overrides: list[str], out: Path, profile: str | None = None, **options) -> tuple[float, bytes]:
    """Wall time (s) of one run and the bytes of its ``results.csv``."""
    scenario = load_scenario(path, profile, overrides)
    t0 = time.perf_counter()
    summary = run_scenario(scenario, RunOptions(profile=profile, out=str(out), plots=False, progress=False,
                                                report=False, **options))
    return time.perf_counter() - t0, summary.run_dir.csv.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to time")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides of the sweep")
    args = ap.parse_args()
    try:
        import ray
    except ImportError:
        raise SystemExit('bench/scaling.py needs Ray: pip install -e ".[ray]"') from None
    print(environment("cpu"))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    path, overrides = ROOT / "scenarios" / "ldpc_qam.yaml", SWEEP + args.set
    units = len(work_units(load_scenario(path, "quick", overrides)))
    print(f"sweep: ldpc_qam quick --set {' --set '.join(overrides)}: {units} work units")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        local_s, expected = timed(path, overrides, tmp / "local", "quick")
        print(f"local executor       {local_s:8.1f} s")
        ray.init(num_cpus=max(args.workers), include_dashboard=False, logging_level="warning")
        try:
            cold_s, _ = timed(path, overrides, tmp / "cold", "quick", executor="ray", workers=max(args.workers))
            print(f"ray cold ({max(args.workers)} workers) {cold_s:8.1f} s (starts the workers)")
            walls = {}
            for n in args.workers:
                walls[n], csv = timed(path, overrides, tmp / f"ray{n}", "quick", executor="ray", workers=n)
                assert csv == expected, f"ray with {n} worker(s) wrote other results than the local run"
                print(f"ray {n} worker(s)       {walls[n]:8.1f} s  speed-up {local_s / walls[n]:.2f}")
            tiny = tmp / "tiny.yaml"
            tiny.write_text(TINY)
            n_tiny = len(work_units(load_scenario(tiny)))
            tiny_local, _ = timed(tiny, [], tmp / "tiny-local")
            tiny_ray, _ = timed(tiny, [], tmp / "tiny-ray", executor="ray", workers=1)
            print(f"task overhead: {n_tiny} one-codeword units, local {tiny_local:.2f} s, ray 1 worker "
                  f"{tiny_ray:.2f} s: {1000 * (tiny_ray - tiny_local) / n_tiny:.1f} ms per unit")
        finally:
            ray.shutdown()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at the end")
    print(f"ratio={local_s / walls[max(args.workers)]:.3f}")


if __name__ == "__main__":
    main()
