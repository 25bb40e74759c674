"""CIFAR-10 loader: local image folder/zip or canonical batches, converted cache, md5-pinned canonical tarball."""

from __future__ import annotations

import dataclasses
import os
import pickle
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from .base import DataUnavailableError, ImageDataset, Split, check_split
from .cache import cache_dir, check_digest
from .sources import from_arrays, load_first_available, reason
from .download import fetch_url
from .image_folder import load_image_folder

__all__ = ["BATCH_MD5", "CACHE_FILE", "CLASSES", "TARBALL_MD5", "TARBALL_URL", "load_cifar10"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CACHE_FILE = "cifar10.npz"
TARBALL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TARBALL_NAME = "cifar-10-python.tar.gz"
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
"""md5 of each extracted batch pickle, checked before it is unpickled."""
_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_BATCH_DIR = "cifar-10-batches-py"
_Splits = dict[str, tuple[np.ndarray, np.ndarray]]
_FAILURES = (OSError, ValueError, EOFError, tarfile.TarError, zipfile.BadZipFile)


def load_cifar10(split: Split, root: str | os.PathLike[str] | None = None,
                 path: str | os.PathLike[str] | None = None) -> ImageDataset:
    """Load a CIFAR-10 split: images uint8 ``[N, 3, 32, 32]``, labels int64 ``[N]`` into :data:`CLASSES`.

    The canonical ``train`` split has 50,000 images, ``test`` 10,000.

    Args:
        split: ``"train"`` or ``"test"``.
        root: cache directory override (default :func:`~linksim.data.cache.cache_dir`).
        path: local data instead of the cache and network: ``cifar-10-python.tar.gz``
            (md5-checked), a directory holding it, its extracted ``cifar-10-batches-py``
            directory or that directory's parent (each batch md5-checked); otherwise a
            directory or ``.zip`` laid out as ``<split>/<class>/*.png|jpg`` (see
            :func:`~linksim.data.image_folder.load_image_folder`; ``source`` is then
            ``"image folder <path>"``, and the caller adds e.g. "JPEG q75 copy").

    Without ``path``: ``<cache>/cifar10.npz``, then :data:`TARBALL_URL` checked against
    :data:`TARBALL_MD5`, converted once to ``<cache>/cifar10.npz``. Batch pickles are
    only unpickled after their md5 (or the tarball's) matched.

    Raises:
        DataUnavailableError: every source failed; the message lists each with its reason.
    """
    check_split(split)
    cache = cache_dir(root)
    hint = (
        f"pass path= {TARBALL_NAME} (from {TARBALL_URL}), its extracted {_BATCH_DIR} directory, or a "
        f"directory/.zip laid out as train|test/<class>/*.png; or place a converted {CACHE_FILE} in "
        f"{cache} (LINKSIM_DATA or root= moves the cache)"
    )
    if path is not None:
        try:
            return _load_local(Path(path), split, root)
        except _FAILURES as err:
            raise DataUnavailableError(
                "CIFAR-10", [(f"path {path}", reason(err))], hint
            ) from err

    def fetch(tmp: Path) -> tuple[dict, str]:
        splits = _splits_from_tarball(fetch_url(TARBALL_URL, tmp / TARBALL_NAME))
        return splits, f"CIFAR-10 (canonical python tarball {TARBALL_URL}, md5-verified)"

    return load_first_available(title="CIFAR-10", name="cifar10", split=split, classes=CLASSES,
                                target=cache / CACHE_FILE, fetches=[(f"canonical tarball {TARBALL_URL}", fetch)],
                                hint=hint, failures=_FAILURES)


def _dataset(arrays: tuple[np.ndarray, np.ndarray], source: str) -> ImageDataset:
    return from_arrays(arrays, CLASSES, "cifar10", source)


def _load_local(path: Path, split: str, root: str | os.PathLike[str] | None) -> ImageDataset:
    if path.is_dir() and (path / TARBALL_NAME).is_file():
        path = path / TARBALL_NAME
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return _dataset(_splits_from_tarball(path)[split], f"CIFAR-10 (canonical python tarball {path})")
    for batch_dir in (path, path / _BATCH_DIR):
        if (batch_dir / "data_batch_1").is_file():
            return _dataset(_splits_from_batch_dir(batch_dir)[split], f"CIFAR-10 (canonical batches {batch_dir})")
    return dataclasses.replace(load_image_folder(path, split, CLASSES, root), name="cifar10")


def _splits_from_tarball(tarball: Path) -> _Splits:
    check_digest(tarball, TARBALL_MD5, tarball.name, "md5")
    with tarfile.open(tarball, "r:gz") as tf:
        members = {PurePosixPath(m.name).name: m for m in tf.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            if name not in members:
                raise ValueError(f"{tarball.name} has no {name}")
            return tf.extractfile(members[name]).read()

        return _batch_splits(read)


def _splits_from_batch_dir(directory: Path) -> _Splits:
    def read(name: str) -> bytes:
        blob = (directory / name).read_bytes()
        check_digest(blob, BATCH_MD5[name], str(directory / name), "md5")
        return blob

    return _batch_splits(read)


def _batch_splits(read: Callable[[str], bytes]) -> _Splits:
    """Unpickle the (already verified) batches; ``read(name)`` returns one batch file's bytes.

    Each batch is a dict with ``data`` uint8 ``[n, 3072]`` (channel-major R, G, B planes
    of 32x32 row-major pixels) and ``labels`` (n ints).
    """
    splits: _Splits = {}
    for split, names in _BATCHES.items():
        images, labels = [], []
        for name in names:
            batch = pickle.loads(read(name), encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8)
            lab = np.asarray(batch["labels"], dtype=np.int64)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or lab.shape != data.shape[:1]:
                raise ValueError(f"{name}: data {data.shape} / labels {lab.shape} is not the CIFAR-10 layout")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(lab)
        splits[split] = (np.concatenate(images), np.concatenate(labels))
    return splits
