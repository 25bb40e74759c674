"""Split DeepJSCC (Tung, Esfahanizadeh, Du, Viswanathan 2024, seed002): a binary source codec and a learned
channel codec that meet at a multi-level reliability interface.

Data flow (CIFAR-10, 32 x 32 x 3; ``M`` interface bits, ``K`` complex channel uses, ``C`` conv channels)::

    stage 1 (application side, trained over the multi-level BSC medium)
    image [B,3,32,32] in [0,1]
      -> ResBlockWithStride(3->C, /2) . ResBlock . ResBlockWithStride(/2) . Attention . ResBlock
      -> ResBlockWithStride(/2) . ResBlock . ResBlockWithStride(/2) . Attention . conv3x3(C->M/4) . sigmoid
      -> f(x) in [0,1]^M  (Bernoulli means; 2 x 2 x M/4 flattened channel-major: level i = M/(4N) channels)
      ~~ multi-level BSC (training) or the network (deployment) ~~>  v in {0,1}^M, fed as 2v - 1
      -> conv3x3(M/4->C) . Attention . ResBlock . ResBlockUpsample(x2) . ResBlock . ResBlockUpsample(x2)
      -> Attention . ResBlock . ResBlockUpsample(x2) . ResBlock . ResBlockUpsample(C->3, x2) . sigmoid
      -> image [B,3,32,32] in [0,1]

    stage 2 (network side, the source codec frozen, u = round(f(x)))
    2u - 1 as [B, M/4, 2, 2] -> conv3x3(->C) = s -> ResBlock . Attention . ResBlock = d
      -> concat(s, d) -> conv3x3(2C -> 2K/4) -> flatten -> per-codeword power norm -> 2K reals = K complex
      ~~ channel ~~> 2K reals as [B, 2K/4, 2, 2] -> same trunk with its concat skip -> conv3x3(2C -> M/4)
      -> logits of q(y) in [0,1]^M

Figs. 4-5 of the paper (the architectures) are images that are not in its text: these stacks are the
spec's reconstruction (seed002 §3, from the first author's DeepJSCC-Q networks built of CompressAI blocks),
the concatenation of Fig. 5's caption as one skip in the channel mapper and in the demapper.
"""

from __future__ import annotations

import torch
from torch import nn

from linksim.layers import (
    AttentionBlock,
    PowerNormalization,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
)

__all__ = ["DOWNSAMPLING", "ChannelCodec", "SourceCodec"]

DOWNSAMPLING = 16
"""The source mapper halves the image side four times (32 x 32 -> 2 x 2)."""


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def _grid(image_size: tuple[int, int], bits: int, name: str) -> tuple[int, int, int]:
    """``(channels, h, w)`` of the ``bits``-value map at 1/16 of the image side."""
    h, w = image_size[0] // DOWNSAMPLING, image_size[1] // DOWNSAMPLING
    if image_size[0] % DOWNSAMPLING or image_size[1] % DOWNSAMPLING or bits % (h * w):
        raise ValueError(f"{name}: {bits} values do not fill whole channels of a {h} x {w} map "
                         f"(images {image_size[0]} x {image_size[1]}, sides multiples of {DOWNSAMPLING})")
    return bits // (h * w), h, w


