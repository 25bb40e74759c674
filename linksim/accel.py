"""Optional ``torch.compile`` of hot paths, with the eager path as the fallback.

Compilation never changes what is computed (only float rounding), so it is a run option
(``linksim run --compile on|off|auto``), not part of a scenario: ``auto`` compiles on a GPU, where
fused kernels pay off, and not on a CPU, where compiling costs tens of seconds per code and
needs a C++ compiler.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Literal

import torch

__all__ = ["CompileMode", "resolve_compile", "compiled"]

CompileMode = Literal["auto", "on", "off"]


def resolve_compile(mode: CompileMode, device: str) -> bool:
    """Whether to compile: ``on``/``off`` as given, ``auto`` on CUDA devices only."""
    return mode == "on" or (mode == "auto" and device.startswith("cuda"))


def compiled(fn: Callable, *, dynamic: bool = True) -> Callable:
    """``torch.compile(fn)`` that falls back to ``fn`` itself, with one warning, if compiling fails
    (no C++ compiler, an unsupported operation, ...)."""
    fast = torch.compile(fn, dynamic=dynamic)
    broken = False

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal broken
        if not broken:
            try:
                return fast(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
                broken = True
                warnings.warn(f"torch.compile failed for {getattr(fn, '__qualname__', fn)}; running eagerly "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})",
                              RuntimeWarning, stacklevel=2)
        return fn(*args, **kwargs)

    return call
