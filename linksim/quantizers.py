"""Scalar quantisers with bit labels and straight-through gradients: uniform, float16, and a learned MLP one."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from linksim.estimators import straight_through
from linksim.link.huffman import float_to_symbols, symbols_to_float

__all__ = [
    "int_to_bits",
    "bits_to_int",
    "fit_range",
    "UniformQuantizer",
    "float16_roundtrip",
    "float16_bits",
    "bits_to_float16",
    "LearnedQuantizer",
]

_FLOAT16_MAX = float(np.finfo(np.float16).max)


def int_to_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Non-negative integers -> their ``bits`` lowest bits, natural binary, MSB first.

    :input values: [...], integer tensor in ``[0, 2**bits)``.
    :output b: [..., bits], float32 in {0, 1}.
    """
    shifts = torch.arange(bits - 1, -1, -1, device=values.device)
    return ((values.long().unsqueeze(-1) >> shifts) & 1).to(torch.float32)


def bits_to_int(b: torch.Tensor) -> torch.Tensor:
    """Bits (MSB first; any value > 0.5 reads as 1) -> int64 integers in ``[0, 2**bits)``.

    :input b: [..., bits], float or integer.
    :output values: [...], int64.
    """
    nbits = b.shape[-1]
    weights = 2 ** torch.arange(nbits - 1, -1, -1, device=b.device, dtype=torch.int64)
    return ((b > 0.5).long() * weights).sum(-1)


def fit_range(x: torch.Tensor, coverage: float = 1.0) -> tuple[float, float]:
    """A clipping range ``(low, high)`` for ``x``: its min and max, or, with ``coverage < 1``, the central
    ``coverage`` quantile interval (``(1 - coverage) / 2`` cut in each tail). Non-finite values are ignored.

    :input x: [...], float (at most 16 M finite values when ``coverage < 1``: ``torch.quantile``'s limit).
    :output: ``(low, high)`` floats with ``low < high`` (a constant tensor gets ``high = low + 1``).
    """
    v = x.detach().flatten().float()
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        raise ValueError("fit_range needs at least one finite value")
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must lie in (0, 1], found {coverage}")
    if coverage == 1.0:
        low, high = float(v.min()), float(v.max())
    else:
        tail = (1.0 - coverage) / 2
        q = torch.quantile(v, torch.tensor([tail, 1.0 - tail], device=v.device))
        low, high = float(q[0]), float(q[1])
    return (low, high) if high > low else (low, low + 1.0)


class UniformQuantizer(nn.Module):
    """A uniform scalar quantiser of ``2**bits`` levels spanning ``[low, high]`` endpoints included.

    Level ``i`` reconstructs to ``low + i * step``, ``step = (high - low) / (2**bits - 1)``: inside the range
    the error is at most ``step / 2``; values outside are clipped to the nearest end level (for PAM-matched
    quantisation, seed001 §9.10, take ``low, high = -+`` the outer amplitude). Levels are labelled in natural
    binary, MSB first, so every ``bits``-bit pattern (e.g. one corrupted by a channel) names a valid level and
    dequantises to a finite value. :meth:`forward` passes an identity (straight-through) gradient.

    :param bits: bits per value, 1..24.
    :param low: lowest reconstruction level.
    :param high: highest reconstruction level (``> low``).

    :input x: [...], float32. Values to quantise.
    :output x_q: [...], float32. ``dequantize(quantize(x))``; ``dx_q/dx = 1``.

    .. rubric:: Example

    >>> q = UniformQuantizer(2, -1.0, 1.0)
    >>> [round(v, 4) for v in q(torch.tensor([-2.0, -0.2, 0.4, 0.9])).tolist()]
    [-1.0, -0.3333, 0.3333, 1.0]
    >>> q.to_bits(q.quantize(torch.tensor([0.4]))).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, bits: int, low: float, high: float):
        super().__init__()
        if not 1 <= bits <= 24:
            raise ValueError(f"bits must lie in 1..24, found {bits}")
        if not high > low:
            raise ValueError(f"need low < high, found low={low}, high={high}")
        self.bits, self.low, self.high = int(bits), float(low), float(high)
        self.num_levels = 1 << self.bits
        self.step = (self.high - self.low) / (self.num_levels - 1)

    @classmethod
    def fit(cls, x: torch.Tensor, bits: int, coverage: float = 1.0) -> UniformQuantizer:
        """A quantiser whose range is :func:`fit_range` of ``x`` (per-tensor affine quantisation)."""
        return cls(bits, *fit_range(x, coverage))

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """[...] float -> [...] int64 levels in ``[0, 2**bits)`` (nearest level after clipping; NaN -> 0)."""
        t = torch.nan_to_num((x.detach() - self.low) / self.step, nan=0.0)
        return torch.round(t.clamp(0, self.num_levels - 1)).long()

    def dequantize(self, levels: torch.Tensor) -> torch.Tensor:
        """[...] integer levels -> [...] float32 reconstruction values (levels clipped to the valid range)."""
        i = levels.clamp(0, self.num_levels - 1).to(torch.float64)
        return (self.low + i * self.step).to(torch.float32)

    def to_bits(self, levels: torch.Tensor) -> torch.Tensor:
        """[...] levels -> [..., bits] float32 in {0, 1}, natural binary, MSB first."""
        return int_to_bits(levels, self.bits)

    def from_bits(self, b: torch.Tensor) -> torch.Tensor:
        """[..., bits] bits (MSB first) -> [...] int64 levels (always valid)."""
        if b.shape[-1] != self.bits:
            raise ValueError(f"expected {self.bits} bits per value in the last axis, found {b.shape[-1]}")
        return bits_to_int(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return straight_through(self.dequantize(self.quantize(x)).to(x.dtype), x)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, low={self.low:g}, high={self.high:g}"


def float16_roundtrip(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest float16 (magnitudes saturate at 65504) with a straight-through gradient.

    :input x: [...], float32.
    :output y: [...], float32. ``x`` as float16 holds it; ``dy/dx = 1``.
    """
    return straight_through(x.detach().clamp(-_FLOAT16_MAX, _FLOAT16_MAX).half().to(x.dtype), x)


