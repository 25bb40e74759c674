"""Run a scenario end to end: build, prepare, sweep every work unit, write results, plot."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch
from sionna.phy import config as sionna_config

from linksim import registry
from linksim.accel import CompileMode, GraphMode, resolve_compile, resolve_cuda_graphs
from linksim.channels.base import Channel
from linksim.config import ChannelSpec, Scenario, SchemeSpec, stop_key_problems
from linksim.engine import WorkUnit, derived_seed, run_unit, seed_everything, split_configs, unit_seed
from linksim.progress import PointReporter
from linksim.results import RunDirectory
from linksim.schemes.base import Mean, Scheme, SchemeContext

__all__ = ["RunOptions", "RunSummary", "resolve_device", "build_channel", "build_scheme", "check_stop_keys",
           "work_units", "primary_description", "run_scenario"]


@dataclass
class RunOptions:
    """How to run (not what): none of these change the results.

    :param profile: the profile that was applied (recorded in the manifest and the run id).
    :param out: output root overriding ``outputs.root``.
    :param resume: continue the latest run of this exact scenario (or ``run_id``) instead of starting anew.
    :param run_id: name of the run directory.
    :param max_units: stop after this many newly finished work units (the run can be resumed).
    :param plots: draw the figures at the end.
    :param progress: show progress bars.
    :param report: print one line per finished point (:class:`~linksim.progress.PointReporter`).
    :param compile: ``torch.compile`` hot paths: ``on``, ``off``, or ``auto`` (on CUDA only); see :mod:`linksim.accel`.
    :param cuda_graphs: capture training steps in CUDA graphs: ``auto`` (on CUDA devices) or ``off``.
    """

    profile: str | None = None
    overrides: list[str] = field(default_factory=list)
    scenario_file: str | None = None
    out: str | None = None
    resume: bool = False
    run_id: str | None = None
    max_units: int | None = None
    plots: bool = True
    progress: bool = True
    report: bool = True
    compile: CompileMode = "auto"
    cuda_graphs: GraphMode = "auto"


@dataclass
class RunSummary:
    """``finished``: points simulated now; ``skipped``: reused from an earlier session;
    ``remaining``: left for a later ``--resume``; ``cut``: not run because of ``stop_sweep_below``."""

    run_dir: RunDirectory
    finished: int
    skipped: int
    remaining: int
    cut: int = 0


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but torch sees no GPU (use --device cpu or auto)")
        return "cuda:0"
    return device


def build_channel(spec: ChannelSpec, seed: int = 0) -> Channel:
    """Build a channel; what it draws at construction (e.g. OFDM pilot symbols) follows ``seed``."""
    entry = registry.channels()[spec.type]
    seed_everything(derived_seed(seed, "channel", spec.name))
    return entry.build(spec.params)


def build_scheme(spec: SchemeSpec, seed: int = 0) -> Scheme:
    """Build a scheme; what it draws at construction (initial weights, ...) follows ``seed``, so it
    does not depend on which work units ran before it."""
    entry = registry.schemes()[spec.type]
    seed_everything(derived_seed(seed, "scheme", spec.name))
    scheme = entry.build(spec.params)
    scheme.name = spec.name
    return scheme


def work_units(scenario: Scenario) -> list[WorkUnit]:
    """Every (scheme, channel, SNR point) in canonical order: scheme, then channel, then SNR."""
    return [
        WorkUnit(s.name, c.name, snr)
        for s in scenario.schemes
        for c in scenario.channels
        if s.channels is None or c.name in s.channels
        for snr in scenario.snr_points(s)
    ]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("linksim", "torch", "sionna-no-rt", "numpy", "pandas", "pydantic"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_commit() -> str | None:
    src = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _device_description(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def _open_run_dir(scenario: Scenario, opts: RunOptions) -> RunDirectory:
    scenario_root = Path(opts.out or scenario.outputs.root) / scenario.name
    if opts.run_id:
        run_dir = RunDirectory(scenario_root / opts.run_id)
    elif opts.resume:
        run_dir = RunDirectory.latest_matching(scenario_root, scenario.digest())
        if run_dir is None:
            run_dir = RunDirectory(scenario_root / RunDirectory.new_run_id(opts.profile, scenario_root))
    else:
        run_dir = RunDirectory(scenario_root / RunDirectory.new_run_id(opts.profile, scenario_root))
    previous = run_dir.load_manifest()
    if previous and previous.get("scenario_digest") != scenario.digest():
        raise RuntimeError(
            f"{run_dir.path} holds results of a different scenario (digest {previous.get('scenario_digest')}, "
            f"now {scenario.digest()}); choose another --run-id or --out"
        )
    if previous and not opts.resume:
        raise RuntimeError(f"{run_dir.path} already exists; pass --resume to continue it")
    run_dir.path.mkdir(parents=True, exist_ok=True)
    return run_dir


def run_scenario(scenario: Scenario, opts: RunOptions | None = None) -> RunSummary:
    """Sweep every work unit of ``scenario`` not yet in the run directory, writing after each one."""
    opts = opts or RunOptions()
    device = resolve_device(scenario.device)
    sionna_config.device = device
    run_dir = _open_run_dir(scenario, opts)
    manifest = run_dir.load_manifest() or {
        "scenario": scenario.model_dump(mode="json", exclude={"profiles"}),
        "scenario_digest": scenario.digest(),
        "scenario_file": opts.scenario_file,
        "scenario_file_sha256": hashlib.sha256(Path(opts.scenario_file).read_bytes()).hexdigest()
        if opts.scenario_file
        else None,
        "profile": opts.profile,
        "overrides": list(opts.overrides),
        "seed": scenario.seed,
        "units": {},
        "sessions": [],
    }
    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "device": device,
        "device_name": _device_description(device),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "compile": resolve_compile(opts.compile, device),
        "cuda_graphs": resolve_cuda_graphs(opts.cuda_graphs, device),
    }
    manifest["sessions"].append(session)
    run_dir.write_manifest(manifest)

    rows = run_dir.load_rows()
    finished = {(r["scheme"], r["channel"], float(r["snr_db"])): r for r in rows if not r["config"]}  # headlines
    units = work_units(scenario)
    order = [u.key for u in units]
    context = SchemeContext(device=device, run_dir=run_dir.path, seed=scenario.seed, progress=opts.progress,
                            compile=session["compile"], cuda_graphs=session["cuda_graphs"],
                            train_channel=build_channel(scenario.train_channel, scenario.seed),
                            train_channel_spec=scenario.train_channel.model_dump(mode="json"))
    specs = {s.name: s for s in scenario.schemes}
    channels = {c.name: build_channel(c, scenario.seed) for c in scenario.channels}
    schemes: dict[str, Scheme] = {}
    context.prepared = lambda name: _prepared(name, scenario, specs, schemes, context, manifest)
    swept_out: set[tuple[str, str]] = set()  # (scheme, channel) curves past their stop_sweep_below point
    counts = {"run": 0, "reused": 0, "cut": 0, "left": 0}
    todo = [u for u in units if u.key not in finished]
    report = PointReporter(len(todo) if opts.max_units is None else min(len(todo), opts.max_units),
                           name_width=max(len(f"{u.scheme} / {u.channel}") for u in units), bars=opts.progress,
                           lines=opts.report)
    if len(todo) < len(units):
        report.note(f"{len(units) - len(todo)} of {len(units)} points finished by an earlier session: reused")
    t_run = time.perf_counter()
    for i, unit in enumerate(units):
        curve = (unit.scheme, unit.channel)
        stop = scenario.stop_for(specs[unit.scheme])
        if curve in swept_out:
            counts["cut"] += 1
            continue
        row = finished.get(unit.key)
        if row is not None:
            counts["reused"] += 1
        elif opts.max_units is not None and counts["run"] >= opts.max_units:
            counts["left"] += 1
            continue
        else:
            row = _run_one(scenario, specs, schemes, channels, context, unit, stop, report, manifest)
            rows += split_configs(row, schemes[unit.scheme].configs)
            run_dir.write_rows(rows, order)
            counts["run"] += 1
            session["wall_s"] = round(time.perf_counter() - t_run, 3)
            run_dir.write_manifest(manifest)
        if stop.stop_sweep_below is not None and not _mean_primary(row) and row["error_rate"] < stop.stop_sweep_below:
            swept_out.add(curve)  # rate primaries only (a mean primary's error_rate is NaN)
            later = [u for u in units[i + 1:] if (u.scheme, u.channel) == curve]
            if later:
                report.swept_below(unit.scheme, unit.channel, unit.snr_db, stop.stop_sweep_below, len(later))
                report.overall.total -= sum(u.key not in finished for u in later)
                report.overall.refresh()
    report.close()

    session["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    session["wall_s"] = round(time.perf_counter() - t_run, 3)
    session["data_wall_s"] = round(context.data_wall_s, 3)
    manifest["complete"] = counts["left"] == 0
    manifest["points_cut_by_stop_sweep_below"] = counts["cut"]
    run_dir.write_manifest(manifest)
    if opts.plots and rows:
        from linksim.plots import plot_run

        plot_run(run_dir, scenario)
        _draw_examples(scenario, specs, schemes, channels, context, manifest, run_dir)
    return RunSummary(run_dir, finished=counts["run"], skipped=counts["reused"], remaining=counts["left"],
                      cut=counts["cut"])


def _draw_examples(scenario: Scenario, specs, schemes, channels, context, manifest, run_dir: RunDirectory) -> None:
    """The scenario's example-reconstruction figures (the schemes they need are prepared if this
    session has not yet). A scheme the run leaves out (``channels: []``) is left out of the figure too,
    never trained for it; a figure with none of its schemes left is not drawn."""
    from linksim.reconstructions import plot_reconstructions, reconstruction_rows

    labels = {s.name: s.label or s.name for s in scenario.schemes}
    for ex in scenario.outputs.examples:
        names = [n for n in ex.schemes if n in specs and specs[n].channels != []]
        if not names:
            continue
        ex = ex.model_copy(update={"schemes": names})
        shown = {name: _prepared(name, scenario, specs, schemes, context, manifest) for name in names}
        rows = reconstruction_rows(shown, labels, channels[ex.channel], ex, scenario.snr, scenario.seed)
        plot_reconstructions(rows, run_dir.plots / ex.name, scenario.outputs.formats, ex.title)
    if scenario.outputs.examples:
        run_dir.write_manifest(manifest)


def _prepared(name: str, scenario: Scenario, specs: dict[str, SchemeSpec], schemes: dict[str, Scheme],
              context: SchemeContext, manifest: dict) -> Scheme:
    """The scheme ``name``, built, its own stop keys checked against its primary, and prepared, once per
    run (also when another scheme asks for it)."""
    if name not in specs:
        raise ValueError(f"scheme {name!r} was asked for (warm start?) but the scenario has no scheme of that name")
    if name not in schemes:
        t0 = time.perf_counter()
        scheme = build_scheme(specs[name], scenario.seed)
        check_stop_keys(scenario, specs[name], scheme, manifest.get("scenario_file"))  # before any training
        scheme.prepare(context)
        schemes[name] = scheme
        manifest.setdefault("schemes", {})[name] = {"primary": primary_description(scheme), **scheme.describe(),
                                                    "prepare_wall_s": round(time.perf_counter() - t0, 3)}
    return schemes[name]


def primary_description(scheme: Scheme) -> dict[str, str]:
    """What a scheme's rows count (the manifest's ``schemes.<name>.primary``): its primary's name and,
    for a rate, the counters behind ``errors`` and the ratio (``{"name": "ber", "errors": "bit_errors",
    "of": "bits"}``), for a mean, what it is averaged over."""
    stat = scheme.rates[scheme.primary]
    if isinstance(stat, Mean):
        return {"name": scheme.primary, "mean_over": stat.count}
    return {"name": scheme.primary, "errors": stat.numerator, "of": stat.denominator}


def _mean_primary(row: dict) -> bool:
    """Whether a results row's primary is a mean: its ``primary`` column names it (NaN or absent
    for a rate primary)."""
    return isinstance(row.get("primary"), str)


def check_stop_keys(scenario: Scenario, spec: SchemeSpec, scheme: Scheme, source: str | None = None) -> None:
    """Refuse a key of a built scheme's own ``stop`` that does not fit its primary
    (:func:`linksim.config.stop_key_problems`); :func:`~linksim.config.load_scenario` has already
    done so for schemes whose class declares its primary, this covers those that set it when built.

    :param source: the scenario file named in the message (default: the scenario's name).
    :raises RuntimeError: one line, ``file: schemes[i].stop.key: expected ..., found ...``.
    """
    kind = "mean" if isinstance(scheme.rates.get(scheme.primary), Mean) else "rate"
    index = [s.name for s in scenario.schemes].index(spec.name)
    if lines := stop_key_problems(source or scenario.name, index, spec, scheme.primary, kind):
        raise RuntimeError(lines[0])


def _run_one(scenario, specs, schemes, channels, context, unit: WorkUnit, stop, report: PointReporter,
             manifest: dict) -> dict:
    """Build (once) and prepare the unit's scheme, simulate the unit, record its seed and wall time,
    report its line."""
    scheme = _prepared(unit.scheme, scenario, specs, schemes, context, manifest)
    seed = unit_seed(scenario.seed, unit)
    bar = report.point_bar(str(unit), stop.max_samples)

    def progress(n: int, status: dict[str, float]) -> None:
        bar.update(n)
        bar.set_postfix({k: int(v) if k == "errors" else f"{v:.3g}" for k, v in status.items()})

    t0 = time.perf_counter()
    row = run_unit(scheme, channels[unit.channel], unit, scenario.snr, stop, seed, progress)
    bar.close()
    entry = {"seed": seed, "wall_s": round(time.perf_counter() - t0, 3), "samples": row["samples"]}
    if stages := scheme.stage_times.take():
        entry["stages_s"] = stages
    manifest["units"][f"{unit.scheme}|{unit.channel}|{unit.snr_db:g}"] = entry
    report.finished(row, scheme.primary, entry["wall_s"])
    return row
