"""Sub-pixel (depth-to-space, pixel-shuffle) upsampling convolutions."""

from torch import nn

__all__ = ["subpel_conv3x3", "DepthToSpaceConv"]


def subpel_conv3x3(in_channels: int, out_channels: int, factor: int = 2) -> nn.Sequential:
    r"""Sub-pixel convolution (Shi et al., CVPR 2016): 3x3 conv to ``out_channels * factor^2``, then PixelShuffle.

    :param in_channels: Input channels.
    :param out_channels: Output channels.
    :param factor: Upsampling factor ``r``.

    :input x: [B, in_channels, H, W], `torch.float32`
    :output y: [B, out_channels, r * H, r * W], `torch.float32`

    .. rubric:: Examples

    >>> y = subpel_conv3x3(64, 32, 2)(torch.randn(1, 64, 8, 8))   # [1, 32, 16, 16]
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels * factor**2, 3, padding=1),
        nn.PixelShuffle(factor),
    )


class DepthToSpaceConv(nn.Sequential):
    r"""Depth-to-space upsampling followed by a 1x1 convolution and an optional PReLU (JCM decoder, seed001 §3.2).

    ``PixelShuffle(r)`` turns ``[C, H, W]`` into ``[C / r^2, r H, r W]``, then a
    1x1 conv maps ``C / r^2 -> out_channels``. The JCM reconstruction decoder
    uses ``DepthToSpaceConv(256, 128, 4)`` (with PReLU) and
    ``DepthToSpaceConv(128, 3, 2, activation=False)`` (linear output). The
    reference code's TF-style DepthToSpace orders the sub-pixels differently from
    PixelShuffle; the learned 1x1 conv that follows absorbs the permutation.

    :param in_channels: Input channels ``C``; must be divisible by ``r^2``.
    :param out_channels: Output channels.
    :param factor: Upsampling factor ``r``.
    :param activation: Apply a PReLU (one learnable slope) to the output.

    :input x: [B, C, H, W], `torch.float32`
    :output y: [B, out_channels, r * H, r * W], `torch.float32`

    .. rubric:: Examples

    >>> y = DepthToSpaceConv(256, 128, 4)(torch.randn(2, 256, 4, 4))   # [2, 128, 16, 16]
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int, activation: bool = True):
        if in_channels % factor**2:
            raise ValueError(f"in_channels={in_channels} is not divisible by factor^2={factor**2}")
        layers = [nn.PixelShuffle(factor), nn.Conv2d(in_channels // factor**2, out_channels, 1)]
        if activation:
            layers.append(nn.PReLU())
        super().__init__(*layers)
