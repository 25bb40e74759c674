"""Monte Carlo over work units: per-unit seeds, additive counters, stopping rules, intervals.

A scheme's statistics (:class:`~linksim.schemes.base.Rate`, :class:`~linksim.schemes.base.Mean`,
:class:`~linksim.schemes.base.Derived`) are computed from the point's summed counters only, so a
point split into any batches gives the same row.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from sionna.phy import config as sionna_config

from linksim.channels.base import Channel
from linksim.config import SnrGrid, StopRule
from linksim.schemes.base import Derived, Mean, Rate, Scheme
from linksim.snr import esno_db_to_no, esno_from_axis, snr_on_all_axes
from linksim.stats import binomial_interval, mean_interval, sample_std

__all__ = [
    "POINT_COLUMNS",
    "STOP_REASONS",
    "ChunkedPoint",
    "WorkUnit",
    "chunk_seed",
    "chunk_span",
    "config_of",
    "derived_seed",
    "half_width",
    "point_row",
    "run_chunk",
    "run_unit",
    "seed_everything",
    "split_configs",
    "unit_seed",
]


@dataclass(frozen=True)
class WorkUnit:
    """One independent piece of work: a scheme on a channel at one SNR grid value (dB, scenario axis)."""

    scheme: str
    channel: str
    snr_db: float

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.scheme, self.channel, float(self.snr_db))

    def __str__(self) -> str:
        return f"{self.scheme} / {self.channel} / {self.snr_db:g} dB"


def derived_seed(*parts: object) -> int:
    """A 63-bit seed hashed from ``parts``."""
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def unit_seed(scenario_seed: int, unit: WorkUnit) -> int:
    """A seed that depends only on the scenario seed and the unit itself, so a point's result
    does not depend on which other points ran, in which order, or in which process."""
    return derived_seed(scenario_seed, unit.scheme, unit.channel, f"{unit.snr_db:.6f}")


def seed_everything(seed: int) -> None:
    """Seed Sionna's generators (which its blocks use in eager mode) and torch's global ones."""
    sionna_config.seed = seed
    torch.manual_seed(seed)


def _mean_terms(counters: dict[str, float], mean: Mean) -> tuple[float, float, float]:
    return counters.get(mean.total, 0), counters.get(mean.total_sq, 0), counters.get(mean.count, 0)


def _with_intervals(counters: dict[str, float], scheme: Scheme, stop: StopRule) -> dict[str, float]:
    """Every statistic of ``scheme`` from the summed ``counters``: a :class:`Rate` as ``<name>`` (NaN
    without trials) with its binomial ``<name>_ci_low``/``_ci_high`` when it has an interval; a
    :class:`Mean` as ``<name>``, its Student-t ``<name>_ci_low``/``_ci_high`` and ``<name>_std``
    (NaN below two values); a :class:`Derived` as ``<name>``."""
    out: dict[str, float] = {}
    for name, stat in scheme.rates.items():
        if isinstance(stat, Mean):
            total, total_sq, count = _mean_terms(counters, stat)
            out[name] = total / count if count else math.nan
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = mean_interval(total, total_sq, count, stop.confidence)
            out[f"{name}_std"] = sample_std(total, total_sq, count)
        elif isinstance(stat, Derived):
            out[name] = float(stat.fn(counters))
        else:
            num, den = counters.get(stat.numerator, 0), counters.get(stat.denominator, 0)
            out[name] = num / den if den else math.nan
            if stat.interval:
                out[f"{name}_ci_low"], out[f"{name}_ci_high"] = binomial_interval(num, den, stop.confidence,
                                                                                  stop.interval)
    return out


def half_width(counters: dict[str, float], mean: Mean, confidence: float) -> float:
    """Half-width ``(high - low) / 2`` of a mean's interval from the counters (NaN below two values)."""
    low, high = mean_interval(*_mean_terms(counters, mean), confidence)
    return (high - low) / 2


def _progress_status(counters: dict[str, float], primary: Rate | Mean, stop: StopRule) -> dict[str, float]:
    """Where the primary stands: ``{"errors": n}`` for a rate, ``{"half_width": h}`` for a mean."""
    if isinstance(primary, Mean):
        return {"half_width": half_width(counters, primary, stop.confidence)}
    return {"errors": counters[primary.numerator]}