def float16_bits(x: torch.Tensor) -> torch.Tensor:
    """Values -> their float16 bit patterns, 16 bits per value, MSB (sign) first, no gradient.

    Rounds to nearest and saturates at +-65504 like :func:`~linksim.link.huffman.float_to_symbols`, which
    this uses (numpy, so the values take a trip through host memory).

    :input x: [...], float.
    :output b: [..., 16], float32 in {0, 1}, on ``x.device``.
    """
    symbols = float_to_symbols(x.detach().cpu().numpy()).astype(np.int64)
    return int_to_bits(torch.from_numpy(symbols), 16).to(x.device)


def bits_to_float16(b: torch.Tensor) -> torch.Tensor:
    """16-bit float16 patterns (MSB first) -> float32 values; every pattern gives a finite value.

    Non-finite patterns (all-ones exponent: inf, NaN, reachable only through bit errors) and -0 become +0,
    the repair of :func:`~linksim.link.huffman.symbols_to_float`, which this uses.

    :input b: [..., 16], float or integer bits.
    :output x: [...], float32, on ``b.device``.
    """
    if b.shape[-1] != 16:
        raise ValueError(f"expected 16 bits per value in the last axis, found {b.shape[-1]}")
    symbols = bits_to_int(b).cpu().numpy()
    return torch.from_numpy(symbols_to_float(symbols)).to(b.device)


class LearnedQuantizer(nn.Module):
    """The NN quantiser of JCM's "NN" baseline (seed001 §5.3, §9.11): one-layer MLPs, trained on MSE by the caller.

    Quantiser: ``Linear(1 -> bits)`` + sigmoid gives soft bits ``s``; the hard bits are ``s > 0.5`` with a
    straight-through gradient (value of the hard bits, gradient of ``s``). Dequantiser: ``Linear(bits -> 1)``
    on the (hard, possibly channel-corrupted) bits in {0, 1}.

    Note: each bit of the one-layer quantiser thresholds ``x`` once (``w_k x + c_k > 0``), so ``bits`` bits cut
    the line into at most ``bits + 1`` cells, not ``2**bits`` (a thermometer-like code; for a unit Gaussian
    and 2 bits its best MSE is that of a 3-level quantiser, about 0.19, against 0.12 for 4 uniform levels).
    A tanh hidden layer in front of the bit layer could in principle reach all ``2**bits`` cells, but in a quick
    trial (16 units, 1,500 Adam steps on a unit Gaussian, straight-through as here) it did worse than the
    one-layer MLP at 1-3 bits, so it is not offered.

    Initialisation: with ``init_range = (low, high)`` (the default ``(-1, 1)``, i.e. a unit-power signal) the
    MLPs start as the uniform ``bits + 1``-level quantiser of that range (bit ``k`` is ``x > t_k`` at evenly
    spaced thresholds, the dequantiser adds one step per set bit), which training then reshapes; ``None``
    keeps PyTorch's random initialisation, from which some draws leave a bit unused.

    :param bits: bits per value (>= 1).
    :param init_range: ``(low, high)`` of the initial quantiser, or ``None``.

    :input x: [...], float32. Values to quantise (one scalar each).
    :output x_q: [...], float32. ``dequantize(quantize(x))``, differentiable in both MLPs.

    .. rubric:: Example

    >>> q = LearnedQuantizer(2)
    >>> opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    >>> x = torch.randn(1024)
    >>> loss = (q(x) - x).square().mean(); opt.zero_grad(); loss.backward(); opt.step()
    >>> q.quantize(x).shape
    torch.Size([1024, 2])
    """

    def __init__(self, bits: int, init_range: tuple[float, float] | None = (-1.0, 1.0)):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, found {bits}")
        self.bits = int(bits)
        self.encoder = nn.Linear(1, self.bits)
        self.decoder = nn.Linear(self.bits, 1)
        if init_range is not None:
            self._init_uniform(*init_range)

    @torch.no_grad()
    def _init_uniform(self, low: float, high: float) -> None:
        if not high > low:
            raise ValueError(f"init_range needs low < high, found {(low, high)}")
        step = (high - low) / self.bits  # bits + 1 levels, endpoints included
        thresholds = low + step * (torch.arange(self.bits, dtype=torch.float32) + 0.5)
        slope = 4.0 / step  # the sigmoid rises over about one step around each threshold
        self.encoder.weight.fill_(slope)
        self.encoder.bias.copy_(-slope * thresholds)
        self.decoder.weight.fill_(step)
        self.decoder.bias.fill_(low)

    def soft_bits(self, x: torch.Tensor) -> torch.Tensor:
        """[...] values -> [..., bits] sigmoid outputs in (0, 1)."""
        return torch.sigmoid(self.encoder(x.unsqueeze(-1)))

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """[...] values -> [..., bits] float32 hard bits in {0, 1} (straight-through gradient of the sigmoid)."""
        s = self.soft_bits(x)
        return straight_through((s > 0.5).to(s.dtype), s)

    def dequantize(self, b: torch.Tensor) -> torch.Tensor:
        """[..., bits] bits in {0, 1} -> [...] float32 reconstruction values."""
        if b.shape[-1] != self.bits:
            raise ValueError(f"expected {self.bits} bits per value in the last axis, found {b.shape[-1]}")
        return self.decoder(b.to(self.decoder.weight.dtype)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequantize(self.quantize(x))
