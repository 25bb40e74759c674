"""Loader for ``<split>/<class>/<image>`` trees in a directory or a zip, with a converted-result cache."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from .base import ImageDataset
from .cache import cache_dir, load_converted, save_converted

__all__ = ["IMAGE_SUFFIXES", "load_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_GRAY_MODES = ("1", "L", "LA")
_FORMAT_VERSION = 1  # bump when decoding changes, to invalidate cached conversions
_K = TypeVar("_K")


def load_image_folder(path: str | os.PathLike[str], split: str, classes: Sequence[str] | None = None,
                      root: str | os.PathLike[str] | None = None) -> ImageDataset:
    """Decode every image under ``<path>/<split>/<class>/`` into one uint8 ``[N, C, H, W]`` set.

    Args:
        path: a directory, or a zip whose entries are ``<split>/<class>/<file>``, optionally
            all inside one top-level folder.
        split: sub-folder to load, e.g. ``"train"`` or ``"test"``.
        classes: class names in label order; default: the class folders sorted by name. A
            folder not named here is an error; a named class may have no folder.
        root: cache directory override (default :func:`~linksim.data.cache.cache_dir`).

    Files with a suffix in :data:`IMAGE_SUFFIXES` are read class by class, sorted by file
    name, and decoded with Pillow to ``L`` (``C = 1``) if every one is grayscale, else to
    ``RGB`` (``C = 3``); all must share one size. Labels are int64 ``[N]`` indices into
    ``classes``; ``source`` is ``"image folder <path>"``. The result is cached under
    ``<cache>/image_folder/`` keyed by the sha256 of the path, split, classes and the
    size and mtime of the zip (of each file, for a directory); a later call with nothing
    changed only reads that ``.npz``.

    Raises:
        FileNotFoundError: ``path`` or ``<path>/<split>`` does not exist.
        ValueError: no images, an unknown class folder, differing image sizes, or an
            undecodable file.
    """
    path = Path(path).resolve()
    if path.is_dir():
        found = _list_directory(path, split)
        fingerprint = [[c, n, st.st_size, st.st_mtime_ns] for c, n, p in found for st in [p.stat()]]
    elif path.is_file():
        fingerprint = [[path.stat().st_size, path.stat().st_mtime_ns]]
    else:
        raise FileNotFoundError(f"image folder {path} does not exist")
    requested = None if classes is None else list(classes)
    key = hashlib.sha256(
        json.dumps([_FORMAT_VERSION, str(path), split, requested, fingerprint]).encode()
    ).hexdigest()
    cached = cache_dir(root) / "image_folder" / f"{key}.npz"
    if cached.is_file():
        return load_converted(cached, split, path.stem)

    source = f"image folder {path}"
    if path.is_dir():
        images, labels, names = _decode(found, Path.read_bytes, requested, source)
    else:
        with zipfile.ZipFile(path) as zf:
            images, labels, names = _decode(_list_zip(zf, split, path), zf.read, requested, source)
    save_converted(cached, {split: (images, labels)}, names, source)
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), names, path.stem, source)


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _list_directory(path: Path, split: str) -> list[tuple[str, str, Path]]:
    split_dir = path / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir} is not a directory")
    return sorted(
        (class_dir.name, f.name, f)
        for class_dir in split_dir.iterdir() if class_dir.is_dir()
        for f in class_dir.iterdir() if _is_image(f.name) and f.is_file()
    )


def _list_zip(zf: zipfile.ZipFile, split: str, path: Path) -> list[tuple[str, str, zipfile.ZipInfo]]:
    by_prefix: dict[str, list[tuple[str, str, zipfile.ZipInfo]]] = {}
    for info in zf.infolist():
        parts = info.filename.split("/")
        if info.is_dir() or len(parts) not in (3, 4) or parts[-3] != split or not _is_image(parts[-1]):
            continue
        by_prefix.setdefault(parts[0] if len(parts) == 4 else "", []).append((parts[-2], parts[-1], info))
    if len(by_prefix) > 1:
        raise ValueError(f"{path}: '{split}/' appears under several top-level folders {sorted(by_prefix)}")
    return sorted(next(iter(by_prefix.values()), []), key=lambda e: e[:2])


def _decode(entries: list[tuple[str, str, _K]], read: Callable[[_K], bytes], requested: list[str] | None,
            where: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Decode sorted ``(class, file name, handle)`` entries -> (uint8 [N,C,H,W], int64 [N], classes)."""
    if not entries:
        raise ValueError(f"{where}: no {'/'.join(IMAGE_SUFFIXES)} files under <split>/<class>/")
    present = sorted({c for c, _, _ in entries})
    classes = tuple(present if requested is None else requested)
    unknown = set(present) - set(classes)
    if unknown:
        raise ValueError(f"{where}: class folders {sorted(unknown)} are not among {classes}")
    index = {c: i for i, c in enumerate(classes)}

    pixels: list[np.ndarray] = []
    for class_name, file_name, handle in entries:
        try:
            with Image.open(io.BytesIO(read(handle))) as im:
                mode = "L" if im.mode in _GRAY_MODES else "RGB"
                arr = np.asarray(im if im.mode == mode else im.convert(mode))
        except (OSError, Image.DecompressionBombError) as err:
            raise ValueError(f"{where}: cannot decode {class_name}/{file_name}: {err}") from err
        if pixels and arr.shape[:2] != pixels[0].shape[:2]:
            raise ValueError(f"{where}: {class_name}/{file_name} is {arr.shape[1]}x{arr.shape[0]}, "
                             f"the first image is {pixels[0].shape[1]}x{pixels[0].shape[0]}")
        pixels.append(arr)

    if all(a.ndim == 2 for a in pixels):
        images = np.stack(pixels)[:, None]
    else:
        images = np.stack([a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in pixels])
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    labels = np.array([index[c] for c, _, _ in entries], dtype=np.int64)
    return images, labels, classes
