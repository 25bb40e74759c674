"""Optional accelerations of hot paths, each with the eager path as the fallback.

- ``torch.compile`` (:func:`compiled`): ``linksim run --compile on|off|auto``; ``auto`` compiles on a
  GPU, where fused kernels pay off, and not on a CPU, where it needs a C++ compiler and, measured
  (``bench/compile_cpu.py``), gains little on the default paths: SINFONY training 1.02-1.13x after
  47-60 s of compiling (3 s with torch's on-disk cache), the SINFONY receiver slower compiled, the
  DeepJSCC decoder 1.3x on about 10 s of a profile, and the torch LDPC core 1.8-1.9x, which the
  compiled numba core replaces there.
- CUDA graphs (:class:`CapturedStep`): a whole training step (forward, backward, optimizer) recorded
  once and replayed, one launch instead of hundreds per batch; ``linksim run --cuda-graphs auto|off``,
  ``auto`` meaning on CUDA devices.

Neither changes what is computed (only float rounding), so both are run options, not part of a
scenario.

- bf16 autocast of training forward passes (:func:`autocast`): changes the trained weights beyond
  rounding, so it is part of the recipe and of the weight-cache key, not a run option (a scheme's
  ``train.precision``, or the scenario's ``train_precision``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Literal

import torch

__all__ = ["CompileMode", "GraphMode", "Precision", "resolve_compile", "resolve_cuda_graphs", "compiled",
           "CapturedStep", "autocast"]

CompileMode = Literal["auto", "on", "off"]
GraphMode = Literal["auto", "off"]
#: the dtype of training forward passes
Precision = Literal["float32", "bfloat16"]


def resolve_compile(mode: CompileMode, device: str) -> bool:
    """Whether to compile: ``on``/``off`` as given, ``auto`` on CUDA devices only."""
    return mode == "on" or (mode == "auto" and device.startswith("cuda"))


def autocast(precision: Precision, device: torch.device):
    """The context of a training forward pass on ``device``: bf16 autocast for ``bfloat16`` (weights
    stay float32; matmuls and convolutions run in bf16, losses and reductions in float32), nothing
    for ``float32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def resolve_cuda_graphs(mode: GraphMode, device: str) -> bool:
    """Whether to capture training steps in CUDA graphs: ``auto`` on CUDA devices, never on a CPU."""
    return mode == "auto" and device.startswith("cuda")


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


class CapturedStep:
    """One training step ``fn(idx)`` run eagerly, or captured once in a CUDA graph and replayed.

    ``fn`` must read its batch through the index tensor ``idx`` ([B] int64, on the device) and leave
    its results only in tensors that outlive the call (weights, optimizer state, running sums), with
    no host synchronisation inside: that is what lets a graph replay it. With ``enabled``, the
    first ``warmup`` calls run eagerly on a side stream (the optimizer allocates its state, kernels
    are chosen), the next call is captured with a static copy of its ``idx`` and every later call
    of the same batch size copies its indices in and replays the graph. Calls of another size (a
    last, partial batch) run eagerly. Python scalars used inside ``fn`` (the learning rate) are
    frozen into the graph: make a new ``CapturedStep`` when they change.

    :param generators: the ``torch.Generator`` objects ``fn`` draws from besides the default one;
        they are registered with the graph, so that every replay advances them as an eager call would.
    :param enabled: capture at all (only on CUDA devices); ``False`` always runs ``fn`` eagerly.

    If capturing fails, it warns once and runs eagerly from then on.
    """

    def __init__(self, fn: Callable[[torch.Tensor], None], generators: tuple[torch.Generator, ...] = (),
                 *, enabled: bool = True, warmup: int = 3):
        self.fn, self.generators, self.enabled, self.warmup = fn, generators, enabled, warmup
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_idx: torch.Tensor | None = None
        self._eager_calls = 0

    @property
    def captured(self) -> bool:
        """Whether a graph has been captured (and later full batches replay it)."""
        return self._graph is not None

    def __call__(self, idx: torch.Tensor) -> None:
        if not self.enabled:
            self.fn(idx)
        elif self._graph is not None:
            if len(idx) == len(self._static_idx):
                self._static_idx.copy_(idx)
                self._graph.replay()
            else:
                self.fn(idx)
        elif self._eager_calls < self.warmup:
            self._eager_calls += 1
            side = torch.cuda.Stream(device=idx.device)
            side.wait_stream(torch.cuda.current_stream(idx.device))
            with torch.cuda.stream(side):
                self.fn(idx)
            torch.cuda.current_stream(idx.device).wait_stream(side)
        else:
            self._capture(idx)

    def _capture(self, idx: torch.Tensor) -> None:
        static_idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            for generator in self.generators:
                graph.register_generator_state(generator)
            with torch.cuda.graph(graph):
                self.fn(static_idx)
        except Exception as err:  # noqa: BLE001 - whatever broke the capture, the eager step still works
            self.enabled = False
            warnings.warn(f"CUDA graph capture of {getattr(self.fn, '__qualname__', self.fn)} failed; running "
                          f"eagerly ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})",
                          RuntimeWarning, stacklevel=3)
            self.fn(idx)
            return
        self._graph, self._static_idx = graph, static_idx
        graph.replay()  # capturing recorded the step without running it
