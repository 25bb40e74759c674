"""Monte Carlo over work units: per-unit seeds, additive counters, stopping rules, intervals."""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import torch
from sionna.phy import config as sionna_config

from linksim.channels.base import Channel
from linksim.config import SnrGrid, StopRule
from linksim.schemes.base import Scheme
from linksim.snr import esno_db_to_no, esno_from_axis, snr_on_all_axes
from linksim.stats import binomial_interval

__all__ = ["WorkUnit", "derived_seed", "unit_seed", "seed_everything", "run_unit"]


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


def _with_intervals(counters: dict[str, float], scheme: Scheme, stop: StopRule) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, rate in scheme.rates.items():
        num, den = counters.get(rate.numerator, 0), counters.get(rate.denominator, 0)
        out[name] = num / den if den else math.nan
        if rate.interval:
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = binomial_interval(num, den, stop.confidence, stop.interval)
    return out


@torch.no_grad()
def run_unit(
    scheme: Scheme,
    channel: Channel,
    unit: WorkUnit,
    grid: SnrGrid,
    stop: StopRule,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, float | str]:
    """Simulate one work unit until its stopping rule holds; returns its CSV row.

    :param grid: the scenario's SNR grid (axis and reference); ``unit.snr_db`` is on its axis.
    :param seed: the unit's seed (:func:`unit_seed`).
    :param progress: called after every batch with (samples in the batch, primary errors so far).
    :output: the row: identity and SNR columns, ``samples, errors, error_rate, ci_low, ci_high``,
        every rate of the scheme with its interval, the raw counters, and theory columns.
    """
    budget = scheme.budget(channel)
    ref = grid.reference_complex_uses
    esno_db = esno_from_axis(unit.snr_db, grid.axis, budget, ref)
    seed_everything(seed)
    scheme.reset()
    primary = scheme.rates[scheme.primary]
    counters: Counter = Counter()
    # one value for the whole point: a vectorised pow over a batch can differ by an ulp between elements
    no_point = esno_db_to_no(torch.tensor(esno_db, dtype=torch.float32, device=sionna_config.device))
    start = time.perf_counter()
    while True:
        batch = min(stop.batch_size, stop.max_samples - counters["samples"])
        no = no_point.repeat(batch)
        counters.update(scheme.simulate(batch, no, channel))
        if progress is not None:
            progress(batch, counters[primary.numerator])
        if (
            counters[primary.numerator] >= stop.target_errors
            or counters["samples"] >= stop.max_samples
            or (stop.max_time_s is not None and time.perf_counter() - start >= stop.max_time_s)
        ):
            break
    rates = _with_intervals(counters, scheme, stop)
    row: dict[str, float | str] = {
        "scheme": unit.scheme,
        "channel": unit.channel,
        "snr_db": float(unit.snr_db),
        "snr_axis": grid.axis,
        **snr_on_all_axes(esno_db, budget, ref),
        "channel_uses": budget.channel_uses,
        "info_bits": math.nan if budget.info_bits is None else budget.info_bits,
        "samples": counters["samples"],
        "errors": counters[primary.numerator],
        "error_rate": rates[scheme.primary],
        "ci_low": rates[f"{scheme.primary}_ci_low"],
        "ci_high": rates[f"{scheme.primary}_ci_high"],
        **rates,
        **{k: v for k, v in sorted(counters.items()) if k != "samples"},
        **scheme.theory(channel, esno_db),
    }
    row.update(scheme.summarize(row))
    return row
