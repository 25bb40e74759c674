"""Keras-style weight initialisation (He-uniform / Glorot-uniform) applied per agent."""

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["init_weights_"]


def init_weights_(weights: Iterable[torch.Tensor], relu: bool) -> None:
    r"""Initialises every tensor of ``weights`` independently, in place.

    Layers followed by a ReLU get He-uniform (``U(±sqrt(6 / fan_in))``), all
    others Glorot-uniform (``U(±sqrt(6 / (fan_in + fan_out)))``), as in the
    SINFONY paper (Keras defaults). Passing the per-agent slices of a batched
    weight makes the fans those of one agent's layer, so a batched layer is
    initialised exactly like ``num_agents`` independent layers.

    :param weights: Weight tensors laid out as ``[out, in, *kernel]``
        (one per agent, or a single shared one).
    :param relu: `True` for He-uniform, `False` for Glorot-uniform.
    """
    for weight in weights:
        if relu:
            nn.init.kaiming_uniform_(weight, nonlinearity="relu")
        else:
            nn.init.xavier_uniform_(weight)
