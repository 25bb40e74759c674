"""Residual blocks of the image autoencoders: Cheng 2020 (GDN), VQGAN-style GroupNorm/Swish, post-activation PReLU."""

import torch
import torch.nn.functional as F
from torch import nn

from .gdn import GDN, IGDN
from .group_norm import group_norm
from .subpel import subpel_conv3x3

__all__ = [
    "ResidualBlock",
    "ResidualBlockWithStride",
    "ResidualBlockUpsample",
    "GroupNormResBlock",
    "PostActResidualUnit",
]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


class ResidualBlock(nn.Module):
    r"""Residual block of Cheng et al. 2020 (*Learned image compression with discretized Gaussian mixture
    likelihoods and attention modules*), as used by the DeepJSCC-Q / seed002 networks.

    ``y = LReLU(conv2(LReLU(conv1(x)))) + skip(x)`` with 3x3 convolutions
    (stride 1, padding 1). ``skip`` is the identity, or a 1x1 convolution when
    the channel count changes.

    :param in_channels: Input channels.
    :param out_channels: Output channels.
    :param negative_slope: Slope of the LeakyReLU for negative inputs.

    :input x: [B, in_channels, H, W], `torch.float32`
    :output y: [B, out_channels, H, W], `torch.float32`

    .. rubric:: Examples

    >>> y = ResidualBlock(128, 128)(torch.randn(2, 128, 8, 8))   # [2, 128, 8, 8]
    """

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float = 0.01):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.act = nn.LeakyReLU(negative_slope)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv2(self.act(self.conv1(x))))
        return h + self.skip(x)


class ResidualBlockWithStride(nn.Module):
    r"""Downsampling residual block of Cheng et al. 2020: ``y = GDN(conv2(LReLU(conv1(x)))) + skip(x)``.

    ``conv1`` is a 3x3 convolution with stride ``stride`` (padding 1), ``conv2`` a
    3x3 convolution with stride 1. ``skip`` is a 1x1 convolution with stride
    ``stride`` when the shape changes, else the identity.

    :param in_channels: Input channels.
    :param out_channels: Output channels.
    :param stride: Downsampling factor of ``conv1`` and of the skip.
    :param negative_slope: Slope of the LeakyReLU for negative inputs.

    :input x: [B, in_channels, H, W], `torch.float32`
    :output y: [B, out_channels, ceil(H / stride), ceil(W / stride)], `torch.float32`

    .. rubric:: Examples

    >>> y = ResidualBlockWithStride(3, 256, stride=2)(torch.randn(2, 3, 32, 32))   # [2, 256, 16, 16]
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, negative_slope: float = 0.01):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride=stride)
        self.act = nn.LeakyReLU(negative_slope)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.gdn = GDN(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        else:
            self.skip = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gdn(self.conv2(self.act(self.conv1(x))))
        return h + self.skip(x)


class ResidualBlockUpsample(nn.Module):
    r"""Upsampling residual block of Cheng et al. 2020: ``y = IGDN(conv(LReLU(subpel(x)))) + subpel_skip(x)``.

    ``subpel`` and ``subpel_skip`` are separate :func:`subpel_conv3x3` layers
    (3x3 conv to ``out_channels * r^2``, then PixelShuffle ``r``); ``conv`` is a
    3x3 convolution with stride 1.

    :param in_channels: Input channels.
    :param out_channels: Output channels.
    :param upsample: Upsampling factor ``r``.
    :param negative_slope: Slope of the LeakyReLU for negative inputs.

    :input x: [B, in_channels, H, W], `torch.float32`
    :output y: [B, out_channels, r * H, r * W], `torch.float32`

    .. rubric:: Examples

    >>> y = ResidualBlockUpsample(256, 3, upsample=2)(torch.randn(2, 256, 16, 16))   # [2, 3, 32, 32]
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: int = 2, negative_slope: float = 0.01):
        super().__init__()
        self.subpel = subpel_conv3x3(in_channels, out_channels, upsample)
        self.act = nn.LeakyReLU(negative_slope)
        self.conv = _conv3x3(out_channels, out_channels)
        self.igdn = IGDN(out_channels)
        self.skip = subpel_conv3x3(in_channels, out_channels, upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.igdn(self.conv(self.act(self.subpel(x))))
        return h + self.skip(x)


class GroupNormResBlock(nn.Module):
    r"""Pre-activation ResBlock of the VQGAN/LDM autoencoder, as used by VSCC (seed000 §3).

    ``h = conv1(Swish(GN1(x)))``, ``y = conv2(Swish(GN2(h))) + skip(x)``
    with 3x3 convolutions (stride 1, padding 1), Swish ``t * sigmoid(t)`` (SiLU)
    and affine GroupNorm (:func:`group_norm`: ``min(num_groups, C)`` groups,
    ``eps``). ``skip`` is a 1x1 convolution when the channel count changes, else
    the identity. No dropout, no time embedding.

    :param in_channels: Input channels.
    :param out_channels: Output channels; ``None`` keeps ``in_channels``.
    :param num_groups: GroupNorm groups (capped at the channel count).
    :param eps: GroupNorm variance floor.

    :input x: [B, in_channels, H, W], `torch.float32`
    :output y: [B, out_channels, H, W], `torch.float32`

    .. rubric:: Examples

    >>> y = GroupNormResBlock(128, 192)(torch.randn(2, 128, 16, 16))   # [2, 192, 16, 16]
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, num_groups: int = 32, eps: float = 1e-6):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.norm1 = group_norm(in_channels, num_groups, eps)
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.norm2 = group_norm(out_channels, num_groups, eps)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class PostActResidualUnit(nn.Module):
    r"""Post-activation ResNet basic block with BatchNorm and PReLU, as in the JCM encoder/decoder (seed001 §3.2).

    ``h = BN2(conv2(PReLU1(BN1(conv1(x)))))``, ``y = PReLU2(h + skip(x))`` with
    bias-free 3x3 convolutions (``conv1`` with stride ``stride``, padding 1) and
    PReLUs of one learnable slope each. ``skip`` is a bias-free 1x1 convolution
    with stride ``stride`` followed by BatchNorm when the shape changes, else the
    identity.

    :param in_channels: Input channels.
    :param out_channels: Output channels.
    :param stride: Stride of ``conv1`` and of the skip.

    :input x: [B, in_channels, H, W], `torch.float32`
    :output y: [B, out_channels, ceil(H / stride), ceil(W / stride)], `torch.float32`

    .. rubric:: Examples

    >>> y = PostActResidualUnit(64, 128, stride=2)(torch.randn(2, 64, 32, 32))   # [2, 128, 16, 16]
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = nn.PReLU()
        self.conv2 = _conv3x3(out_channels, out_channels, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = nn.PReLU()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.skip = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(h + self.skip(x))
