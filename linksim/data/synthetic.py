"""Tiny seeded synthetic image sets for tests and examples: no download, no files, milliseconds to make.

Every class has a smooth pattern (a sum of a few low-frequency gratings per colour channel, the
same for every seed); an image is its class's pattern at a random contrast and brightness plus
pixel noise, as uint8. A small classifier learns the classes within an epoch or two and an
autoencoder learns the smooth structure, so the sets stand in for MNIST / CIFAR-10 wherever a test
needs a dataset that a model can learn, but must not need the network or minutes.

The registered ``synthetic-cifar`` (3 x 32 x 32) and ``synthetic-mnist`` (1 x 28 x 28) have
:data:`TRAIN_SIZE` training and :data:`TEST_SIZE` test images of 10 classes; the splits use
different seeds, so no test image is a training image.

.. rubric:: Example

>>> data = synthetic_images(8, shape=(1, 28, 28), seed=3)
>>> tuple(data.images.shape), data.images.dtype, len(data.classes)
((8, 1, 28, 28), torch.uint8, 10)
>>> bool((synthetic_images(8, seed=3).images == synthetic_images(8, seed=3).images).all())
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch

from .base import ImageDataset, Split, check_split

__all__ = ["SYNTHETIC", "TEST_SIZE", "TRAIN_SIZE", "class_patterns", "synthetic_images", "synthetic_loader"]

TRAIN_SIZE = 1000
TEST_SIZE = 200
_PATTERN_SEED = 20_240_611  # the class patterns: fixed, whatever the seed of the images
_WAVES = 3  # gratings per class and channel


def class_patterns(shape: tuple[int, int, int], classes: int) -> torch.Tensor:
    """The smooth pattern of every class, float32 ``[classes, C, H, W]`` in about [-1, 1]; it depends
    on ``shape`` and ``classes`` only (the same for the training and the test split)."""
    c, h, w = shape
    g = torch.Generator().manual_seed(_PATTERN_SEED + 7919 * classes + 31 * c + h * w)
    freq = 0.5 + 2.0 * torch.rand(classes, c, _WAVES, 2, generator=g)  # cycles per image side, low frequencies
    phase = 2 * math.pi * torch.rand(classes, c, _WAVES, generator=g)
    yy = torch.linspace(0, 1, h).reshape(1, 1, 1, h, 1)
    xx = torch.linspace(0, 1, w).reshape(1, 1, 1, 1, w)
    arg = 2 * math.pi * (freq[..., 0, None, None] * yy + freq[..., 1, None, None] * xx) + phase[..., None, None]
    return arg.cos().sum(dim=2) / math.sqrt(_WAVES)  # [classes, C, H, W]


def synthetic_images(n: int, shape: tuple[int, int, int] = (3, 32, 32), classes: int = 10, seed: int = 0,
                     name: str = "synthetic", noise: float = 20.0) -> ImageDataset:
    """``n`` images of ``classes`` classes, uint8 ``[n, *shape]``, labels int64 ``[n]`` (balanced, shuffled).

    An image is ``128 + a * 60 * pattern[label] + b + noise``, with the contrast ``a`` uniform in
    [0.7, 1.3], the brightness ``b`` uniform in [-20, 20] and Gaussian pixel noise of standard
    deviation ``noise`` (pixel values), rounded and clipped to 0..255. Everything is drawn from
    ``seed``; the patterns (:func:`class_patterns`) do not depend on it.
    """
    if n < 0 or classes < 1 or len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"synthetic_images: expected n >= 0, classes >= 1 and a (C, H, W) shape, found "
                         f"n={n}, classes={classes}, shape={shape}")
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % classes)[torch.randperm(n, generator=g)]
    contrast = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
    brightness = 40.0 * torch.rand(n, 1, 1, 1, generator=g) - 20.0
    pixels = noise * torch.randn(n, *shape, generator=g)
    values = 128.0 + contrast * 60.0 * class_patterns(tuple(shape), classes)[labels] + brightness + pixels
    images = values.round().clamp(0, 255).to(torch.uint8)
    return ImageDataset(images, labels.to(torch.int64), tuple(f"class{i}" for i in range(classes)), name,
                        f"synthetic (linksim.data.synthetic, seed {seed})")


def synthetic_loader(shape: tuple[int, int, int], name: str, train_size: int = TRAIN_SIZE,
                     test_size: int = TEST_SIZE, classes: int = 10) -> Callable[..., ImageDataset]:
    """A loader with the registry's signature ``loader(split, root=None, path=None)``: ``train`` is
    :func:`synthetic_images` with seed 0, ``test`` with seed 1. ``root`` is ignored (nothing is
    cached); ``path`` must be ``None`` (there is no local copy of a synthetic set)."""

    def load(split: Split, root: str | os.PathLike[str] | None = None,
             path: str | os.PathLike[str] | None = None) -> ImageDataset:
        check_split(split)
        if path is not None:
            raise ValueError(f"{name}: a synthetic dataset has no local copy (found path={path!r})")
        size, seed = (train_size, 0) if split == "train" else (test_size, 1)
        return synthetic_images(size, shape, classes, seed=seed, name=name)

    load.__name__ = f"load_{name.replace('-', '_')}"
    load.__doc__ = f"{name}: {train_size} training / {test_size} test synthetic images {shape} (seeded, no download)."
    return load


SYNTHETIC: dict[str, Callable[..., ImageDataset]] = {
    "synthetic-cifar": synthetic_loader((3, 32, 32), "synthetic-cifar"),
    "synthetic-mnist": synthetic_loader((1, 28, 28), "synthetic-mnist"),
}
"""The registered synthetic sets (:mod:`linksim.data` registers them with the real datasets)."""
