"""Parameter bookkeeping: trainable-parameter counts and the conv kernels that get weight decay."""

from torch import nn

__all__ = ["conv_kernels", "count_parameters"]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module`` (BatchNorm running statistics are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def conv_kernels(module: nn.Module) -> list[nn.Parameter]:
    """Kernels of all convolutions in ``module`` (no biases, BatchNorm or dense weights), for an L2 penalty."""
    return [m.weight for m in module.modules() if isinstance(m, nn.Conv2d)]
