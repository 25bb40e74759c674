"""Loader for ``<split>/<class>/<image>`` trees in a directory or a zip (optionally resized and centre-cropped
to squares, for ImageNet-style crops), with a converted-result cache; the ``image-folder`` dataset and a
Mini-ImageNet helper on it."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from .base import DataUnavailableError, ImageDataset
from .cache import cache_dir, load_converted, save_converted

__all__ = ["IMAGE_SUFFIXES", "MINI_IMAGENET_SIZE", "RESAMPLE", "image_folder_dataset", "load_image_folder",
           "load_mini_imagenet", "resize_center_crop"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
RESAMPLE = Image.Resampling.BICUBIC
"""Filter of the ``size`` resize (the spec leaves it open; bicubic, as torchvision's ImageNet recipes)."""
MINI_IMAGENET_SIZE = 256
MINI_IMAGENET_CLASSES = {"train": 64, "val": 16, "test": 20}
"""Classes per split of the Ravi & Larochelle lists."""
_GRAY_MODES = ("1", "L", "LA")
_MODES = ("RGB", "L")
_CACHE_FAILURES = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
_FORMAT_VERSION = 1  # bump when decoding changes, to invalidate cached conversions
_K = TypeVar("_K")


def load_image_folder(path: str | os.PathLike[str], split: str, classes: Sequence[str] | None = None,
                      root: str | os.PathLike[str] | None = None, *, size: int | None = None,
                      mode: str | None = None) -> ImageDataset:
    """Decode every image under ``<path>/<split>/<class>/`` into one uint8 ``[N, C, H, W]`` set.

    Args:
        path: a directory, or a zip whose entries are ``<split>/<class>/<file>``, optionally
            all inside one top-level folder.
        split: sub-folder to load, e.g. ``"train"`` or ``"test"``.
        classes: class names in label order; default: the class folders sorted by name. A
            folder not named here is an error; a named class may have no folder.
        root: cache directory override (default :func:`~linksim.data.cache.cache_dir`).
        size: square output side: every image is resized so that its shorter side is ``size``
            and centre-cropped to ``size x size`` (:func:`resize_center_crop`); images may then
            differ in size and aspect ratio. ``None``: as decoded, all of one size.
        mode: ``"RGB"`` or ``"L"`` to convert every image to that mode; ``None``: ``L`` if every
            image is grayscale, else ``RGB``.

    Files with a suffix in :data:`IMAGE_SUFFIXES` are read class by class, sorted by file
    name, and decoded with Pillow to ``L`` (``C = 1``) if every one is grayscale, else to
    ``RGB`` (``C = 3``; or to ``mode``); without ``size`` all must share one size. Labels are
    int64 ``[N]`` indices into ``classes``; ``source`` is ``"image folder <path>"`` (plus the
    resize, with ``size``). The result is cached under ``<cache>/image_folder/`` keyed by the
    sha256 of the path, split, classes, ``size`` and ``mode`` (when given) and the size and
    mtime of the zip (of each file, for a directory); a later call with nothing changed only
    reads that ``.npz``. A cache file that cannot be read back (truncated, a bad CRC, not an
    ``.npz``, shapes that do not fit) is decoded again and replaced.

    Raises:
        FileNotFoundError: ``path`` or ``<path>/<split>`` does not exist.
        ValueError: no images, an unknown class folder, differing image sizes (without
            ``size``), an undecodable file, or a bad ``size`` / ``mode``.
    """
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive int or None, got {size!r}")
    if mode is not None and mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES} or None, got {mode!r}")
    path = Path(path).resolve()
    if path.is_dir():
        found = _list_directory(path, split)
        fingerprint = [[c, n, st.st_size, st.st_mtime_ns] for c, n, p in found for st in [p.stat()]]
    elif path.is_file():
        fingerprint = [[path.stat().st_size, path.stat().st_mtime_ns]]
    else:
        raise FileNotFoundError(f"image folder {path} does not exist")
    requested = None if classes is None else list(classes)
    parts: list = [_FORMAT_VERSION, str(path), split, requested, fingerprint]
    if size is not None or mode is not None:  # keys of plain loads stay as they were
        parts.append({"size": size, "mode": mode})
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    cached = cache_dir(root) / "image_folder" / f"{key}.npz"
    if cached.is_file():
        try:
            ds = load_converted(cached, split, path.stem)
            if _fits(ds, size, mode):
                return ds
        except _CACHE_FAILURES:
            pass  # corrupt: decode again and replace it

    source = f"image folder {path}"
    if size is not None:
        source += f" (shorter side resized to {size}, bicubic, centre-cropped to {size}x{size})"
    where = f"image folder {path}"
    if path.is_dir():
        images, labels, names = _decode(found, Path.read_bytes, requested, where, size, mode)
    else:
        with zipfile.ZipFile(path) as zf:
            images, labels, names = _decode(_list_zip(zf, split, path), zf.read, requested, where, size, mode)
    save_converted(cached, {split: (images, labels)}, names, source)
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), names, path.stem, source)


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize ``image`` so that its shorter side is ``size`` (:data:`RESAMPLE`, bicubic), then crop
    the central ``size x size`` square.

    The arithmetic follows torchvision's ``Resize(size, BICUBIC)`` + ``CenterCrop(size)`` on a PIL image:
    the longer side becomes ``int(size * long / short)``, and the crop offset along it is
    ``round((long' - size) / 2)`` (Python rounding). An image already ``size`` on its shorter side is
    only cropped.
    """
    w, h = image.size
    if min(w, h) != size:
        if w <= h:
            w, h = size, int(size * h / w)
        else:
            w, h = int(size * w / h), size
        image = image.resize((w, h), RESAMPLE)
    left, top = round((w - size) / 2.0), round((h - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


def image_folder_dataset(split: str, root: str | os.PathLike[str] | None = None,
                         path: str | os.PathLike[str] | None = None, size: int | None = None) -> ImageDataset:
    """The registered ``image-folder`` dataset: :func:`load_image_folder` of ``path`` read as ``RGB``
    (so that its shape is ``DataParams.image_shape``, ``(3, size, size)``), resized and
    centre-cropped to ``size`` when given. Classes are the ``<split>/<class>/`` folder names, sorted.

    For Mini-ImageNet lay a local copy out as :func:`load_mini_imagenet` describes.

    Raises:
        ValueError: no ``path`` (``data.path``).
    """
    if path is None:
        raise ValueError("image-folder needs data.path: a directory or .zip laid out as <split>/<class>/<image>")
    return load_image_folder(path, split, root=root, size=size, mode="RGB")


def load_mini_imagenet(split: str, path: str | os.PathLike[str] | None = None,
                       root: str | os.PathLike[str] | None = None,
                       size: int = MINI_IMAGENET_SIZE) -> ImageDataset:
    """Mini-ImageNet from a locally supplied copy of the full-resolution ImageNet files, resized
    (shorter side ``size``, bicubic) and centre-cropped to ``size x size`` RGB (default 256).

    Nothing is downloaded (the images cannot be had at run time; the common 84x84 pickles are too
    small for 256 crops). Lay the copy out as a directory or ``.zip``::

        <path>/train/<wnid>/*.jpg|JPEG   64 classes x 600 images (Ravi & Larochelle train.csv)
        <path>/val/<wnid>/...            16 classes (val.csv)
        <path>/test/<wnid>/...           20 classes x 600 = 12,000 images (test.csv)

    i.e. for every ``filename,label`` row of the split's csv list, the ImageNet image that row
    stands for, under ``<split>/<label>/`` (``label`` is the wnid, e.g. ``n01532829``). Which
    ImageNet file a csv ``filename`` denotes depends on the tool that built the copy, so this
    loader reads the folders only, not the csv. Class names are the wnids in sorted order, labels
    index them per split (the splits have disjoint classes). The same copy also loads as the
    ``image-folder`` dataset with ``data.path: <path>`` and ``data.image_size: 256``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        path: the copy; default ``<cache>/mini-imagenet`` (:func:`~linksim.data.cache.cache_dir`).
        root: cache directory override.
        size: square output side.

    A split whose class count differs from :data:`MINI_IMAGENET_CLASSES` loads with a warning.

    Raises:
        DataUnavailableError: no copy at ``path`` (or ``<path>/<split>`` is missing).
    """
    copy = Path(path) if path is not None else cache_dir(root) / "mini-imagenet"
    hint = (f"place a local copy of the full-resolution images at {copy} (or pass path=) laid out as "
            "train|val|test/<wnid>/*.jpg, one folder per class of the Ravi-Larochelle split lists")
    if not (copy.is_file() or (copy / split).is_dir()):
        missing = copy if not copy.exists() else copy / split
        raise DataUnavailableError("Mini-ImageNet", [(f"local copy {copy}", f"{missing} does not exist")], hint)
    ds = load_image_folder(copy, split, root=root, size=size, mode="RGB")
    expected = MINI_IMAGENET_CLASSES.get(split)
    if expected is not None and len(ds.classes) != expected:
        warnings.warn(f"Mini-ImageNet {copy}/{split}: {len(ds.classes)} class folders, the Ravi-Larochelle "
                      f"split has {expected}; results are not comparable with the paper's", RuntimeWarning,
                      stacklevel=2)
    return dataclasses.replace(ds, name="mini-imagenet")


def _fits(ds: ImageDataset, size: int | None, mode: str | None) -> bool:
    """Whether a cached set has the shape ``size`` and ``mode`` ask for."""
    return ((size is None or tuple(ds.images.shape[2:]) == (size, size))
            and (mode is None or ds.images.shape[1] == (3 if mode == "RGB" else 1)))


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
            where: str, size: int | None = None,
            force: str | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Decode sorted ``(class, file name, handle)`` entries -> (uint8 [N,C,H,W], int64 [N], classes).

    Fills one preallocated array (3 channels unless ``force`` is ``L``; cut to 1 when every image
    turned out grayscale), so a large set needs about its own size in memory.
    """
    if not entries:
        raise ValueError(f"{where}: no {'/'.join(IMAGE_SUFFIXES)} files under <split>/<class>/")
    present = sorted({c for c, _, _ in entries})
    classes = tuple(present if requested is None else requested)
    unknown = set(present) - set(classes)
    if unknown:
        raise ValueError(f"{where}: class folders {sorted(unknown)} are not among {classes}")
    index = {c: i for i, c in enumerate(classes)}

    images: np.ndarray | None = None
    all_gray = True
    for i, (class_name, file_name, handle) in enumerate(entries):
        try:
            with Image.open(io.BytesIO(read(handle))) as im:
                mode = force or ("L" if im.mode in _GRAY_MODES else "RGB")
                all_gray &= mode == "L"
                im = im if im.mode == mode else im.convert(mode)
                arr = np.asarray(im if size is None else resize_center_crop(im, size))
        except (OSError, Image.DecompressionBombError) as err:
            raise ValueError(f"{where}: cannot decode {class_name}/{file_name}: {err}") from err
        if images is None:
            images = np.empty((len(entries), 1 if force == "L" else 3, *arr.shape[:2]), dtype=np.uint8)
        elif arr.shape[:2] != images.shape[2:]:
            raise ValueError(f"{where}: {class_name}/{file_name} is {arr.shape[1]}x{arr.shape[0]}, "
                             f"the first image is {images.shape[3]}x{images.shape[2]}")
        images[i] = arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]

    if all_gray and images.shape[1] == 3:
        images = np.ascontiguousarray(images[:, :1])
    labels = np.array([index[c] for c, _, _ in entries], dtype=np.int64)
    return images, labels, classes
