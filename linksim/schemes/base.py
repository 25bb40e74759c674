"""What every scheme is: a transmitter + receiver + what it costs in channel uses."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from linksim import registry
from linksim.channels.base import Channel
from linksim.snr import LinkBudget
from linksim.training.cache import write_log

__all__ = ["Scheme", "SchemeContext", "Rate", "Mean", "Derived", "Statistic", "EvalCursor", "StageTimes"]


class StageTimes:
    """Wall seconds a scheme spends in named stages of :meth:`Scheme.simulate` (the LDPC link, the
    Huffman decoder, an image codec, ...), summed until :meth:`take`: the runner records them per work
    unit in the manifest (``stages_s``), so that a run shows where its time goes. A stage that ends by
    copying results to the host includes the GPU work it waited for.

    .. rubric:: Example

    >>> times = StageTimes()
    >>> with times("link"):
    ...     pass
    >>> sorted(times.take())
    ['link']
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[stage] += time.perf_counter() - t0

    def take(self) -> dict[str, float]:
        """The seconds per stage since the last call (rounded to ms), and start again from zero."""
        out = {stage: round(s, 3) for stage, s in self._seconds.items()}
        self._seconds.clear()
        return out


@dataclass(frozen=True)
class Rate:
    """A ratio of counters, ``counters[numerator] / counters[denominator]``, reported with a binomial
    confidence interval (columns ``<name>_ci_low``, ``<name>_ci_high``) when ``interval`` (an error
    probability) and as a plain ratio otherwise."""

    numerator: str
    denominator: str
    interval: bool = True


@dataclass(frozen=True)
class Mean:
    """The mean of a per-item quantity (PSNR in dB, SSIM, MSE per image) from three additive counters:
    ``counters[total]`` (sum of the values), ``counters[total_sq]`` (sum of their squares) and
    ``counters[count]`` (number of values). Reported as ``<name>`` with a Student-t interval
    (:func:`linksim.stats.mean_interval`: ``<name>_ci_low``, ``<name>_ci_high``, NaN below two
    values) and the sample standard deviation ``<name>_std``; the ``_std`` column is what marks a
    mean in a results file (plots draw it on a linear axis, ``snr-at`` interpolates it linearly)."""

    total: str
    total_sq: str
    count: str


@dataclass(frozen=True)
class Derived:
    """A column computed from a point's final counters, ``fn(counters) -> float`` (no interval), for
    a statistic that is neither a ratio nor a mean of per-item values (the PSNR of the mean MSE).
    ``doc`` says what it is. It cannot be a scheme's primary."""

    fn: Callable[[Mapping[str, float]], float]
    doc: str = ""


#: what a scheme's ``rates`` map names to
Statistic = Rate | Mean | Derived


class EvalCursor:
    """Walks an evaluation set in order, wrapping around (several passes per SNR point when the
    stopping rule asks for them). Schemes :meth:`rewind` it in :meth:`Scheme.reset`, so a point's
    items never depend on the points simulated before it."""

    def __init__(self) -> None:
        self.position = 0

    def rewind(self, position: int = 0) -> None:
        """Start the walk at item ``position`` (0: the first)."""
        self.position = position

    def take(self, count: int, size: int) -> np.ndarray:
        """The next ``count`` indices (int64) into a set of ``size`` items."""
        idx = (self.position + np.arange(count)) % size
        self.position = (self.position + count) % size
        return idx


@dataclass
class SchemeContext:
    """What a scheme may need besides its own parameters (datasets, caches, the run directory).

    :param device: torch device every block is built on.
    :param run_dir: this run's directory (training logs go below it), or ``None``.
    :param cache_dir: where trained weights are cached across runs.
    :param train_channel: the channel learned schemes train through.
    :param train_channel_spec: the scenario's training channel as resolved (part of weight-cache keys).
    :param seed: the scenario seed (training seeds derive from it).
    :param progress: whether to report training progress on the terminal.
    :param compile: whether schemes run their hot paths through ``torch.compile`` (:mod:`linksim.accel`).
    :param cuda_graphs: whether learned schemes capture their training steps in CUDA graphs
        (``train(..., cuda_graph=...)``; CUDA devices only).
    :param train_precision: the training precision of schemes whose recipe sets none (the scenario's
        ``train_precision``; :attr:`~linksim.training.TrainParams.precision`).
    """

    device: str = "cpu"
    run_dir: Path | None = None
    cache_dir: Path | None = None
    train_channel: Channel | None = None
    train_channel_spec: dict = field(default_factory=dict)
    seed: int = 0
    progress: bool = True
    compile: bool = False
    cuda_graphs: bool = False
    train_precision: str = "float32"
    data_wall_s: float = 0.0  # time spent loading datasets (inside the schemes' prepare)
    prepared: Callable[[str], "Scheme"] | None = field(default=None, repr=False)
    _datasets: dict = field(default_factory=dict, repr=False)
    _channels: dict = field(default_factory=dict, repr=False)

    def prepared_scheme(self, name: str) -> Scheme:
        """Another scheme of the scenario, built and prepared (once per run): what a warm start or a
        baseline built on another model needs."""
        if self.prepared is None:
            raise RuntimeError(f"scheme {name!r} was asked for, but this run has no other schemes")
        return self.prepared(name)

    def train_channel_for(self, preset: str | None) -> Channel:
        """The channel to train through: the scenario's ``train_channel`` for ``None``, else the preset."""
        if preset is None:
            return self.train_channel
        if preset not in self._channels:
            spec = self.train_channel_spec_for(preset)
            self._channels[preset] = registry.channels()[spec["type"]].build(spec["params"]).to(self.device)
        return self._channels[preset]

    def train_channel_spec_for(self, preset: str | None) -> dict:
        """The resolved spec of :meth:`train_channel_for` (part of weight-cache keys)."""
        if preset is None:
            return self.train_channel_spec
        kind, params = registry.channel_presets()[preset]
        return {"name": preset, "type": kind, "params": params}

    def log_training(self, name: str, history: list[dict]) -> None:
        """Write a training curve (one row per epoch) to ``<run>/training/<name>.csv``."""
        if self.run_dir is not None:
            write_log(history, self.run_dir / "training" / f"{name}.csv")

    def dataset(self, name: str, split: str, path: str | None = None, size: int | None = None):
        """A registered dataset (:mod:`linksim.data`), loaded once per run and shared by schemes;
        ``size`` (the square side of ``image-folder`` crops) is passed to the loader only when set."""
        key = (name, split, path, size)
        if key not in self._datasets:
            t0 = time.perf_counter()
            extra = {} if size is None else {"size": size}
            self._datasets[key] = registry.datasets()[name](split, path=path, **extra)
            self.data_wall_s += time.perf_counter() - t0
        return self._datasets[key]


