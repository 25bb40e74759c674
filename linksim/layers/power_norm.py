"""Transmit power normalisation to unit average power per real channel use."""

from typing import Literal

import torch
from torch import nn

__all__ = ["PowerNormalization"]


class PowerNormalization(nn.Module):
    r"""Scales real transmit symbols to unit average power per real channel use.

    ``mode="vector"`` normalises every vector along its last dimension,
    ``x = sqrt(N) * x~ / max(||x~||_2, eps)``, so each vector of ``N`` real
    channel uses carries energy ``N`` (the formula of the SINFONY paper). The
    output does not depend on the rest of the batch.

    ``mode="batch"`` gives every output element (every entry of
    ``feature_shape``) unit mean power over the batch,
    ``x = x~ / sqrt(mean_batch(x~^2) + eps)``, where the batch is all leading
    dimensions in front of ``feature_shape``. In training mode the batch
    statistic is used and folded into ``running_power`` with
    ``running = (1 - momentum) * running + momentum * batch`` (BatchNorm
    convention); in eval mode ``running_power`` is used.

    :param mode: ``"vector"`` or ``"batch"``.
    :param feature_shape: Trailing shape that carries separate statistics in
        batch mode, e.g. ``(num_agents, N)``; required for ``mode="batch"`` and
        ignored otherwise.
    :param momentum: Update rate of ``running_power`` (batch mode).
    :param eps: Numerical floor of the norm (vector mode) or of the power
        (batch mode).

    :input x: [..., N], `torch.float32` -- in batch mode ``[..., *feature_shape]``
    :output x: [..., N], `torch.float32` -- same shape, unit average power
    """

    def __init__(
        self,
        mode: Literal["vector", "batch"] = "vector",
        *,
        feature_shape: tuple[int, ...] | None = None,
        momentum: float = 0.01,
        eps: float = 1e-12,
    ):
        super().__init__()
        if mode not in ("vector", "batch"):
            raise ValueError(f"mode must be 'vector' or 'batch', got {mode!r}")
        self.mode = mode
        self.momentum = momentum
        self.eps = eps
        if mode == "batch":
            if feature_shape is None:
                raise ValueError("mode='batch' requires feature_shape")
            self.register_buffer("running_power", torch.ones(feature_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "vector":
            norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(self.eps)
            return x * (x.shape[-1] ** 0.5) / norm
        if self.training:
            feature_dims = self.running_power.dim()
            power = x.square().flatten(0, x.dim() - feature_dims - 1).mean(dim=0)
            self.running_power.lerp_(power.detach(), self.momentum)
        else:
            power = self.running_power
        return x * torch.rsqrt(power + self.eps)

    def extra_repr(self) -> str:
        if self.mode == "vector":
            return f"mode={self.mode!r}, eps={self.eps}"
        shape = tuple(self.running_power.shape)
        return f"mode={self.mode!r}, feature_shape={shape}, momentum={self.momentum}, eps={self.eps}"
