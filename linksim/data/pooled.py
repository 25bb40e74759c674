"""A dataset's splits pooled and split again with a seed (seed002: CIFAR-10's 60,000 images, 48k / 6k / 6k)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from linksim import registry

from .base import ImageDataset, Split, check_split

__all__ = ["POOLED", "POOL_SEED", "pooled_loader"]

POOL_SEED = 0
"""Seed of the permutation that splits the pool: every scheme reading a pooled set sees the same split."""


def pooled_loader(base: str, test_count: int) -> Callable[..., ImageDataset]:
    """A loader of the registered dataset ``base``'s ``train`` and ``test`` splits pooled, permuted with
    :data:`POOL_SEED`, the first ``test_count`` images of the permutation being ``test`` and the rest
    ``train`` (each kept in the pool's order). ``base`` is looked up when a split is loaded, so a
    replaced ``base`` (a local copy, a synthetic stand-in in tests) is pooled as well.

    :param base: a registered dataset name (``cifar10``).
    :param test_count: images of the pooled ``test`` split (fewer when the pool is smaller: then half of it).
    :output: ``loader(split, path=None)`` -> :class:`~linksim.data.base.ImageDataset` named
        ``<base>-pooled``; ``path`` is passed to ``base``'s loader.

    .. rubric:: Example

    >>> load = pooled_loader("synthetic-cifar", 200)
    >>> len(load("train")), len(load("test"))
    (1000, 200)
    """

    def load(split: Split, path: str | None = None) -> ImageDataset:
        check_split(split)
        parts = [registry.datasets()[base](s, path=path) for s in ("train", "test")]
        images = torch.cat([p.images for p in parts])
        labels = torch.cat([p.labels for p in parts])
        count = min(test_count, len(images) // 2)
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(POOL_SEED))
        idx = (perm[:count] if split == "test" else perm[count:]).sort().values
        source = (f"{parts[0].source}, train + test pooled, split {len(images) - count} / {count} "
                  f"(seed {POOL_SEED})")
        return ImageDataset(images[idx], labels[idx], parts[0].classes, f"{base}-pooled", source)

    return load


POOLED: dict[str, Callable[..., ImageDataset]] = {"cifar10-pooled": pooled_loader("cifar10", 6000)}
"""The registered pooled sets: ``cifar10-pooled``, 54,000 ``train`` and 6,000 ``test`` images (seed002 §4;
a 6,000-image validation split of ``train`` leaves the paper's 48,000 training images)."""
