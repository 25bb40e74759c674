"""Dataset cache directory, checksums, atomic writes and the pickle-free ``.npz`` storage format."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from linksim.atomic import atomic_write

from .base import ImageDataset

__all__ = [
    "ChecksumError",
    "atomic_write",
    "cache_dir",
    "check_digest",
    "file_digest",
    "load_converted",
    "save_converted",
    "sha256_file",
]

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's digest differs from the pinned one; its content must not be used."""


def cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Directory for downloaded and converted datasets (not created here).

    ``root`` if given, else ``$LINKSIM_DATA``, else ``$XDG_CACHE_HOME/linksim/data``,
    else ``~/.cache/linksim/data``.
    """
    if root is not None:
        return Path(root)
    if env := os.environ.get("LINKSIM_DATA"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "linksim" / "data"


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    return file_digest(path, "sha256")


def check_digest(data: bytes | Path, expected: str, name: str, algorithm: str = "sha256") -> None:
    """Raise :class:`ChecksumError` naming ``name`` and ``expected`` unless ``data`` hashes to it.

    Args:
        data: the bytes themselves, or a path to a file holding them.
        expected: pinned hex digest (case-insensitive).
        name: what is checked, for the message (file name or archive member).
        algorithm: a :mod:`hashlib` algorithm name, e.g. ``"md5"`` or ``"sha256"``.
    """
    actual = file_digest(data, algorithm) if isinstance(data, Path) else hashlib.new(algorithm, data).hexdigest()
    if actual != expected.lower():
        raise ChecksumError(f"{name}: {algorithm} is {actual}, expected the pinned {expected}; refusing to use it")


def save_converted(
    path: str | os.PathLike[str],
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: tuple[str, ...],
    source: str,
) -> None:
    """Store splits atomically as an uncompressed ``.npz`` holding no pickled objects.

    Args:
        path: destination file.
        splits: ``split -> (images uint8 [N, C, H, W], labels int64 [N])``.
        classes: class names, stored as a unicode array.
        source: provenance string, returned as ``ImageDataset.source`` on load.
    """
    arrays: dict[str, np.ndarray] = {"classes": np.array(classes, dtype=str), "source": np.array(source)}
    for split, (images, labels) in splits.items():
        arrays[f"{split}_images"] = np.ascontiguousarray(images, dtype=np.uint8)
        arrays[f"{split}_labels"] = np.ascontiguousarray(labels, dtype=np.int64)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_converted(path: str | os.PathLike[str], split: str, name: str) -> ImageDataset:
    """Load one split written by :func:`save_converted` (``allow_pickle=False``).

    Raises:
        ValueError: the file is not in that format or lacks ``split``.
        OSError: the file cannot be read.
    """
    with np.load(path, allow_pickle=False) as z:
        if f"{split}_images" not in z.files:
            raise ValueError(f"{path} holds no '{split}' split (has {sorted(z.files)})")
        images = z[f"{split}_images"]
        labels = z[f"{split}_labels"]
        classes = tuple(str(c) for c in z["classes"])
        source = str(z["source"])
    if images.dtype != np.uint8 or labels.dtype != np.int64:
        raise ValueError(f"{path}: expected uint8 images and int64 labels, got {images.dtype} and {labels.dtype}")
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), classes, name, source)
