"""Training throughput in float32 and under bf16 autocast (``train.precision``), through each scheme's own
training step.

Each case builds a learned scheme the way a run does and prepares it (trains it) on the seeded synthetic
sets of :mod:`linksim.data.synthetic`, served under the names ``mnist`` / ``cifar10`` (so no dataset is
needed), into a fresh weight cache: once with ``precision: float32`` and once with ``bfloat16``, the two
interleaved round by round so that a change of load cannot favour one. The time is the sum of the
training logs' per-epoch ``wall_s`` of the case's own models (data loading, a classifier the scheme
trains first and evaluation excluded); the final training loss of both is printed beside it (same seed,
same batches). Which precision a run should use is decided by a full-length run, not by this: see the
README. Ends with ``ratio=<geometric mean over the cases of bf16 images/s / float32 images/s>``.

    python bench/training_precision.py [--device cpu] [--rounds 3] [--cases sinfony-central aesci]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import tempfile
from pathlib import Path

from _common import environment, pick_device

from linksim import registry
from linksim.config import ChannelSpec, SchemeSpec
from linksim.data.synthetic import SYNTHETIC, TRAIN_SIZE
from linksim.engine import seed_everything
from linksim.runner import build_channel, build_scheme
from linksim.schemes.base import SchemeContext

_MNIST, _CIFAR = {"name": "mnist", "eval_subset": 8}, {"name": "cifar10", "eval_subset": 8}
_CLASSIFIER = {"epochs": 1, "subset": 64, "batch_size": 64}  # trained first, not timed

#: case -> (scheme type, params); the recipes' batch sizes are the scenarios'
CASES: dict[str, tuple[str, dict]] = {
    "sinfony-central": ("sinfony", {"data": _MNIST, "variant": "central",
                                    "train": {"epochs": 2, "batch_size": 64}}),
    "sinfony-txrx": ("sinfony", {"data": _MNIST, "variant": "txrx", "n_tx": 56,
                                 "train": {"epochs": 2, "batch_size": 64, "snr_db": [-4.0, 6.0]}}),
    "deepjscc": ("deepjscc", {"data": _CIFAR, "bandwidth_ratio": "1/6",
                              "train": {"epochs": 2, "batch_size": 64, "snr_db": 10.0}}),
    "aesci": ("aesci", {"data": _MNIST, "latent": 40, "session_images": 4, "classifier_train": _CLASSIFIER,
                        "train": {"epochs": 4, "batch_size": 256, "validation": 0, "early_stopping": None}}),
    "jcm": ("jcm", {"data": _CIFAR, "method": "jcm", "bandwidth_ratio": "1/24", "width": 0.25, "snr_db": [12],
                    "train": {"epochs": 1, "batch_size": 32}}),
    "vscc": ("vscc", {"data": _CIFAR, "matching": 5.0, "draws": 2, "train": {"epochs": 1, "batch_size": 32,
                                                                           "snr_db": 5.0}}),
}


def cpu_bf16_support() -> str:
    """The CPU's native bf16 instructions, from /proc/cpuinfo (Linux): what decides whether bf16 pays."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    return ", ".join(found) if found else "none (bf16 is emulated: expect a slow-down)"


def train_once(kind: str, params: dict, precision: str, device: str, root: Path) -> tuple[float, float, int]:
    """Train one case from scratch: (seconds in its epochs, final training loss, images trained)."""
    seed_everything(0)
    params = {**params, "train": {**params["train"], "precision": precision}}
    scheme = build_scheme(SchemeSpec(name="case", type=kind, params=params), seed=0)
    context = SchemeContext(device=device, cache_dir=root / "models", run_dir=root / "run", progress=False, seed=0,
                            train_channel=build_channel(ChannelSpec(name="awgn", type="awgn"), 0),
                            train_channel_spec={"name": "awgn", "type": "awgn", "params": {}})
    scheme.prepare(context)
    log = []  # the case's own models' logs (case.csv, case-snr12.csv, ...), not a classifier it trains first
    for path in sorted((root / "run" / "training").glob("case*.csv")):
        with open(path, newline="") as f:
            log += list(csv.DictReader(f))
    train = params["train"]
    images = min(train.get("subset") or TRAIN_SIZE, TRAIN_SIZE) * len(log)
    return sum(float(row["wall_s"]) for row in log), float(log[-1]["loss"]), images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per precision (interleaved)")
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    args = ap.parse_args()
    device = pick_device(args.device)
    print(environment(device))
    if device == "cpu":
        print(f"CPU bf16 instructions: {cpu_bf16_support()}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    registry.datasets().update({"mnist": SYNTHETIC["synthetic-mnist"], "cifar10": SYNTHETIC["synthetic-cifar"]})
    ratios = []
    for name in args.cases:
        kind, params = CASES[name]
        wall: dict[str, list[float]] = {"float32": [], "bfloat16": []}
        loss, images = {}, 0
        for r in range(args.rounds + 1):  # round 0 is untimed: first-call costs (allocator, kernels)
            for precision in (("float32", "bfloat16") if r % 2 == 0 else ("bfloat16", "float32")):
                with tempfile.TemporaryDirectory() as tmp:
                    seconds, loss[precision], images = train_once(kind, params, precision, device, Path(tmp))
                if r:
                    wall[precision].append(seconds)
        speed = {p: images / statistics.median(w) for p, w in wall.items()}
        ratio = speed["bfloat16"] / speed["float32"]
        ratios.append(ratio)
        print(f"{name:16s} float32 {speed['float32']:8.1f} img/s, bf16 {speed['bfloat16']:8.1f} img/s: "
              f"x{ratio:.2f} | final training loss {loss['float32']:.4g} (float32), {loss['bfloat16']:.4g} (bf16)",
              flush=True)
    print(f"ratio={math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}")


if __name__ == "__main__":
    main()
