"""VSCC (Feng, Xu, Hu, Yu, Duan, "Variational source-channel coding for semantic communication"): the
VQGAN/LDM-style ResNet + attention autoencoder shared by VSCC, the VAE and the AE, and the receiver's
reparameterisation modes.

Data flow (the paper: 256 x 256 x 3, ``stage_widths = (32, 64, 128, 192)``, k = 16 latent channels)::

    image [B,3,H,W] in [-1,1]
      -> conv3x3 base -> { ResBlock -> conv3x3/2 } per stage width (H / 2^stages)
      -> ResBlock, Attention, ResBlock, ResBlock (top width) -> GN, Swish -> conv3x3 -> conv1x1
      -> mu [B,k,h,w], log sigma^2 [B,k,h,w]            (the AE: y [B,k,h,w], no variance)
      ~~ real AWGN, noise variance sigma_2^2 per value ~~>
      reparameterisation (no weights: T1 / T2 in training; AE-direct, TV, FV at test)
      -> conv1x1 -> conv3x3 top -> ResBlock, Attention, ResBlock
      -> { ResBlock -> nearest x2 + conv3x3 } per stage width, reversed -> 2 ResBlocks (to base width)
      -> GN, Swish -> conv3x3 -> tanh -> image [B,3,H,W] in (-1,1)

k h w real values cross the channel per image (FV and the AE; TV sends mu and log sigma^2, 2 k h w).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from linksim.estimators import gaussian_reparameterize
from linksim.layers import GroupNormResBlock, SelfAttention2d, group_norm

__all__ = ["LOGVAR_RANGE", "VSCCAutoencoder", "TestMode", "TrainMode", "TVVariance"]

LOGVAR_RANGE = (-30.0, 20.0)
"""Clamp of the encoder's log-variance (seed000 §9-E)."""

TrainMode = Literal["t1", "t2"]
TestMode = Literal["ae", "tv", "fv"]
TVVariance = Literal["log", "variance", "variance+noise"]


def _head(channels: int, out_channels: int, num_groups: int) -> nn.Sequential:
    return nn.Sequential(group_norm(channels, num_groups), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))


