"""The weight cache: trained weights stored under a hash of everything that determines them."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from linksim.atomic import atomic_write, atomic_write_text

__all__ = ["model_cache_dir", "cache_key", "load_or_train", "write_log"]

EpochLog = dict[str, float]


def model_cache_dir() -> Path:
    """``$LINKSIM_MODELS``, else ``$XDG_CACHE_HOME/linksim/models``, else ``~/.cache/linksim/models``."""
    if env := os.environ.get("LINKSIM_MODELS"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "linksim" / "models"


def cache_key(description: dict) -> str:
    """Stable hash of a JSON-able description of everything that determines trained weights."""
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:20]


def write_log(history: list[EpochLog], path: Path) -> None:
    """Training curve as CSV, one row per epoch, one column per logged quantity."""
    if not history:
        return
    fields = list(dict.fromkeys(k for log in history for k in log))
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, out.getvalue())


def load_or_train(
    model: nn.Module, description: dict, fit: Callable[[Path], list[EpochLog]], cache: Path | None = None
) -> tuple[list[EpochLog], str, bool]:
    """Load ``model``'s weights from the cache, or call ``fit(checkpoint_path)`` and store them.

    The entry's metadata holds the sha256 of its weights file (and the torch thread count it was
    trained with: training is bit-reproducible only at the same count); an entry that cannot be
    read, or whose weights no longer match their digest (a flipped bit), is reported and trained
    again. Entries written before digests existed load without the check. Two processes that need the
    same entry (two runs sharing a cache) do not both train it: the second waits on ``<key>.lock``
    until the first has stored the weights, then loads them.

    :param description: everything that determines the weights (hashed into the cache key).
    :output: (training history, cache key, whether the weights were reused).
    """
    cache = cache or model_cache_dir()
    key = cache_key(description)
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache / f"{key}.lock"):  # one trainer per key; a second process waits, then loads
        return _load_or_train_locked(model, description, fit, cache, key)


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive advisory lock on ``path`` (POSIX ``flock``; where there is none, no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_or_train_locked(model: nn.Module, description: dict, fit: Callable[[Path], list[EpochLog]], cache: Path,
                          key: str) -> tuple[list[EpochLog], str, bool]:
    weights, meta = cache / f"{key}.safetensors", cache / f"{key}.json"
    if weights.is_file() and meta.is_file():
        try:
            info = json.loads(meta.read_text())
            digest = hashlib.sha256(weights.read_bytes()).hexdigest()
            if info.get("weights_sha256", digest) != digest:
                raise ValueError(f"sha256 {digest[:12]}... differs from the recorded {info['weights_sha256'][:12]}...")
            model.load_state_dict(load_file(str(weights), device=str(next(model.parameters()).device)))
            return info["history"], key, True
        except Exception as err:  # noqa: BLE001 - any unreadable entry is rebuilt, never used
            warnings.warn(f"{weights}: unreadable cached weights ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}); training again", RuntimeWarning,
                          stacklevel=3)
    checkpoint = cache / f"{key}.partial.pt"
    history = fit(checkpoint)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    blob = save(state)
    atomic_write(weights, lambda f: f.write(blob))
    atomic_write_text(meta, json.dumps({"description": description, "history": history,
                                        "weights_sha256": hashlib.sha256(blob).hexdigest(),
                                        "torch_threads": torch.get_num_threads()}, indent=1, default=str))
    checkpoint.unlink(missing_ok=True)
    return history, key, False
