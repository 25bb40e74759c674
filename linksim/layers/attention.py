"""Attention blocks of the image autoencoders: Cheng 2020 simplified attention, single-head spatial self-attention."""

import torch
import torch.nn.functional as F
from torch import nn

from .group_norm import group_norm

__all__ = ["AttentionBlock", "SelfAttention2d"]


class _BottleneckUnit(nn.Module):
    """Residual unit of Cheng 2020: ``ReLU(x + conv1x1(ReLU(conv3x3(ReLU(conv1x1(x))))))``, N -> N/2 -> N/2 -> N."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, half, 1),
            nn.ReLU(),
            nn.Conv2d(half, half, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(half, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class AttentionBlock(nn.Module):
    r"""Simplified attention module of Cheng et al. 2020 (*Learned image compression with discretized Gaussian
    mixture likelihoods and attention modules*), as used by the seed002 networks.

    ::

        x --+--> [3 residual units] -----------------------> a ----.
            |                                                     (*) --> (+) --> y
            +--> [3 residual units] -> conv1x1 -> m -> sigmoid ---'        ^
            |                                                              |
            '--------------------------------------------------------------'

    ``y = x + a * sigmoid(m)``. Each residual unit is
    ``ReLU(x + conv1x1(ReLU(conv3x3(ReLU(conv1x1(x))))))`` with a bottleneck of
    ``C // 2`` channels. No non-local (dot-product) attention.

    :param channels: Channels ``C`` (at least 2).

    :input x: [B, C, H, W], `torch.float32`
    :output y: [B, C, H, W], `torch.float32`

    .. rubric:: Examples

    >>> y = AttentionBlock(256)(torch.randn(2, 256, 4, 4))   # [2, 256, 4, 4]
    """

    def __init__(self, channels: int):
        super().__init__()
        if channels < 2:
            raise ValueError(f"AttentionBlock needs at least 2 channels, got {channels}")
        self.trunk = nn.Sequential(*(_BottleneckUnit(channels) for _ in range(3)))
        self.mask = nn.Sequential(*(_BottleneckUnit(channels) for _ in range(3)), nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


class SelfAttention2d(nn.Module):
    r"""Single-head self-attention over the ``H * W`` pixels of a feature map (VQGAN/LDM ``AttnBlock``, seed000 §3).

    With ``h = GN(x)`` and 1x1 convolutions ``q, k, v, proj`` (``C -> C``), the
    ``H * W`` pixels are tokens of dimension ``C``:
    ``y = x + proj(softmax(Q K^T / sqrt(C)) V)`` with ``Q = q(h)``, ``K = k(h)``,
    ``V = v(h)`` laid out as ``[B, H*W, C]``. Computed with
    :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient
    kernels where available). Cost and memory grow as ``(H W)^2``: meant for the
    16x16 bottleneck (256 tokens).

    :param channels: Channels ``C``.
    :param num_groups: GroupNorm groups (capped at ``C``).
    :param eps: GroupNorm variance floor.

    :input x: [B, C, H, W], `torch.float32`
    :output y: [B, C, H, W], `torch.float32`

    .. rubric:: Examples

    >>> y = SelfAttention2d(192)(torch.randn(2, 192, 16, 16))   # [2, 192, 16, 16]
    """

    def __init__(self, channels: int, num_groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.norm = group_norm(channels, num_groups, eps)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        h = self.norm(x)

        def tokens(conv: nn.Conv2d) -> torch.Tensor:  # [B, 1, H*W, C]: one head
            return conv(h).flatten(2).transpose(1, 2).unsqueeze(1)

        out = F.scaled_dot_product_attention(tokens(self.q), tokens(self.k), tokens(self.v))
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, height, width)
        return x + self.proj(out)
