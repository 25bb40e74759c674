"""SINFONY: distributed semantic classification with per-agent ResNet transmitters and a shared receiver."""

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from ..data.quadrants import split_quadrants
from ..layers import AgentDense, Dense, PowerNormalization, PreActResNet

__all__ = ["Sinfony"]


class Sinfony(nn.Module):
    r"""SINFONY model (Beck et al.): ``grid * grid`` agents, each observing one image tile, send analog
    real symbols to a central unit that classifies the image.

    Agent ``i`` (own parameters, no sharing): tile ``s_i`` -> pre-activation
    ResNet features ``r_i`` (``N_Feat = 4 * base_width``) -> Tx (``tx_layers``
    Dense-ReLU of width ``n_tx``, Dense linear of width ``n_tx``) -> power
    normalisation -> ``x_i`` with ``n_tx`` real channel uses of unit average
    power. The central unit applies ONE Dense-ReLU Rx of width ``n_rx`` with
    the same weights to every received ``y_i``, averages over the agents
    (the ``grid x grid`` global average pooling) and a linear classifier gives
    the logits (the softmax belongs to the loss).

    ``n_tx=None`` is the "perfect communication" variant: no Tx/Rx dense layers,
    the features are only power normalised (``N_Tx = N_Feat``) and the
    receiver averages ``y`` over the agents before the classifier.

    All agents run as one batched computation (see
    :class:`~linksim.layers.PreActResNet` and :class:`~linksim.layers.AgentDense`).

    :param in_channels: Image channels (1 for MNIST, 3 for CIFAR-10).
    :param image_size: Side length of the full square image (28 or 32).
    :param grid: Tiles per side; ``grid * grid`` agents.
    :param units_per_stage: Residual units per ResNet stage (2 for ResNet14, 3 for ResNet20).
    :param base_width: ResNet stem/stage-1 filters (14 for MNIST, 16 for CIFAR-10).
    :param num_classes: Number of classes.
    :param n_tx: Real channel uses per agent and image; `None` for perfect communication.
    :param n_rx: Rx width ``N_w``; defaults to ``N_Feat``. Must be `None` when ``n_tx`` is `None`.
    :param tx_layers: Number of Dense-ReLU layers before the linear Tx layer.
    :param power_norm: ``"vector"`` (per transmitted vector) or ``"batch"`` (per element over the batch).

    :input images: [batch, in_channels, image_size, image_size], `torch.float32` in [0, 1]
    :input channel_fn: `None` or callable mapping ``x [batch, agents, n_tx]`` to ``y`` of the same shape
    :output logits: [batch, num_classes], `torch.float32`
    """

    def __init__(
        self,
        *,
        in_channels: int,
        image_size: int,
        grid: int = 2,
        units_per_stage: int,
        base_width: int,
        num_classes: int = 10,
        n_tx: int | None = None,
        n_rx: int | None = None,
        tx_layers: int = 1,
        power_norm: Literal["vector", "batch"] = "vector",
    ):
        super().__init__()
        if image_size % grid:
            raise ValueError(f"image_size {image_size} is not divisible by grid {grid}")
        if n_tx is None and n_rx is not None:
            raise ValueError("the perfect-communication variant (n_tx=None) has no Rx layer; leave n_rx=None")
        self.in_channels = in_channels
        self.image_size = image_size
        self.grid = grid
        self.num_agents = grid * grid
        self.feature_extractor = PreActResNet(in_channels, units_per_stage, base_width, self.num_agents)
        self.n_feat = self.feature_extractor.num_features
        self._n_tx = self.n_feat if n_tx is None else n_tx

        tx = []
        if n_tx is not None:
            width = self.n_feat
            for _ in range(tx_layers):
                tx.append(AgentDense(width, n_tx, self.num_agents, relu=True))
                width = n_tx
            tx.append(AgentDense(width, n_tx, self.num_agents))
        tx.append(PowerNormalization(power_norm, feature_shape=(self.num_agents, self._n_tx)))
        self.tx = nn.Sequential(*tx)

        self.n_rx = None if n_tx is None else (self.n_feat if n_rx is None else n_rx)
        self.rx = None if n_tx is None else Dense(n_tx, self.n_rx, relu=True)
        self.classifier = Dense(self._n_tx if self.n_rx is None else self.n_rx, num_classes)

    @property
    def n_tx(self) -> int:
        """Real channel uses per agent and image."""
        return self._n_tx

    @property
    def channel_uses_real(self) -> int:
        """Real channel uses of all agents per image."""
        return self.num_agents * self._n_tx

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Per-agent features ``r [batch, agents, N_Feat]`` of ``images [batch, C, H, W]``."""
        if images.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"expected images [batch, {self.in_channels}, {self.image_size}, {self.image_size}], "
                f"got {list(images.shape)}"
            )
        return self.feature_extractor(split_quadrants(images, self.grid))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Transmit symbols ``x [batch, agents, n_tx]`` (real, unit average power) of ``images [batch, C, H, W]``."""
        return self.tx(self.features(images))

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Class logits ``[batch, num_classes]`` from the received symbols ``y [batch, agents, n_tx]``."""
        if self.rx is not None:
            y = self.rx(y)
        return self.classifier(y.mean(dim=-2))

    def forward(
        self,
        images: torch.Tensor,
        channel_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = self.encode(images)
        return self.decode(x if channel_fn is None else channel_fn(x))
