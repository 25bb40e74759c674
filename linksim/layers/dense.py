"""Dense layer with an optional ReLU and Keras-style initialisation."""

import torch
from torch import nn

from .initializers import init_weights_

__all__ = ["Dense"]


class Dense(nn.Linear):
    r"""Fully connected layer ``y = act(x W^T + b)`` with weights shared over all leading dimensions.

    The weight is He-uniform initialised if ``relu`` else Glorot-uniform; the
    bias starts at zero.

    :param in_features: Input width.
    :param out_features: Output width.
    :param relu: Apply a ReLU to the output.

    :input x: [..., in_features], `torch.float32`
    :output y: [..., out_features], `torch.float32`
    """

    def __init__(self, in_features: int, out_features: int, *, relu: bool = False):
        super().__init__(in_features, out_features)
        self.relu = relu
        init_weights_([self.weight], relu=relu)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return torch.relu(y) if self.relu else y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, relu={self.relu}"
