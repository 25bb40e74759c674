"""Shared helpers of the benchmarks: device choice, timing, and the environment line they print."""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import date
from importlib import metadata

import torch

__all__ = ["LDPC_CONFIGS", "NUM_ITER", "ROUNDS", "environment", "pick_device", "rate", "sync"]

# the two codes both LDPC benchmarks time: (label, k, n, bits per symbol, Eb/N0 dB at or just above the
# waterfall, batch on GPU, batch on CPU)
LDPC_CONFIGS = [
    ("(512, 1024) 16-QAM", 512, 1024, 4, 4.0, 50_000, 2_000),
    ("(3840, 15360) BPSK", 3840, 15360, 1, 0.75, 5_000, 100),
]
NUM_ITER = 20  # BP iterations at most
ROUNDS = 5  # interleaved rounds of timed calls


def pick_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda:0`` when torch sees a GPU, else ``cpu``; anything else as given."""
    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return name


def sync(device: str) -> None:
    """Wait for queued GPU work, so that wall times mean something."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def rate(fn: Callable[[], object], items: float, device: str, min_time_s: float = 3.0, warmup: int = 1) -> float:
    """Items per second of ``fn`` (one call handles ``items`` items): ``warmup`` untimed calls, then
    calls until ``min_time_s`` has passed."""
    for _ in range(warmup):
        fn()
    sync(device)
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time_s:
            return calls * items / elapsed


def environment(device: str) -> str:
    """One line: date, device, torch/Sionna versions, CPU threads."""
    if device.startswith("cuda"):
        dev = torch.cuda.get_device_name(torch.device(device))
    else:
        dev = f"CPU {platform.machine()}, {os.cpu_count()} cores"
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "sionna-no-rt"))
    return f"{date.today()} | {dev} | {versions} | torch threads {torch.get_num_threads()}"


def sionna_bench_args(doc: str, timed: str) -> tuple[argparse.Namespace, str]:
    """The arguments of a benchmark of Sionna-based chains (``--device``, ``--min-time``: seconds timed
    per ``timed``), with Sionna set to the chosen device and seed 1 and the environment line printed;
    -> (arguments, device)."""
    from sionna.phy import config as sionna_config

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--min-time", type=float, default=3.0, help=f"seconds timed per {timed}")
    args = ap.parse_args()
    device = pick_device(args.device)
    sionna_config.device = device
    sionna_config.seed = 1
    print(environment(device))
    return args, device
