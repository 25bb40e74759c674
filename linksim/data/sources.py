"""Loading a dataset from the first source that works: the converted cache, then remote fetches in order."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .base import DataUnavailableError, ImageDataset
from .cache import load_converted, save_converted

__all__ = ["Splits", "Fetch", "reason", "from_arrays", "load_first_available"]

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
"""``split -> (images uint8 [N, C, H, W], labels int64 [N])``."""

Fetch = Callable[[Path], tuple[Splits, str]]
"""Fetch into a temporary directory; returns all splits and a provenance label."""


def reason(err: BaseException) -> str:
    """How a failed source is reported: ``"<ExceptionType>: <message>"``."""
    return f"{type(err).__name__}: {err}"


def from_arrays(arrays: tuple[np.ndarray, np.ndarray], classes: tuple[str, ...], name: str,
                source: str) -> ImageDataset:
    images, labels = arrays
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), classes, name, source)


def load_first_available(
    *,
    title: str,
    name: str,
    split: str,
    classes: tuple[str, ...],
    target: Path,
    fetches: Sequence[tuple[str, Fetch]],
    hint: str,
    failures: tuple[type[BaseException], ...],
) -> ImageDataset:
    """The converted cache file ``target`` if it loads, else the first fetch that succeeds (converted
    once into ``target``).

    :raises DataUnavailableError: listing every source tried and why it failed, plus ``hint``.
    """
    attempts: list[tuple[str, str]] = []
    if target.is_file():
        try:
            return load_converted(target, split, name)
        except failures as err:
            attempts.append((f"converted cache {target}", reason(err)))
    else:
        attempts.append((f"converted cache {target}", "not present"))
    target.parent.mkdir(parents=True, exist_ok=True)
    for label, fetch in fetches:
        try:
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-download-") as tmp:
                splits, source = fetch(Path(tmp))
        except failures as err:
            attempts.append((label, reason(err)))
            continue
        save_converted(target, splits, classes, source)
        return from_arrays(splits[split], classes, name, source)
    raise DataUnavailableError(title, attempts, hint)
