"""Real channel uses <-> unit-energy complex symbols, and what real channel uses cost on a channel."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from linksim.data.params import DataParams
from linksim.snr import LinkBudget

__all__ = ["BandwidthRatio", "ImageBandwidthParams", "channel_uses_per_image", "real_to_complex", "complex_to_real",
           "parse_ratio", "real_uses_budget", "reals_through"]


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Pack real channel uses in pairs into unit-energy complex symbols, one row per example.

    :input x: [batch, ..., n], torch.float32 (bf16 / float16 from a transmitter under autocast is
        promoted: channels run in float32). Unit average power per real channel use; every
        leading group (an agent, a feature element) is packed on its own.
    :output: [batch, groups * ceil(n / 2)], torch.complex64, ``(x_0 + j x_1) / sqrt(2)``; an odd
        ``n`` is padded with one zero per group (not counted as a channel use). The per-real-dimension
        SNR of ``x`` then equals the Es/N0 of the complex symbols.

    .. rubric:: Example

    >>> real_to_complex(torch.ones(2, 4, 3)).shape
    torch.Size([2, 8])
    """
    if x.dtype.itemsize < 4:
        x = x.float()
    if x.shape[-1] % 2:
        x = F.pad(x, (0, 1))
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return torch.complex(pairs[..., 0], pairs[..., 1]).flatten(1) / math.sqrt(2.0)


def complex_to_real(y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`real_to_complex`.

    :input y: [batch, groups * ceil(n / 2)], complex.
    :param shape: the real layout per example, ``(..., n)`` (e.g. ``(agents, n)``).
    :output: [batch, *shape], real; the padding of an odd ``n`` is dropped.
    """
    *groups, n = shape
    pairs = torch.stack((y.real, y.imag), dim=-1).reshape(y.shape[0], *groups, -1) * math.sqrt(2.0)
    return pairs[..., :n]


def reals_through(values: torch.Tensor, channel, no: torch.Tensor) -> torch.Tensor:
    """Send real values through a complex ``channel``: each example's values packed in pairs by
    :func:`real_to_complex` into one row of symbols, sent at noise variance ``no`` per complex symbol
    (so ``no`` per real value at unit power), unpacked by :func:`complex_to_real`.

    :input values: [B, ...], torch.float32 (any layout per example: a latent map, a vector).
    :input no: [] or [B], torch.float32, linear.
    :output: ``values``' shape, torch.float32 (equalised values where the channel has CSI).
    """
    y, _ = channel(real_to_complex(values.reshape(len(values), 1, -1)), no)
    return complex_to_real(y, (1, values[0].numel())).reshape(values.shape)


def real_uses_budget(channel, groups: int, n: int) -> LinkBudget:
    """Complex channel uses per example of ``groups`` x ``n`` real channel uses packed by
    :func:`real_to_complex` on ``channel`` (its overheads included, the padding of an odd ``n`` not)."""
    packed = math.ceil(n / 2)
    return LinkBudget(channel.channel_uses(groups * packed) * n / (2 * packed))


def parse_ratio(value):
    """A bandwidth ratio given as a number or a fraction string (``"1/6"``) -> float (pydantic
    ``mode="before"`` validator body)."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"expected a number or a fraction such as '1/6', found {value!r}") from None
    return value


BandwidthRatio = Annotated[float, BeforeValidator(parse_ratio), Field(gt=0, le=64)]
"""Complex channel uses per source value (a number or a fraction string such as ``"1/12"``)."""


def channel_uses_per_image(bandwidth_ratio: float, image_shape: tuple[int, ...]) -> int:
    """Complex channel uses per image of a bandwidth ratio rho: ``round(rho * C * H * W)``."""
    return round(bandwidth_ratio * math.prod(image_shape))


class ImageBandwidthParams(BaseModel):
    """What every image scheme's channel budget follows from: the images (``data``) and the
    bandwidth ratio rho (complex channel uses per source value), so that schemes with the same rho
    spend the same channel uses per image on the same evaluation images."""

    model_config = ConfigDict(extra="forbid")
    data: DataParams = DataParams(name="cifar10")
    bandwidth_ratio: BandwidthRatio

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the dataset's images."""
        return self.data.image_shape

    @property
    def channel_uses(self) -> int:
        """Complex channel uses per image, ``round(rho * C * H * W)``."""
        return channel_uses_per_image(self.bandwidth_ratio, self.image_shape)
