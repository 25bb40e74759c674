"""End to end: the wall time of ``linksim run scenarios/sinfony_mnist.yaml``, broken down.

Runs the scenario in this process, cold (a fresh, temporary model cache: every variant is trained)
unless ``--warm``, and splits its wall time by the run's manifest into data loading, training (the
SINFONY models' ``prepare``), evaluation (the SINFONY curves' work units), the Fig. 7 baselines
(Huffman fitting, analog-AE training and their work units), and the rest (plots, result files).
Prints the breakdown, then ``ratio=<x>``: the issue's budget for the full profile on one GPU,
300 s, over the measured wall time (>= 1 meets it; only the full profile is comparable).

    python bench/sinfony_end_to_end.py [--profile quick] [--device cpu] [--warm]

``--out DIR`` keeps the run (and resumes it when the command is run again, e.g. after a time limit
killed it) and ``--models DIR`` keeps the trained weights; the breakdown is then that of the last
session only, so time an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _common import environment, pick_device

BUDGET_S = 300.0
SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "sinfony_mnist.yaml"
BASELINE_TYPES = ("sinfony_digital", "sinfony_analog_ae")


def breakdown(manifest: dict) -> dict[str, float]:
    """Seconds per phase from a finished run's manifest."""
    types = {s["name"]: s["type"] for s in manifest["scenario"]["schemes"]}
    session = manifest["sessions"][-1]
    phases = {"data": session.get("data_wall_s", 0.0), "training": 0.0, "evaluation": 0.0, "baselines": 0.0}
    for name, facts in manifest.get("schemes", {}).items():
        phases["baselines" if types[name] in BASELINE_TYPES else "training"] += facts["prepare_wall_s"]
    for key, unit in manifest["units"].items():
        phases["baselines" if types[key.split("|")[0]] in BASELINE_TYPES else "evaluation"] += unit["wall_s"]
    phases["training"] -= phases["data"]  # datasets load inside the first scheme's prepare
    return phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=None, help="profile of the scenario (default: the full scenario)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--warm", action="store_true", help="reuse the user's model cache instead of training")
    ap.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--out", help="keep the run directory here (resumed if present) instead of a temporary one")
    ap.add_argument("--models", help="weight cache (default: a fresh temporary one, unless --warm)")
    args = ap.parse_args()
    device = pick_device(args.device)
    print(environment(device))
    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            os.environ["LINKSIM_MODELS"] = args.models
        elif not args.warm:
            os.environ["LINKSIM_MODELS"] = str(Path(tmp) / "models")
        from linksim.config import load_scenario
        from linksim.runner import RunOptions, run_scenario

        scenario = load_scenario(SCENARIO, args.profile, [f"device={'cuda' if device.startswith('cuda') else 'cpu'}"])
        t0 = time.perf_counter()
        out = args.out or tmp
        resume = bool(args.out) and (Path(out) / scenario.name / "run" / "manifest.json").is_file()
        summary = run_scenario(scenario, RunOptions(profile=args.profile, out=out, run_id="run", progress=False,
                                                    compile=args.compile, resume=resume))
        wall = time.perf_counter() - t0
        manifest = json.loads(summary.run_dir.manifest_path.read_text())
    phases = breakdown(manifest)
    phases["other (plots, files)"] = wall - sum(phases.values())
    print(f"sinfony_mnist, profile {args.profile or 'full'}, model cache {args.models or ('of the user (warm)' if args.warm else 'fresh (cold)')}, "
          f"{summary.finished} points:")
    for name, seconds in phases.items():
        print(f"  {name:22s} {seconds:8.1f} s  {100 * seconds / wall:5.1f} %")
    print(f"  {'total':22s} {wall:8.1f} s")
    print(f"ratio={BUDGET_S / wall:.3f}")


if __name__ == "__main__":
    main()