def _precise_enough(status: dict[str, float], samples: int, stop: StopRule, batches: int) -> bool:
    """Whether the primary is known well enough to stop, from its :func:`_progress_status`:
    ``target_errors`` for a rate, ``target_half_width`` for a mean (from the second batch on);
    neither before ``min_samples`` items."""
    if stop.min_samples is not None and samples < stop.min_samples:
        return False
    if "half_width" in status:
        if stop.target_half_width is None or batches < 2:
            return False
        return status["half_width"] <= stop.target_half_width  # NaN: False
    return status["errors"] >= stop.target_errors


#: why a point stopped, the ``stop_reason`` column (first that holds, in this order)
STOP_REASONS = ("target_errors", "target_half_width", "max_samples", "max_time_s")


def _stop_reason(status: dict[str, float], samples: int, stop: StopRule, batches: int,
                 elapsed_s: float) -> str | None:
    """The :data:`STOP_REASONS` entry that ends the point after this batch, ``None`` to go on."""
    if _precise_enough(status, samples, stop, batches):
        return "target_half_width" if "half_width" in status else "target_errors"
    if samples >= stop.max_samples:
        return "max_samples"
    if stop.max_time_s is not None and elapsed_s >= stop.max_time_s:
        return "max_time_s"
    return None


#: the columns that say which point a results row belongs to (every row of a point repeats them)
POINT_COLUMNS = ("scheme", "channel", "snr_db", "snr_axis", "esno_db", "ebno_db", "snr_norm_db", "channel_uses",
                 "info_bits", "samples", "stop_reason")
_PARTS = ("", "_ci_low", "_ci_high", "_std")


def config_of(column: str, configs: Sequence[str]) -> tuple[str, str] | None:
    """``(config, name)`` when ``column`` is ``<name>_<config>`` plus an optional ``_ci_low``,
    ``_ci_high`` or ``_std`` (kept in ``name``), the longest matching config winning (``r1_3`` and
    ``r1_34``); ``None`` for a column of no configuration."""
    for config in sorted(configs, key=len, reverse=True):
        for part in _PARTS:
            tail = f"_{config}{part}"
            if column.endswith(tail) and len(column) > len(tail):
                return config, column[: -len(tail)] + part
    return None


def split_configs(row: dict, configs: Sequence[str]) -> list[dict]:
    """A point's row (:func:`run_unit`) as tidy rows: its headline row (``config`` empty: every column
    not of a configuration) and one row per name of ``configs`` (``config`` = the name: the point
    columns and each ``<name>_<config>[_ci_low|_ci_high|_std]`` column as ``<name>[...]``).

    >>> split_configs({"scheme": "s", "snr_db": 1.0, "psnr_db": 30.0, "psnr_db_a": 30.0, "bler_a_ci_low": 0.1},
    ...               ["a"])
    [{'scheme': 's', 'config': '', 'snr_db': 1.0, 'psnr_db': 30.0}, {'scheme': 's', 'config': 'a', \
'snr_db': 1.0, 'psnr_db': 30.0, 'bler_ci_low': 0.1}]
    """
    if not configs:
        return [{**row, "config": ""}]
    owner = {column: found for column in row if column not in POINT_COLUMNS
             and (found := config_of(column, configs)) is not None}  # column -> (config, name without it)
    point = {k: row[k] for k in POINT_COLUMNS if k in row}

    def with_config(config: str, values: dict) -> dict:
        out = {k: v for k, v in point.items() if k in ("scheme", "channel")}
        out["config"] = config
        out.update({k: v for k, v in point.items() if k not in out})
        out.update(values)
        return out

    rows = [with_config("", {k: v for k, v in row.items() if k not in owner and k not in point})]
    for config in configs:
        rows.append(with_config(config, {name: row[column] for column, (c, name) in owner.items() if c == config}))
    return rows


def _primary(scheme: Scheme) -> Rate | Mean:
    primary = scheme.rates[scheme.primary]
    if not isinstance(primary, Rate | Mean):
        raise TypeError(f"{type(scheme).__name__}: primary {scheme.primary!r} must be a Rate or a Mean, "
                        f"found {type(primary).__name__}")
    return primary