class Scheme(nn.Module):
    """Base class of a simulated scheme.

    A subclass declares its counters' rates and primary rate, and implements :meth:`budget` and
    :meth:`simulate`. The engine knows nothing else about it.

    :cvar rates: name -> :class:`Rate`, :class:`Mean` or :class:`Derived`; each becomes a CSV
        column, with ``_ci_low``/``_ci_high`` for an error probability (binomial interval) and for a
        mean (Student-t interval, plus ``_std``).
    :cvar primary: the statistic a point is judged by. A :class:`Rate` is restated as ``errors``
        (its numerator), ``error_rate``, ``ci_low``, ``ci_high``, and ``errors`` drives the
        ``target_errors`` stopping rule; a :class:`Mean` leaves those four columns NaN, is named in a
        ``primary`` column, and its interval's half-width drives ``target_half_width``.
        ``samples`` always counts source items.
    :cvar configs: the configurations one point evaluates side by side on the same items (an image
        baseline's MCS grid): their statistics and counters are named ``<name>_<config>``, and the
        results file gets one row per configuration (``config`` column, names without the suffix)
        after the point's headline row (``config`` empty), :func:`linksim.engine.split_configs`.
    """

    rates: ClassVar[dict[str, Statistic]] = {}
    primary: ClassVar[str] = ""
    configs: tuple[str, ...] = ()
    name: str = ""  # the scenario's name for this instance (set by the runner)

    def prepare(self, context: SchemeContext) -> None:
        """Train or load what the scheme needs before evaluation (nothing by default)."""

    def reset(self) -> None:
        """Called at the start of every work unit, after seeding: rewind any evaluation state (a
        cursor into a test set), so a unit's result never depends on the units before it."""

    def start_at(self, item: int) -> None:
        """Called after :meth:`reset` for a chunk of a point (``stop.chunk_samples``): continue the
        evaluation walk at item ``item`` of the point, as one unit would have reached it. By default
        every :class:`EvalCursor` attribute of the scheme is moved there; a scheme with other state
        across items overrides this."""
        for cursor in vars(self).values():
            if isinstance(cursor, EvalCursor):
                cursor.rewind(item)

    def __init__(self) -> None:
        super().__init__()
        self.facts: dict = {}  # what describe() reports; subclasses add to it
        self.stage_times = StageTimes()  # where simulate() spends its time, per work unit

    def describe(self) -> dict:
        """Facts for the manifest (parameter counts, cache keys, ...): ``self.facts``."""
        return dict(self.facts)

    def budget(self, channel: Channel) -> LinkBudget:
        """Complex channel uses (and information bits, if any) per source item on ``channel``."""
        raise NotImplementedError

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        """Run ``batch_size`` source items through ``channel`` at noise variance ``no``.

        :param batch_size: number of source items (codewords, images).
        :param no: [] or [batch_size], float32. Noise variance per complex symbol (linear).
        :output: additive counters, ``samples`` (= items simulated) among them.
        """
        raise NotImplementedError

    def originals(self, indices: torch.Tensor) -> torch.Tensor:
        """Evaluation images ``indices`` ([B] int64) as sent: uint8 [B, C, H, W] (image schemes only)."""
        raise NotImplementedError(f"{type(self).__name__} transmits no images")

    def reconstruct(self, indices: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        """What the receiver shows for evaluation images ``indices`` ([B] int64) sent through
        ``channel`` at noise variance ``no`` ([] or [B], linear): uint8 [B, C, H, W] (image schemes
        only; the example-reconstruction figure calls it)."""
        raise NotImplementedError(f"{type(self).__name__} transmits no images")

    def theory(self, channel: Channel, esno_db: float) -> dict[str, float]:
        """Closed-form references at this point, as extra CSV columns (none by default)."""
        return {}

    def summarize(self, row: dict) -> dict:
        """Columns derived from a finished point's row (counters, rates, intervals), such as the best
        of several configurations; they may restate the primary columns. None by default."""
        return {}
