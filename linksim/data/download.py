"""HTTP(S) download of one file with a short socket timeout."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

__all__ = ["TIMEOUT_S", "fetch_url"]

TIMEOUT_S = 10.0
"""Seconds a connect or a single read may stall before the download is abandoned."""


def fetch_url(url: str, dest: Path, timeout: float = TIMEOUT_S) -> Path:
    """Stream ``url`` into the file ``dest`` and return ``dest``.

    Raises :class:`OSError` (``urllib.error.URLError``, ``TimeoutError``, ...) when the
    host is unreachable or stalls for ``timeout`` seconds; callers fall through to
    their next source.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)
    return dest