class _Upsample(nn.Module):
    """Nearest-neighbour x2 followed by a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class VSCCAutoencoder(nn.Module):
    """The encoder / decoder pair of seed000 §3 with the receiver's reparameterisation (§4, §5).

    :param latent_channels: k, channels of the latent (16 in the paper).
    :param variational: ``True`` (VSCC, VAE): the encoder outputs a mean and a log-variance (2 k
        channels) and :attr:`kb_variance` holds the knowledge-base variance; ``False`` (AE): k channels.
    :param in_channels: image channels.
    :param base_width: channels of the first and last convolutions (32).
    :param stage_widths: output channels of each down-sampling stage (``(32, 64, 128, 192)``); one
        stride-2 convolution per stage, so the latent is ``H / 2^len(stage_widths)`` on a side.
    :param num_groups: GroupNorm groups (32; capped at the channel count of narrow layers).
    :param attention: whether the bottleneck has its attention blocks.
    :param image_size: side of the (square) images, which sizes :attr:`kb_variance` (``[k, h, w]``).

    :input images: [B, in_channels, H, W], torch.float32 in [-1, 1]; H, W multiples of 2^stages.
    :output: see :meth:`encode` / :meth:`decode`.

    .. rubric:: Example

    >>> m = VSCCAutoencoder(4, variational=True, stage_widths=(32, 64, 128), image_size=32)
    >>> mu, logvar = m.encode(torch.rand(2, 3, 32, 32) * 2 - 1)
    >>> mu.shape, m.decode(mu).shape
    (torch.Size([2, 4, 4, 4]), torch.Size([2, 3, 32, 32]))
    """

    def __init__(self, latent_channels: int, variational: bool, in_channels: int = 3, base_width: int = 32,
                 stage_widths: Sequence[int] = (32, 64, 128, 192), num_groups: int = 32, attention: bool = True,
                 image_size: int = 256):
        super().__init__()
        widths = list(stage_widths)
        top = widths[-1]
        self.latent_channels, self.variational, self.stages = latent_channels, variational, len(widths)
        out = 2 * latent_channels if variational else latent_channels

        def attn() -> nn.Module:
            return SelfAttention2d(top, num_groups) if attention else nn.Identity()

        down: list[nn.Module] = [nn.Conv2d(in_channels, base_width, 3, padding=1)]
        prev = base_width
        for w in widths:
            down += [GroupNormResBlock(prev, w, num_groups), nn.Conv2d(w, w, 3, stride=2, padding=1)]
            prev = w
        down += [GroupNormResBlock(top, top, num_groups), attn(), GroupNormResBlock(top, top, num_groups),
                 GroupNormResBlock(top, top, num_groups), _head(top, out, num_groups), nn.Conv2d(out, out, 1)]
        self.encoder = nn.Sequential(*down)

        up: list[nn.Module] = [nn.Conv2d(latent_channels, latent_channels, 1),
                               nn.Conv2d(latent_channels, top, 3, padding=1),
                               GroupNormResBlock(top, top, num_groups), attn(), GroupNormResBlock(top, top, num_groups)]
        prev = top
        for w in reversed(widths):  # the encoder mirrored (seed000 §9-J): 192 -> 192, 128, 64, 32
            up += [GroupNormResBlock(prev, w, num_groups), _Upsample(w)]
            prev = w
        up += [GroupNormResBlock(prev, base_width, num_groups),
               GroupNormResBlock(base_width, base_width, num_groups), _head(base_width, in_channels, num_groups),
               nn.Tanh()]
        self.decoder = nn.Sequential(*up)
        side = image_size // 2 ** len(widths)
        self.register_buffer("kb_variance", torch.full((latent_channels, side, side), float("nan")))

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mu, log sigma_1^2)``, each ``[B, k, h, w]`` (log-variance clamped to :data:`LOGVAR_RANGE`);
        the AE returns ``(y, None)``."""
        z = self.encoder(images)
        if not self.variational:
            return z, None
        mu, logvar = z.chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` in (-1, 1) from a latent ``[B, k, h, w]`` (after reparameterisation)."""
        return self.decoder(latent)

    def set_kb_variance(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Store the knowledge-base variance sigma_KB^2: the mean of the encoder's variance
        ``exp(log sigma_1^2)`` over every training image of ``images`` (an iterable of
        ``[b, C, H, W]`` batches in [-1, 1]), one value per latent element, ``[k, h, w]``
        (seed000 §9-H); kept in the state dict, so it is cached and reloaded with the weights."""
        total, count = None, 0
        with torch.no_grad():
            for batch in images:
                var = self.encode(batch)[1].exp().sum(dim=0)
                total = var if total is None else total + var
                count += len(batch)
        self.kb_variance.copy_(total / count)
        return self.kb_variance

    def check_kb_variance(self) -> None:
        """Raise ``RuntimeError`` unless :attr:`kb_variance` has been set (what ``"fv"`` reception needs)."""
        if torch.isnan(self.kb_variance).any():
            raise RuntimeError("fixed-variance reception needs the knowledge-base variance (set_kb_variance)")

    def receive(self, received: torch.Tensor, mode: TestMode, no: torch.Tensor,
                tv_variance: TVVariance = "log", generator: torch.Generator | None = None) -> torch.Tensor:
        """The decoder's latent from the channel output (seed000 §5, Algorithm 2).

        :input received: ``[B, k, h, w]`` (``"ae"``, ``"fv"``: the noisy ``y`` or ``mu``) or
            ``[B, 2k, h, w]`` (``"tv"``: the noisy ``mu`` and noisy transmitted variance), float32.
        :input no: ``[B]`` or scalar, float32: the channel's noise variance per real value sigma_2^2 (linear).
        :param mode: ``"ae"``: the received values as they are; ``"fv"``: ``z + sigma_KB * eps``
            (:meth:`check_kb_variance` first: not checked here, on every decode);
            ``"tv"``: ``mu_z + sigma * eps`` with the variance read from the received second half as
            ``tv_variance`` says: ``"log"`` (it carried log sigma^2: ``exp`` of it, clamped to
            :data:`LOGVAR_RANGE`), ``"variance"`` (it carried sigma^2: clamped at 1e-6) or
            ``"variance+noise"`` (Algorithm 2 literally: that plus sigma_2^2).
        :output: ``[B, k, h, w]``, float32.
        """
        if mode == "ae":
            return received
        if mode == "fv":
            return gaussian_reparameterize(received, self.kb_variance.log().expand_as(received), generator)
        mu, second = received.chunk(2, dim=1)
        if tv_variance == "log":
            logvar = second.clamp(*LOGVAR_RANGE)
        else:
            var = second.clamp_min(1e-6)
            if tv_variance == "variance+noise":
                var = var + torch.as_tensor(no, device=var.device).reshape(-1, 1, 1, 1)
            logvar = var.log()
        return gaussian_reparameterize(mu, logvar, generator)
