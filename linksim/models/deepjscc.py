"""DeepJSCC (Bourtsoulatze, Kurka, Gunduz 2019): a conv autoencoder from pixels to complex channel symbols.

Data flow (CIFAR-10, 32 x 32 x 3; ``c`` latent channels set by the bandwidth ratio)::

    image [B,3,32,32] in [0,1]
      -> conv5x5/2 16 PReLU -> conv5x5/2 32 PReLU -> conv5x5 32 PReLU -> conv5x5 32 PReLU -> conv5x5 c PReLU
      -> [B, c, 8, 8] = 64 c reals -> per-image power normalisation (unit power per real value)
      -> 32 c complex channel uses (packed in pairs)  ~~ channel ~~>
      -> tconv5x5 32 PReLU -> tconv5x5 32 PReLU -> tconv5x5 32 PReLU -> tconv5x5/2 16 PReLU -> tconv5x5/2 3 sigmoid
      -> image [B,3,32,32] in [0,1]

Bandwidth ratio rho = k / n with k complex channel uses and n = 3072 source values: rho = 1/12
gives k = 256 (c = 8), rho = 1/6 gives k = 512 (c = 16).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from linksim.layers import PowerNormalization

__all__ = ["DeepJSCC"]


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=stride, padding=2), nn.PReLU(cout))


def _tconv(cin: int, cout: int, stride: int, last: bool = False) -> nn.Sequential:
    layer = nn.ConvTranspose2d(cin, cout, 5, stride=stride, padding=2, output_padding=stride - 1)
    return nn.Sequential(layer, nn.Sigmoid() if last else nn.PReLU(cout))


class DeepJSCC(nn.Module):
    """The DeepJSCC encoder / decoder pair (paper Fig. 2), widths scalable.

    :param latent_channels: ``c``, channels of the 4x-downsampled latent (64 c real values per
        32 x 32 image).
    :param in_channels: image channels.
    :param width: channels of the hidden conv layers (the paper: 16 after the first layer, 32 after).

    :input images: [B, in_channels, H, W], torch.float32 in [0, 1]; H and W multiples of 4.
    :input channel_fn: ``None`` or a callable mapping the transmitted reals ``[B, c, H/4, W/4]``
        (unit average power per value) to their received version of the same shape.
    :output: [B, in_channels, H, W], torch.float32 in (0, 1).

    .. rubric:: Example

    >>> model = DeepJSCC(latent_channels=8)
    >>> model(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, latent_channels: int, in_channels: int = 3, width: int = 32):
        super().__init__()
        half = width // 2
        self.latent_channels = latent_channels
        self.encoder = nn.Sequential(
            _conv(in_channels, half, 2), _conv(half, width, 2), _conv(width, width, 1), _conv(width, width, 1),
            _conv(width, latent_channels, 1))
        self.power = PowerNormalization("vector")
        self.decoder = nn.Sequential(
            _tconv(latent_channels, width, 1), _tconv(width, width, 1), _tconv(width, width, 1),
            _tconv(width, half, 2), _tconv(half, in_channels, 2, last=True))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Channel input reals ``[B, c, H/4, W/4]``, each image scaled to unit average power per value."""
        z = self.encoder(images)
        return self.power(z.flatten(1)).reshape(z.shape)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` in (0, 1) from received reals ``[B, c, H/4, W/4]``."""
        return self.decoder(y)

    def forward(self, images: torch.Tensor,
                channel_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        z = self.encode(images)
        return self.decode(z if channel_fn is None else channel_fn(z))
