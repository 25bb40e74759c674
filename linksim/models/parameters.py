"""Parameter bookkeeping: trainable-parameter and multiply-accumulate counts, and the conv kernels that get weight decay."""

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["conv_kernels", "count_macs", "count_parameters"]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module`` (BatchNorm running statistics are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def conv_kernels(module: nn.Module) -> list[nn.Parameter]:
    """Kernels of all convolutions in ``module`` (no biases, BatchNorm or dense weights), for an L2 penalty."""
    return [m.weight for m in module.modules() if isinstance(m, nn.Conv2d)]


def count_macs(module: nn.Module, run: Callable[[nn.Module], object]) -> int:
    """Multiply-accumulates per example of the convolutions and dense layers ``run(module)`` calls, as a
    thop-style profiler counts them: ``output elements x (in_channels / groups) x kernel area`` per
    convolution, ``output elements x in_features`` per dense layer; biases, normalisation and activations
    excluded. ``run`` must feed one example (batch 1).

    .. rubric:: Example

    >>> count_macs(nn.Linear(4, 3), lambda m: m(torch.zeros(1, 4)))
    12
    """
    total = 0

    def hook(layer: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += output.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        else:
            total += output.numel() * layer.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        run(module)
    finally:
        for h in handles:
            h.remove()
    return total