def _point_noise(scheme: Scheme, channel: Channel, unit: WorkUnit, grid: SnrGrid) -> torch.Tensor:
    """The point's noise variance, one float32 value for the whole point (a vectorised pow over a
    batch can differ by an ulp between elements)."""
    esno_db = esno_from_axis(unit.snr_db, grid.axis, scheme.budget(channel), grid.reference_complex_uses)
    return esno_db_to_no(torch.tensor(esno_db, dtype=torch.float32, device=sionna_config.device))


def _simulate_batch(scheme: Scheme, channel: Channel, unit: WorkUnit, batch: int, no_point: torch.Tensor
                    ) -> dict[str, float]:
    """``scheme.simulate`` of ``batch`` items; running out of memory is a one-line error naming the point."""
    try:
        return scheme.simulate(batch, no_point.repeat(batch), channel)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError | torch.OutOfMemoryError) and "allocate" not in str(err):
            raise
        raise RuntimeError(f"{unit.scheme} / {unit.channel} at {unit.snr_db:g} dB: out of memory simulating a "
                           f"batch of {batch} items; lower stop.batch_size (the scheme's or the scenario's)"
                           ) from None


@torch.no_grad()
def run_unit(
    scheme: Scheme,
    channel: Channel,
    unit: WorkUnit,
    grid: SnrGrid,
    stop: StopRule,
    seed: int,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float | str]:
    """Simulate one work unit until its stopping rule holds; returns its CSV row (:func:`point_row`).

    :param grid: the scenario's SNR grid (axis and reference); ``unit.snr_db`` is on its axis.
    :param stop: the scheme's stopping rule (:class:`~linksim.config.StopRule`): ``target_errors``
        applies to a rate primary, ``target_half_width`` to a mean primary; ``chunk_samples`` is
        not used here (:func:`run_chunk` and :class:`ChunkedPoint` are).
    :param seed: the unit's seed (:func:`unit_seed`).
    :param progress: called after every batch with (items in the batch, ``{"errors": primary errors so
        far}`` for a rate primary or ``{"half_width": its interval's half-width}`` for a mean).
    """
    no_point = _point_noise(scheme, channel, unit, grid)
    seed_everything(seed)
    scheme.reset()
    primary = _primary(scheme)
    counters: Counter = Counter()
    batches = 0
    start = time.perf_counter()
    while True:
        batch = min(stop.batch_size, stop.max_samples - counters["samples"])
        counters.update(_simulate_batch(scheme, channel, unit, batch, no_point))
        batches += 1
        status = _progress_status(counters, primary, stop)  # once per batch: the interval costs a t quantile
        if progress is not None:
            progress(batch, status)
        reason = _stop_reason(status, counters["samples"], stop, batches, time.perf_counter() - start)
        if reason is not None:
            break
    return point_row(scheme, channel, unit, grid, stop, counters, reason)


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of the unit whose seed is ``seed`` (:func:`unit_seed`)."""
    return derived_seed(seed, "chunk", index)


def chunk_span(stop: StopRule, index: int) -> tuple[int, int]:
    """(first item, item count) of chunk ``index`` of a point: ``stop.chunk_samples`` items, the last
    chunk cut at ``stop.max_samples``."""
    first = index * stop.chunk_samples
    return first, min(stop.chunk_samples, stop.max_samples - first)


@torch.no_grad()
def run_chunk(
    scheme: Scheme,
    channel: Channel,
    unit: WorkUnit,
    grid: SnrGrid,
    stop: StopRule,
    seed: int,
    index: int,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[dict[str, float], int]:
    """Simulate chunk ``index`` of a point (:func:`chunk_span`) in batches of ``stop.batch_size``,
    seeded with :func:`chunk_seed`, with no stopping rule inside it; the scheme continues its
    evaluation walk at the chunk's first item (:meth:`~linksim.schemes.base.Scheme.start_at`), so the
    chunks of a point walk the set as one unit would.

    :param seed: the unit's seed (:func:`unit_seed`).
    :param progress: called after every batch with (items in the batch, ``{}``).
    :output: (the chunk's additive counters, the number of batches it ran).
    """
    no_point = _point_noise(scheme, channel, unit, grid)
    seed_everything(chunk_seed(seed, index))
    scheme.reset()
    first, count = chunk_span(stop, index)
    scheme.start_at(first)
    counters: Counter = Counter()
    batches = 0
    while counters["samples"] < count:
        batch = min(stop.batch_size, count - counters["samples"])
        counters.update(_simulate_batch(scheme, channel, unit, batch, no_point))
        batches += 1
        if progress is not None:
            progress(batch, {})
    return dict(counters), batches


class ChunkedPoint:
    """A point's chunks (:func:`run_chunk`) added in chunk order, whatever order they finish in, with
    the stopping rule checked after each: the row depends on the chunk results only.

    :param scheme: the point's scheme (its primary decides the rule).
    :param stop: its stopping rule, ``chunk_samples`` set.
    """

    def __init__(self, scheme: Scheme, stop: StopRule):
        self.primary, self.stop = _primary(scheme), stop
        self.chunks = math.ceil(stop.max_samples / stop.chunk_samples)  #: chunks the point has at most
        self.counters: Counter = Counter()
        self.batches = self.added = 0  # batches and chunks summed so far
        self.reason: str | None = None  #: why the point stopped (:data:`STOP_REASONS`); ``None`` while it runs
        self._waiting: dict[int, tuple[dict[str, float], int]] = {}
        self._start = time.perf_counter()

    def add(self, index: int, counters: dict[str, float], batches: int) -> str | None:
        """Take the result of chunk ``index``; sum every chunk now in order and check the rule after
        each. Chunks after the one that ends the point are ignored.

        :output: :attr:`reason`.
        """
        self._waiting[index] = (counters, batches)
        while self.reason is None and self.added in self._waiting:
            counters, batches = self._waiting.pop(self.added)
            self.counters.update(counters)
            self.batches += batches
            self.added += 1
            status = _progress_status(self.counters, self.primary, self.stop)
            self.reason = _stop_reason(status, self.counters["samples"], self.stop, self.batches,
                                       time.perf_counter() - self._start)
        return self.reason


def point_row(scheme: Scheme, channel: Channel, unit: WorkUnit, grid: SnrGrid, stop: StopRule,
              counters: dict[str, float], reason: str) -> dict[str, float | str]:
    """A finished point's CSV row from its summed ``counters``.

    :param reason: why it stopped (:data:`STOP_REASONS`).
    :output: the row: identity and SNR columns, ``samples``, ``stop_reason``; for a rate primary
        ``errors, error_rate, ci_low, ci_high`` (its numerator, value and interval); for a mean
        primary ``primary`` (its name) and those four NaN; every statistic of the scheme
        (:func:`_with_intervals`), the raw counters, theory columns and what
        :meth:`~linksim.schemes.base.Scheme.summarize` adds.
    """
    budget = scheme.budget(channel)
    ref = grid.reference_complex_uses
    esno_db = esno_from_axis(unit.snr_db, grid.axis, budget, ref)
    primary = _primary(scheme)
    rates = _with_intervals(counters, scheme, stop)
    if isinstance(primary, Mean):
        head = {"primary": scheme.primary, "errors": math.nan, "error_rate": math.nan, "ci_low": math.nan,
                "ci_high": math.nan}
    else:
        head = {"errors": counters[primary.numerator], "error_rate": rates[scheme.primary],
                "ci_low": rates.get(f"{scheme.primary}_ci_low", math.nan),
                "ci_high": rates.get(f"{scheme.primary}_ci_high", math.nan)}
    row: dict[str, float | str] = {
        "scheme": unit.scheme,
        "channel": unit.channel,
        "snr_db": float(unit.snr_db),
        "snr_axis": grid.axis,
        **snr_on_all_axes(esno_db, budget, ref),
        "channel_uses": budget.channel_uses,
        "info_bits": math.nan if budget.info_bits is None else budget.info_bits,
        "samples": counters["samples"],
        "stop_reason": reason,
        **head,
        **rates,
        **{k: v for k, v in sorted(counters.items()) if k != "samples"},
        **scheme.theory(channel, esno_db),
    }
    row.update(scheme.summarize(row))
    return row
