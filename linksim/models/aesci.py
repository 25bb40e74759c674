"""AESC-I (Dong et al., "Innovative semantic communication system", seed004): the convolutional
autoencoders of its Tables I (MNIST) and II (CIFAR-10), a learned source codec whose decoder is sent
over the channel with the code.

MNIST (Table I, with the spec's corrections: Linear 64 -> Z, the decoder's Linear Z -> 64 and
ConvT 16 -> 16)::

    1x28x28 -conv3/2-> 16x13x13 -conv3/2-> 16x6x6 -conv3/2-> 16x2x2 -flatten, Linear-> Z   (ReLU)
    Z -Linear-> 64 -reshape-> 16x2x2 -convT3/2 op1-> 16x6x6 -convT3/2-> 16x13x13 -convT3/2 op1-> 1x28x28 (sigmoid)

CIFAR-10 (Table II; padding 0 on the k4/s2 layers, 1 on the k3 ones, output padding 1 on D1)::

    3x32x32 -conv4/2-> 32x15x15 -conv3 x3-> 256x15x15 -conv4/2-> 128x6x6 -conv3 x3-> Zx6x6      (ReLU)
    Zx6x6 -convT4/2 op1-> 64x15x15 -conv3 x2-> 128x15x15 -convT4/2-> 128x32x32 -conv3 x2-> 32x32x32
          -conv3-> 3x32x32 (sigmoid)

The code is the encoder's ReLU output (non-negative); encoder and decoder are separate parameter
sets (no tied weights): the decoder is what crosses the channel.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["AESCI", "AesciArchitecture"]

AesciArchitecture = Literal["mnist", "cifar10"]


def _mnist(latent: int) -> tuple[nn.Module, nn.Module]:
    encoder = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(64, latent), nn.ReLU(),
    )
    decoder = nn.Sequential(
        nn.Linear(latent, 64), nn.ReLU(), nn.Unflatten(1, (16, 2, 2)),
        nn.ConvTranspose2d(16, 16, 3, stride=2, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, stride=2, output_padding=1), nn.Sigmoid(),
    )
    return encoder, decoder


def _conv3(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]


def _cifar(latent: int) -> tuple[nn.Module, nn.Module]:
    encoder = nn.Sequential(
        nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),
        *_conv3(32, 64), *_conv3(64, 128), *_conv3(128, 256),
        nn.Conv2d(256, 128, 4, stride=2), nn.ReLU(),
        *_conv3(128, 64), *_conv3(64, 32), *_conv3(32, latent),
    )
    decoder = nn.Sequential(
        nn.ConvTranspose2d(latent, 64, 4, stride=2, output_padding=1), nn.ReLU(),
        *_conv3(64, 128), *_conv3(128, 128),
        nn.ConvTranspose2d(128, 128, 4, stride=2), nn.ReLU(),
        *_conv3(128, 64), *_conv3(64, 32),
        nn.Conv2d(32, 3, 3, padding=1), nn.Sigmoid(),
    )
    return encoder, decoder


class AESCI(nn.Module):
    """The AESC-I autoencoder of one dataset (see the module docstring).

    :param architecture: ``mnist`` (Table I) or ``cifar10`` (Table II).
    :param latent: Z: code values (MNIST) or code channels of the 6x6 map (CIFAR-10).

    :input images: [batch, C, H, W], `torch.float32` in [0, 1] (1x28x28 or 3x32x32).
    :output reconstruction: same shape, `torch.float32` in (0, 1).

    ``encode`` -> the code ``[batch, Z]`` (MNIST) or ``[batch, Z, 6, 6]`` (CIFAR-10), float32 >= 0;
    ``decoder`` (a module of its own) maps a code back to images.

    .. rubric:: Example

    >>> ae = AESCI("mnist", 40)
    >>> ae.encode(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 40])
    """

    def __init__(self, architecture: AesciArchitecture, latent: int):
        super().__init__()
        build = {"mnist": _mnist, "cifar10": _cifar}[architecture]
        self.architecture, self.latent = architecture, int(latent)
        self.encoder, self.decoder = build(self.latent)
        self.code_shape = (self.latent,) if architecture == "mnist" else (self.latent, 6, 6)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))
