"""Learning rate per epoch and the early-stopping decision, both replayed from the training log
(so a resumed training takes exactly the decisions an uninterrupted one would)."""

from __future__ import annotations

import math

from linksim.training.params import CosineSchedule, EarlyStopping, PiecewiseSchedule, PlateauSchedule, TrainParams

__all__ = ["learning_rate", "best_epoch", "should_stop"]

EpochLog = dict[str, float]


def _improved(value: float, best: float | None, mode: str, threshold: float) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    if mode == "min":
        return value < best - threshold * abs(best)
    return value > best + threshold * abs(best)


def _metric(log: EpochLog, name: str) -> float:
    if name not in log:
        known = ", ".join(k for k in log if k not in ("epoch", "lr", "wall_s"))
        raise ValueError(f"train: metric {name!r} is not logged (logged: {known})")
    return float(log[name])


def learning_rate(params: TrainParams, epoch: int, history: list[EpochLog]) -> float:
    """The base learning rate of ``epoch`` (0-based), given the log of the epochs before it."""
    s = params.schedule
    if isinstance(s, PiecewiseSchedule):
        return params.lr * s.decay ** sum(epoch >= m for m in s.milestones)
    if isinstance(s, CosineSchedule):
        if params.epochs == 1:
            return params.lr
        return s.floor + (params.lr - s.floor) * (1 + math.cos(math.pi * epoch / (params.epochs - 1))) / 2
    assert isinstance(s, PlateauSchedule)
    lr, best, bad = params.lr, None, 0
    for log in history[:epoch]:
        value = _metric(log, s.metric)
        if _improved(value, best, s.mode, s.threshold):
            best, bad = value, 0
        else:
            bad += 1
            if bad > s.patience:
                lr, bad = max(lr * s.factor, s.min_lr), 0
    return lr


def best_epoch(rule: EarlyStopping, history: list[EpochLog]) -> int | None:
    """Index into ``history`` of the best epoch by ``rule.metric`` (``None`` for an empty log)."""
    best, where = None, None
    for i, log in enumerate(history):
        value = _metric(log, rule.metric)
        if _improved(value, best, rule.mode, rule.threshold):
            best, where = value, i
    return where


def should_stop(rule: EarlyStopping | None, history: list[EpochLog]) -> bool:
    """Whether the last ``rule.patience`` epochs brought no improvement over the best before them."""
    if rule is None or not history:
        return False
    where = best_epoch(rule, history)
    return where is not None and len(history) - 1 - where >= rule.patience
