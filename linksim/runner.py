"""Run a scenario end to end: build, prepare, sweep every work unit, write results, plot."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch
from sionna.phy import config as sionna_config
from tqdm import tqdm

from linksim import registry
from linksim.accel import CompileMode, GraphMode, resolve_compile, resolve_cuda_graphs
from linksim.channels.base import Channel
from linksim.config import ChannelSpec, Scenario, SchemeSpec, stop_key_problems
from linksim.engine import (
    ChunkedPoint,
    WorkUnit,
    chunk_span,
    config_of,
    derived_seed,
    point_row,
    run_chunk,
    run_unit,
    seed_everything,
    split_configs,
    unit_seed,
)
from linksim.executors import LocalExecutor, RayExecutor, Task, make_executor
from linksim.progress import PointReporter
from linksim.results import RunDirectory, mean_primary
from linksim.schemes.base import Mean, Scheme, SchemeContext
from linksim.training.cache import model_cache_dir

__all__ = [
    "RunOptions",
    "RunSummary",
    "Workbench",
    "build_channel",
    "build_scheme",
    "check_stop_keys",
    "primary_description",
    "resolve_device",
    "run_scenario",
    "work_units",
]


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
    :param executor: where tasks run: ``local`` (this process, in order) or ``ray``
        (:mod:`linksim.executors`); both write the same ``results.csv``.
    :param ray_address: the Ray cluster to join (``auto``, ``HOST:PORT``); ``None``: a local instance.
    :param workers: Ray tasks in flight at once (default: the instance's CPUs).
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
    executor: str = "local"
    ray_address: str | None = None
    workers: int | None = None


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
            check=False,
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


class Workbench:
    """What simulating a scenario needs in one process (the driver, or a Ray worker): the scheme
    context, the channels, the schemes built and prepared once each (:meth:`prepared`).

    :param run_dir: the run directory (training logs go below it); ``None`` in a worker, which
        writes nothing there.
    :param progress: print training progress lines.
    :param compile: the run's ``compile`` option (resolved for this process's device).
    :param cuda_graphs: the run's ``cuda_graphs`` option (resolved likewise).
    :param cache_dir: the weight cache (``None``: :func:`~linksim.training.cache.model_cache_dir`).
    :param manifest: where :meth:`prepared` records each scheme (``schemes.<name>``).
    """

    def __init__(self, scenario: Scenario, *, run_dir: Path | None, progress: bool, compile: CompileMode,
                 cuda_graphs: GraphMode, cache_dir: str | Path | None, manifest: dict):
        device = resolve_device(scenario.device)
        sionna_config.device = device
        self.scenario, self.manifest = scenario, manifest
        self.context = SchemeContext(device=device, run_dir=run_dir, seed=scenario.seed, progress=progress,
                                     cache_dir=None if cache_dir is None else Path(cache_dir),
                                     compile=resolve_compile(compile, device),
                                     cuda_graphs=resolve_cuda_graphs(cuda_graphs, device),
                                     train_precision=scenario.train_precision,
                                     train_channel=build_channel(scenario.train_channel, scenario.seed),
                                     train_channel_spec=scenario.train_channel.model_dump(mode="json"))
        self.specs = {s.name: s for s in scenario.schemes}
        self.channels = {c.name: build_channel(c, scenario.seed) for c in scenario.channels}
        self.schemes: dict[str, Scheme] = {}
        self.context.prepared = self.prepared

    def prepared(self, name: str) -> Scheme:
        """The scheme ``name``, built, its own stop keys checked against its primary, and prepared, once
        per process (also when another scheme asks for it)."""
        if name not in self.specs:
            raise ValueError(f"scheme {name!r} was asked for (warm start?) but the scenario has no scheme of that name")
        if name not in self.schemes:
            t0 = time.perf_counter()
            scheme = build_scheme(self.specs[name], self.scenario.seed)
            check_stop_keys(self.scenario, self.specs[name], scheme, self.manifest.get("scenario_file"))  # first
            scheme.prepare(self.context)
            self.schemes[name] = scheme
            self.manifest.setdefault("schemes", {})[name] = {
                "primary": primary_description(scheme), **scheme.describe(),
                "prepare_wall_s": round(time.perf_counter() - t0, 3)}
        return self.schemes[name]

    def run(self, task: Task, bar: Callable[[str, int], tqdm] | None = None) -> dict:
        """Run ``task``: prepare its scheme (all a prepare task does), then simulate its unit or chunk.

        :param bar: makes a progress bar (label, items): the per-point bar of a local run.
        :output: ``wall_s`` (of the simulation; of the preparation for a prepare task), and ``facts``
            (the scheme's manifest entry) for a prepare task, ``row`` (:func:`~linksim.engine.run_unit`)
            for a unit, ``counters`` and ``batches`` (:func:`~linksim.engine.run_chunk`) for a chunk;
            ``stages_s`` where the scheme times its stages.
        """
        t0 = time.perf_counter()
        scheme = self.prepared(task.scheme)
        if task.unit is None:
            return {"facts": self.manifest["schemes"][task.scheme], "wall_s": round(time.perf_counter() - t0, 3)}
        unit, t0 = task.unit, time.perf_counter()
        stop = self.scenario.stop_for(self.specs[unit.scheme])
        args = (scheme, self.channels[unit.channel], unit, self.scenario.snr, stop, unit_seed(self.scenario.seed, unit))
        items = stop.max_samples if task.chunk is None else chunk_span(stop, task.chunk)[1]
        shown = bar(str(task), items) if bar is not None else None

        def progress(n: int, status: dict[str, float]) -> None:
            shown.update(n)
            shown.set_postfix({k: int(v) if k == "errors" else f"{v:.3g}" for k, v in status.items()})

        if task.chunk is None:
            out = {"row": run_unit(*args, progress if shown is not None else None)}
        else:
            counters, batches = run_chunk(*args, task.chunk, progress if shown is not None else None)
            out = {"counters": counters, "batches": batches}
        if shown is not None:
            shown.close()
        out["wall_s"] = round(time.perf_counter() - t0, 3)
        if stages := scheme.stage_times.take():
            out["stages_s"] = stages
        return out


def run_scenario(scenario: Scenario, opts: RunOptions | None = None) -> RunSummary:
    """Sweep every work unit of ``scenario`` not yet in the run directory, writing after each one.

    The executor (``opts.executor``) runs the tasks; this process alone writes the run directory and
    keeps the rows in canonical order, so every executor writes the same ``results.csv``.
    """
    opts = opts or RunOptions()
    if opts.plots:  # imported now, so that the figures at the end are drawn by the code the run started
        import linksim.plots  # with (an editable install edited during a long run: no mixed versions)
        import linksim.reconstructions  # noqa: F401
    executor = make_executor(opts.executor, opts.ray_address, opts.workers)  # no Ray: one line, before any work
    try:
        return _sweep(scenario, opts, executor)
    finally:
        executor.close()


def _sweep(scenario: Scenario, opts: RunOptions, executor: LocalExecutor | RayExecutor) -> RunSummary:
    """:func:`run_scenario` with its executor: submit tasks in canonical order while the executor has
    room, take their outcomes as they come."""
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
    bench = Workbench(scenario, run_dir=run_dir.path, progress=opts.progress, compile=opts.compile,
                      cuda_graphs=opts.cuda_graphs, cache_dir=model_cache_dir(), manifest=manifest)
    device = bench.context.device
    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "device": device,
        "device_name": _device_description(device),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "compile": bench.context.compile,
        "cuda_graphs": bench.context.cuda_graphs,
        "executor": executor.describe(),
        "models": str(bench.context.cache_dir),
    }
    manifest["sessions"].append(session)
    run_dir.write_manifest(manifest)

    rows = run_dir.load_rows()
    finished = {(r["scheme"], r["channel"], float(r["snr_db"])): r for r in rows if not r["config"]}  # headlines
    units = work_units(scenario)
    order = [u.key for u in units]
    todo = [u for u in units if u.key not in finished]
    report = PointReporter(len(todo) if opts.max_units is None else min(len(todo), opts.max_units),
                           name_width=max(len(f"{u.scheme} / {u.channel}") for u in units), bars=opts.progress,
                           lines=opts.report)
    if len(todo) < len(units):
        report.note(f"{len(units) - len(todo)} of {len(units)} points finished by an earlier session: reused")
    executor.start(bench, report, {"compile": opts.compile, "cuda_graphs": opts.cuda_graphs,
                                   "progress": opts.progress, "models": session["models"],
                                   "threads": torch.get_num_threads()})
    sweep = _Schedule(scenario, units, finished, opts.max_units, bench.schemes)
    t_run = time.perf_counter()

    def settle(unit: WorkUnit, row: dict) -> None:
        """A point done (now or earlier): cut the rest of its curve where its error rate fell below
        ``stop_sweep_below`` (rate primaries only: a mean primary's ``error_rate`` is NaN)."""
        stop = sweep.stops[unit.scheme]
        below = stop.stop_sweep_below is not None and not mean_primary(row) and row["error_rate"] < stop.stop_sweep_below
        if below and (later := sweep.cut(unit)):
            report.swept_below(unit.scheme, unit.channel, unit.snr_db, stop.stop_sweep_below, len(later),
                               pending=sum(u.key not in finished for u in later))

    def record(unit: WorkUnit, row: dict, entry: dict) -> None:
        nonlocal rows
        rows += split_configs(row, bench.schemes[unit.scheme].configs)
        run_dir.write_rows(rows, order)
        manifest["units"][RunDirectory.unit_key(unit.scheme, unit.channel, unit.snr_db)] = {
            "seed": unit_seed(scenario.seed, unit), **entry, "samples": row["samples"]}
        report.finished(row, headline_name(bench.schemes[unit.scheme]), entry["wall_s"])
        session["wall_s"] = round(time.perf_counter() - t_run, 3)
        run_dir.write_manifest(manifest)
        sweep.done(unit)
        settle(unit, row)

    def take_reused(final: bool = False) -> None:
        for unit in sweep.reused_now(final):
            if unit in sweep.open:  # not cut by a point before it in this list
                sweep.done(unit)
                sweep.reused += 1
                settle(unit, finished[unit.key])

    while True:
        take_reused()
        while executor.in_flight < executor.slots and (task := sweep.next_task()) is not None:
            executor.submit(task)
        if not executor.in_flight:
            break
        for task, out in executor.wait():
            if task.unit is None:
                bench.prepared(task.scheme)  # from the cache the task filled (in this process already, if local)
                bench.manifest["schemes"][task.scheme]["prepare_task"] = {
                    "node": out["node"], "wall_s": out["wall_s"],
                    **{k: out["facts"][k] for k in ("weights_reused",) if k in out["facts"]}}
                sweep.ready.add(task.scheme)
                run_dir.write_manifest(manifest)
            elif task.chunk is None:
                record(task.unit, out["row"], {k: out[k] for k in ("wall_s", "stages_s", "node", "pid") if k in out})
            elif (point := sweep.chunked.get(task.unit.key)) is not None:  # else: a chunk after the point ended
                sweep.chunk_outcomes[task.unit.key].append(out)
                if reason := point.add(task.chunk, out["counters"], out["batches"]):
                    unit = task.unit
                    row = point_row(bench.schemes[unit.scheme], bench.channels[unit.channel], unit, scenario.snr,
                                    sweep.stops[unit.scheme], point.counters, reason)
                    record(unit, row, _chunk_entry(sweep.chunk_outcomes.pop(unit.key), point))
    take_reused(final=True)  # those behind points that max_units leaves for later
    report.close()

    counts = sweep.counts()
    session["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    session["wall_s"] = round(time.perf_counter() - t_run, 3)
    session["data_wall_s"] = round(bench.context.data_wall_s, 3)
    manifest["complete"] = counts["left"] == 0
    manifest["points_cut_by_stop_sweep_below"] = counts["cut"]
    run_dir.write_manifest(manifest)
    if opts.plots and rows:
        from linksim.plots import plot_run

        plot_run(run_dir, scenario)
        _draw_examples(bench, run_dir)
    return RunSummary(run_dir, finished=counts["run"], skipped=counts["reused"], remaining=counts["left"],
                      cut=counts["cut"])


def _chunk_entry(outcomes: list[dict], point: ChunkedPoint) -> dict:
    """A chunked point's manifest entry: the compute time of every chunk that came back (also those
    after the point ended), the chunks counted, and the nodes that ran them."""
    stages: Counter = Counter()
    for out in outcomes:
        stages.update(out.get("stages_s", {}))
    entry = {"wall_s": round(sum(out["wall_s"] for out in outcomes), 3), "chunks": point.added,
             "chunks_run": len(outcomes), "nodes": sorted({out["node"] for out in outcomes})}
    if stages:
        entry["stages_s"] = {k: round(v, 3) for k, v in stages.items()}
    return entry


class _Schedule:
    """Which task comes next: the open points in canonical order, a scheme's points once it is
    prepared (its prepare task first), a point of a ``stop_sweep_below`` curve only once the earlier
    points of its curve are done (so the cut falls where a sequential run puts it), chunks of a
    chunked point in order until it ends, at most ``max_units`` points started."""

    def __init__(self, scenario: Scenario, units: list[WorkUnit], finished: dict, max_units: int | None,
                 schemes: dict[str, Scheme]):
        self._schemes = schemes  # the driver's prepared schemes (a chunked point's primary)
        self.stops = {s.name: scenario.stop_for(s) for s in scenario.schemes}
        self.open = list(units)  # not yet done or cut, canonical order
        self._rank = {u.key: i for i, u in enumerate(units)}
        self.finished, self.max_units = finished, max_units
        self.ready: set[str] = set()  # schemes prepared in this process
        self._asked: set[str] = set()  # schemes whose prepare task was submitted
        self._started: set[tuple] = set()  # points with a task submitted in this session
        self.chunked: dict[tuple, ChunkedPoint] = {}  # chunked points running, by unit key
        self.chunk_outcomes: dict[tuple, list[dict]] = {}
        self._next_chunk: dict[tuple, int] = {}
        self._cut = self.reused = 0

    def _in_line(self) -> Iterator[tuple[WorkUnit, bool]]:
        """The open points in canonical order, each with whether it waits for an earlier open point
        of its curve (a ``stop_sweep_below`` curve)."""
        seen: set[tuple[str, str]] = set()
        for unit in self.open:
            curve = (unit.scheme, unit.channel)
            yield unit, curve in seen and self.stops[unit.scheme].stop_sweep_below is not None
            seen.add(curve)

    def reused_now(self, final: bool = False) -> list[WorkUnit]:
        """Points finished by an earlier session that are next in line on their curves (``final``:
        all of them, once nothing else will run)."""
        return [u for u, waits in self._in_line() if u.key in self.finished and (final or not waits)]

    def next_task(self) -> Task | None:
        """The next task to submit, ``None`` while none can start."""
        for unit, waits in self._in_line():
            key = unit.key
            if key in self.finished:
                continue
            if unit.scheme not in self.ready:
                if unit.scheme not in self._asked:
                    self._asked.add(unit.scheme)
                    return Task(unit.scheme)
                continue
            if key in self.chunked:
                point, index = self.chunked[key], self._next_chunk[key]
                if point.reason is None and index < point.chunks:
                    self._next_chunk[key] += 1
                    return Task(unit.scheme, unit, index)
                continue
            if key in self._started or waits:
                continue
            if self.max_units is not None and len(self._started) >= self.max_units:
                continue
            self._started.add(key)
            return self._first_task(unit)
        return None

    def _first_task(self, unit: WorkUnit) -> Task:
        stop = self.stops[unit.scheme]
        if stop.chunk_samples is None:
            return Task(unit.scheme, unit)
        self.chunked[unit.key] = ChunkedPoint(self._schemes[unit.scheme], stop)
        self.chunk_outcomes[unit.key], self._next_chunk[unit.key] = [], 1
        return Task(unit.scheme, unit, 0)

    def done(self, unit: WorkUnit) -> None:
        self.open.remove(unit)
        self.chunked.pop(unit.key, None)

    def cut(self, unit: WorkUnit) -> list[WorkUnit]:
        """Drop the open points after ``unit`` on its curve; the points dropped."""
        later = [u for u in self.open if (u.scheme, u.channel) == (unit.scheme, unit.channel)
                 and self._rank[u.key] > self._rank[unit.key]]
        self.open = [u for u in self.open if u not in later]
        self._cut += len(later)
        return later

    def counts(self) -> dict[str, int]:
        """``run`` (points done in this session), ``reused``, ``cut`` and ``left`` (not started: ``max_units``)."""
        return {"run": len(self._started), "reused": self.reused, "cut": self._cut, "left": len(self.open)}


def _draw_examples(bench: Workbench, run_dir: RunDirectory) -> None:
    """The scenario's example-reconstruction figures (the schemes they need are prepared if this
    session has not yet). A scheme the run leaves out (``channels: []``) is left out of the figure too,
    never trained for it; a figure with none of its schemes left is not drawn."""
    from linksim.reconstructions import plot_reconstructions, reconstruction_rows

    scenario = bench.scenario
    labels = {s.name: s.label or s.name for s in scenario.schemes}
    for ex in scenario.outputs.examples:
        names = [n for n in ex.schemes if n in bench.specs and bench.specs[n].channels != []]
        if not names:
            continue
        ex = ex.model_copy(update={"schemes": names})
        shown = {name: bench.prepared(name) for name in names}
        rows = reconstruction_rows(shown, labels, bench.channels[ex.channel], ex, scenario.snr, scenario.seed)
        plot_reconstructions(rows, run_dir.plots / ex.name, scenario.outputs.formats, ex.title)
    if scenario.outputs.examples:
        run_dir.write_manifest(bench.manifest)


def _without_config(name: str, scheme: Scheme) -> str:
    """``name`` without a ``_<config>`` suffix of ``scheme``: the column name its results rows use."""
    found = config_of(name, scheme.configs)
    return name if found is None else found[1]


def headline_name(scheme: Scheme) -> str:
    """The primary's name as the headline row shows it: without a configuration suffix (an image
    baseline's primary is its first MCS's failure rate, its headline ``error_rate`` the envelope's)."""
    return _without_config(scheme.primary, scheme)


def primary_description(scheme: Scheme) -> dict[str, str]:
    """What a scheme's rows count (the manifest's ``schemes.<name>.primary``): its primary's name and,
    for a rate, the counters behind ``errors`` and the ratio (``{"name": "ber", "errors": "bit_errors",
    "of": "bits"}``), for a mean, what it is averaged over; names as the results rows have them."""
    stat = scheme.rates[scheme.primary]
    if isinstance(stat, Mean):
        return {"name": headline_name(scheme), "mean_over": _without_config(stat.count, scheme)}
    return {"name": headline_name(scheme), "errors": _without_config(stat.numerator, scheme),
            "of": _without_config(stat.denominator, scheme)}


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
