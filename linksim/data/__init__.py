"""Datasets for link simulation: MNIST, CIFAR-10 and image folders (``image-folder``, optionally resized and
centre-cropped to squares; Mini-ImageNet from a local copy) as uint8 tensors, plus tiling; small synthetic
sets for tests and examples (``synthetic-cifar``, ``synthetic-mnist``)."""

from __future__ import annotations

from collections.abc import Callable

from linksim.registry import register_dataset

from .base import SPLITS, DataUnavailableError, ImageDataset, Split
from .cache import ChecksumError, cache_dir
from .cifar10 import load_cifar10
from .image_folder import (
    image_folder_dataset,
    load_image_folder,
    load_mini_imagenet,
    resize_center_crop,
)
from .mnist import load_mnist
from .params import EVAL_SAMPLE_SEED, IMAGE_SHAPES, DataParams
from .pooled import POOLED, pooled_loader
from .quadrants import split_quadrants
from .synthetic import SYNTHETIC, synthetic_images, synthetic_loader

__all__ = [
    "DATASETS",
    "DataParams",
    "EVAL_SAMPLE_SEED",
    "IMAGE_SHAPES",
    "SPLITS",
    "ChecksumError",
    "DataUnavailableError",
    "ImageDataset",
    "Split",
    "cache_dir",
    "image_folder_dataset",
    "load_cifar10",
    "load_image_folder",
    "load_mini_imagenet",
    "load_mnist",
    "pooled_loader",
    "resize_center_crop",
    "split_quadrants",
    "synthetic_images",
    "synthetic_loader",
]

DATASETS: dict[str, Callable[..., ImageDataset]] = {"mnist": load_mnist, "cifar10": load_cifar10}
"""Dataset name -> loader called as ``loader(split, root=None, path=None)``."""

for _name, _loader in {**DATASETS, **SYNTHETIC, **POOLED}.items():
    register_dataset(_name, _loader)
# any local image tree; also takes size= (data.image_size), which callers pass only when set
register_dataset("image-folder", image_folder_dataset)
register_dataset("mini-imagenet", load_mini_imagenet)  # a local copy only (size= default 256)