class SourceCodec(nn.Module):
    """The stage-1 source mapper ``f`` and source demapper ``g`` (seed002 §3, reconstructed).

    :param bits: ``M``, interface bits per image (10,000 in the paper).
    :param in_channels: image channels.
    :param image_size: ``(H, W)``, multiples of 16 with ``M`` a multiple of ``H W / 256``.
    :param width: ``C``, conv channels (the spec's default 256).

    :input images: [B, in_channels, H, W], `torch.float32` in [0, 1] (for :meth:`encode`).
    :output probs: [B, M], `torch.float32` in (0, 1): Bernoulli means ``f(x)``, bit ``j`` of the
        channel-major flatten of the ``M / (H W / 256)`` x H/16 x W/16 map.
    :input bits: [..., M], `torch.float32` in {0, 1} (for :meth:`decode`; soft values in [0, 1] work too).
    :output images: [..., in_channels, H, W], `torch.float32` in (0, 1).

    .. rubric:: Example

    >>> codec = SourceCodec(bits=400, width=16)
    >>> codec.encode(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 400])
    >>> codec.decode(torch.ones(5, 2, 400)).shape
    torch.Size([5, 2, 3, 32, 32])
    """

    def __init__(self, bits: int = 10_000, in_channels: int = 3, image_size: tuple[int, int] = (32, 32),
                 width: int = 256):
        super().__init__()
        self.bits = bits
        self.grid = _grid(image_size, bits, "bits")
        c, latent = width, self.grid[0]
        self.mapper = nn.Sequential(
            ResidualBlockWithStride(in_channels, c, 2), ResidualBlock(c, c), ResidualBlockWithStride(c, c, 2),
            AttentionBlock(c), ResidualBlock(c, c), ResidualBlockWithStride(c, c, 2), ResidualBlock(c, c),
            ResidualBlockWithStride(c, c, 2), AttentionBlock(c), _conv3x3(c, latent), nn.Sigmoid())
        self.demapper = nn.Sequential(
            _conv3x3(latent, c), AttentionBlock(c), ResidualBlock(c, c), ResidualBlockUpsample(c, c, 2),
            ResidualBlock(c, c), ResidualBlockUpsample(c, c, 2), AttentionBlock(c), ResidualBlock(c, c),
            ResidualBlockUpsample(c, c, 2), ResidualBlock(c, c), ResidualBlockUpsample(c, in_channels, 2),
            nn.Sigmoid())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Bernoulli means ``f(x)``, [B, M]."""
        return self.mapper(images).flatten(1)

    @staticmethod
    def decide(probs: torch.Tensor) -> torch.Tensor:
        """Round Bernoulli means ``[..., M]`` to bits, threshold 0.5 (seed002 eq. 5 writes a floor but the
        text says rounding); same shape and dtype, values in {0, 1}."""
        return (probs > 0.5).to(probs.dtype)

    def quantize(self, images: torch.Tensor) -> torch.Tensor:
        """The deterministic code ``u = round(f(x))`` of stage 2 and deployment, [B, M] float32 in {0, 1}."""
        return self.decide(self.encode(images))

    def decode(self, bits: torch.Tensor) -> torch.Tensor:
        """Images from received bits ``[..., M]`` (fed to the network as ``2 v - 1``)."""
        lead = bits.shape[:-1]
        out = self.demapper((2.0 * bits - 1.0).reshape(-1, *self.grid))
        return out.reshape(*lead, *out.shape[1:])


class _Trunk(nn.Module):
    """conv3x3 -> s; ResBlock . Attention . ResBlock -> d; conv3x3(concat(s, d)) (Fig. 5's concatenation)."""

    def __init__(self, cin: int, width: int, cout: int):
        super().__init__()
        self.head = _conv3x3(cin, width)
        self.body = nn.Sequential(ResidualBlock(width, width), AttentionBlock(width), ResidualBlock(width, width))
        self.tail = _conv3x3(2 * width, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.head(x)
        return self.tail(torch.cat((s, self.body(s)), dim=1))


class ChannelCodec(nn.Module):
    """The stage-2 channel mapper ``h`` (M bits -> K complex symbols) and channel demapper ``q``
    (K noisy symbols -> M bit probabilities) of seed002 Fig. 5 (reconstructed).

    :param bits: ``M``, interface bits per image.
    :param channel_uses: ``K``, complex channel uses per image (``2K`` reals, a multiple of the map's
        ``h w``).
    :param grid: ``(M / (h w), h, w)``, the bit map of :class:`SourceCodec` (``SourceCodec.grid``).
    :param width: ``C``, conv channels.

    :input bits: [B, M], `torch.float32` in {0, 1} (for :meth:`map`).
    :output reals: [B, 2K], `torch.float32`: each codeword normalised to ``||x||^2 = 2K`` (unit power per
        real value), i.e. ``sum_i |z_i|^2 = K`` once paired into unit-energy complex symbols by
        :func:`~linksim.link.packing.real_to_complex` (seed002 eq. 13 with P = 1).
    :input received: [B, 2K], `torch.float32` (for :meth:`demap`): the received reals.
    :output logits: [B, M], `torch.float32`: logits of ``q(y)``, the probability that each bit is 1.

    .. rubric:: Example

    >>> codec = ChannelCodec(bits=400, channel_uses=8, grid=(100, 2, 2), width=16)
    >>> z = codec.map(torch.randint(0, 2, (3, 400)).float())
    >>> z.square().sum(-1)  # 2K = 16 per codeword
    tensor([16.0000, 16.0000, 16.0000], grad_fn=<SumBackward1>)
    """

    def __init__(self, bits: int, channel_uses: int, grid: tuple[int, int, int], width: int = 256):
        super().__init__()
        latent, h, w = grid
        if latent * h * w != bits:
            raise ValueError(f"grid {grid} does not hold {bits} bits")
        self.bits, self.channel_uses = bits, channel_uses
        self.grid = grid
        self.symbol_grid = (_grid((h * DOWNSAMPLING, w * DOWNSAMPLING), 2 * channel_uses, "2 x channel uses")[0], h, w)
        self.mapper = _Trunk(latent, width, self.symbol_grid[0])
        self.power = PowerNormalization("vector")
        self.demapper = _Trunk(self.symbol_grid[0], width, latent)

    def map(self, bits: torch.Tensor) -> torch.Tensor:
        """Channel input reals ``[B, 2K]``, unit power per value per codeword."""
        return self.power(self.mapper((2.0 * bits - 1.0).reshape(-1, *self.grid)).flatten(1))

    def demap(self, received: torch.Tensor) -> torch.Tensor:
        """Bit logits ``[B, M]`` from received reals ``[B, 2K]``."""
        return self.demapper(received.reshape(-1, *self.symbol_grid)).flatten(1)
