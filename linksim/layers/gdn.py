"""Generalized divisive normalization (GDN) and its inverse (IGDN), Ballé et al. 2016."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GDN", "IGDN", "lower_bound"]


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient passes where ``x >= bound`` or where descent would raise ``x``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through, None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    r"""Element-wise ``max(x, bound)`` with Ballé's "identity if towards" gradient.

    The gradient is passed unchanged where ``x >= bound``, and also where
    ``x < bound`` but a gradient-descent step would move ``x`` up towards the
    bound (``grad < 0``); it is zero only where descent would push ``x`` further
    below. A parameter that has fallen under the bound can so climb back, while
    the output never goes below ``bound``.

    :param x: Any shape, `torch.float`.
    :param bound: Scalar lower bound.
    :output y: Same shape as ``x``, `torch.float`.
    """
    return _LowerBound.apply(x, bound)


class GDN(nn.Module):
    r"""Generalized divisive normalization over channels (Ballé, Laparra, Simoncelli, ICLR 2016).

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` at every pixel, or with
    ``inverse=True`` (IGDN, the approximate inverse used in decoders)
    ``y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)``. The sum over ``j`` is a
    1x1 convolution of ``x^2`` with weight ``gamma`` and bias ``beta``.

    ``beta`` (``[C]``) and ``gamma`` (``[C, C]``) are kept non-negative by the
    squared parametrisation with a pedestal of Ballé 2018 (*Efficient nonlinear
    transforms for lossy image compression*): a stored parameter ``p`` gives
    ``lower_bound(p, sqrt(bound + pedestal))^2 - pedestal`` with
    ``pedestal = 2^-36``, so ``beta >= beta_min`` and ``gamma >= 0`` hold after
    any optimizer step, and the squaring evens out the step size near zero.
    Initialisation: ``beta = 1``, ``gamma = gamma_init * I``.

    :param channels: Number of channels ``C``.
    :param inverse: `True` for IGDN (multiply instead of divide).
    :param beta_min: Lower bound of ``beta`` (keeps the denominator away from 0).
    :param gamma_init: Initial diagonal of ``gamma``.

    :input x: [B, C, H, W], `torch.float32`
    :output y: [B, C, H, W], `torch.float32`

    .. rubric:: Examples

    >>> gdn = GDN(64)
    >>> y = gdn(torch.randn(2, 64, 16, 16))          # [2, 64, 16, 16]
    >>> x_hat = GDN(64, inverse=True)(y)             # IGDN, same shape
    """

    REPARAM_OFFSET = 2.0**-18
    """Square root of the pedestal added before taking the square root of the parameters."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        if beta_min <= 0:
            raise ValueError(f"beta_min must be positive, got {beta_min}")
        self.channels = channels
        self.inverse = inverse
        self.beta_min = beta_min
        self.gamma_init = gamma_init
        self.pedestal = self.REPARAM_OFFSET**2
        self._beta_bound = (beta_min + self.pedestal) ** 0.5
        self._gamma_bound = self.REPARAM_OFFSET
        self.beta_param = nn.Parameter(torch.sqrt(torch.ones(channels) + self.pedestal))
        self.gamma_param = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + self.pedestal))

    @property
    def beta(self) -> torch.Tensor:
        """Effective ``beta`` ``[C]``, ``>= beta_min``."""
        return lower_bound(self.beta_param, self._beta_bound).square() - self.pedestal

    @property
    def gamma(self) -> torch.Tensor:
        """Effective ``gamma`` ``[C, C]`` (row ``i`` weighs the ``x_j^2`` of output ``i``), ``>= 0``."""
        return lower_bound(self.gamma_param, self._gamma_bound).square() - self.pedestal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = F.conv2d(x * x, self.gamma[:, :, None, None], self.beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))

    def extra_repr(self) -> str:
        return f"{self.channels}, inverse={self.inverse}, beta_min={self.beta_min}, gamma_init={self.gamma_init}"


class IGDN(GDN):
    r"""Inverse GDN, ``y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)``: :class:`GDN` with ``inverse=True``.

    :param channels: Number of channels ``C``.
    :param beta_min: Lower bound of ``beta``.
    :param gamma_init: Initial diagonal of ``gamma``.

    :input x: [B, C, H, W], `torch.float32`
    :output y: [B, C, H, W], `torch.float32`

    .. rubric:: Examples

    >>> y = IGDN(64)(torch.randn(2, 64, 16, 16))     # [2, 64, 16, 16]
    """

    def __init__(self, channels: int, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__(channels, inverse=True, beta_min=beta_min, gamma_init=gamma_init)
