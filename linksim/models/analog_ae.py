"""Per-feature analog autoencoder: each scalar feature is sent with its own short real code."""

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from ..layers import Dense, PowerNormalization

__all__ = ["AnalogFeatureAE"]


class AnalogFeatureAE(nn.Module):
    r"""MSE autoencoder that maps every scalar feature element to ``n_tx_el`` real channel uses and back.

    Tx: Dense(``hidden``, ReLU) -> Dense(``hidden``, ReLU) -> Dense(``n_tx_el``) ->
    power normalisation over the ``n_tx_el`` symbols. Rx: Dense(``hidden``,
    ReLU) -> Dense(``hidden``, ReLU) -> Dense(1). The same weights serve every
    feature element (the "analog 'semantic' AE" baseline of SINFONY).

    :param n_tx_el: Real channel uses per feature element.
    :param hidden: Hidden width; defaults to ``2 * n_tx_el``.
    :param power_norm: ``"vector"`` or ``"batch"`` (per symbol over all elements of the batch).

    :input r: [...], `torch.float32` -- feature elements
    :input channel_fn: `None` or callable mapping ``x [..., n_tx_el]`` to ``y`` of the same shape
    :output r_hat: [...], `torch.float32` -- reconstructed feature elements
    """

    def __init__(
        self,
        *,
        n_tx_el: int = 16,
        hidden: int | None = None,
        power_norm: Literal["vector", "batch"] = "vector",
    ):
        super().__init__()
        hidden = 2 * n_tx_el if hidden is None else hidden
        self.n_tx_el = n_tx_el
        self.tx = nn.Sequential(
            Dense(1, hidden, relu=True),
            Dense(hidden, hidden, relu=True),
            Dense(hidden, n_tx_el),
            PowerNormalization(power_norm, feature_shape=(n_tx_el,)),
        )
        self.rx = nn.Sequential(
            Dense(n_tx_el, hidden, relu=True),
            Dense(hidden, hidden, relu=True),
            Dense(hidden, 1),
        )

    def encode(self, r: torch.Tensor) -> torch.Tensor:
        """Channel symbols ``x [..., n_tx_el]`` (real, unit average power) of the feature elements ``r [...]``."""
        return self.tx(r.unsqueeze(-1))

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Feature estimates ``r_hat [...]`` from the received symbols ``y [..., n_tx_el]``."""
        return self.rx(y).squeeze(-1)

    def forward(
        self,
        r: torch.Tensor,
        channel_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = self.encode(r)
        return self.decode(x if channel_fn is None else channel_fn(x))
