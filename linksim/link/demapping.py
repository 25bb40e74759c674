"""APP and max-log demapping one real axis at a time, for constellations that are a product of two
real ones (Sionna's QAM and PAM).

Sionna's :class:`~sionna.phy.mapping.Demapper` computes the distance of every received symbol to
every constellation point and, for every bit, a log-sum-exp (or max) over half of the points: for
16-QAM 16 distances and 4 x 2 sums over 8 terms per symbol. When the constellation is the product of
a real and an imaginary grid and every bit is labelled by one of the two coordinates, the other
coordinate's terms factor out of both sums and cancel in their difference, so each bit needs only
its own axis: for 16-QAM 2 x 4 distances and 4 x 2 sums over 2 terms. The logits are the same up to
float32 rounding (tested against Sionna's), about 5x faster on a CPU (16-QAM, one thread).
"""

from __future__ import annotations

import numpy as np
import torch
from sionna.phy.mapping import Constellation, Demapper
from torch import nn

__all__ = ["AxisDemapper", "make_demapper"]


class _NotSeparable(ValueError):
    """The constellation is not a product of two real ones with every bit on one axis."""


def _axis_labels(points: np.ndarray, num_bits: int) -> list[tuple[int, np.ndarray, np.ndarray]] | None:
    """For each bit, ``(axis, levels, bit of each level)`` (axis 0: real, 1: imaginary) when the
    constellation is the product of its real and imaginary levels and every bit is a function of one
    coordinate; ``None`` otherwise."""
    coords = np.stack([points.real, points.imag])
    levels = [np.unique(c) for c in coords]
    if len(points) != len(levels[0]) * len(levels[1]) or len(set(zip(*coords, strict=True))) != len(points):
        return None
    bits = (np.arange(len(points))[:, None] >> np.arange(num_bits - 1, -1, -1)) & 1  # bit 0 is the MSB
    out = []
    for b in range(num_bits):
        for axis in (0, 1):
            level_index = np.searchsorted(levels[axis], coords[axis])
            label = np.full(len(levels[axis]), -1)
            consistent = True
            for lv, bit in zip(level_index, bits[:, b], strict=True):
                consistent &= label[lv] in (-1, bit)
                label[lv] = bit
            if consistent and len(levels[axis]) > 1 and {0, 1} <= set(label.tolist()):
                out.append((axis, levels[axis], label))
                break
        else:
            return None
    return out


class AxisDemapper(nn.Module):
    """Sionna's ``Demapper(method, constellation=...)`` for a product constellation, computed per axis.

    :param method: ``app`` (log-sum-exp) or ``maxlog`` (max).
    :param constellation: a Sionna constellation that :func:`make_demapper` found separable.
    :input y: [..., n] complex64 received symbols.
    :input no: noise variance (linear, per complex symbol: ``E|w|^2``), broadcastable to ``y`` as in
        Sionna's demapper; clamped to float32's smallest normal value like Sionna.
    :output: [..., n * bits per symbol] float32 logits ``log p(b=1)/p(b=0)``, bits of a symbol in
        Sionna's order (the first bit is the label's most significant).
    """

    def __init__(self, method: str, constellation: Constellation):
        super().__init__()
        if method not in ("app", "maxlog"):
            raise ValueError(f"demapping method must be app or maxlog, found {method!r}")
        points = constellation().detach().cpu().numpy()
        labels = _axis_labels(points, constellation.num_bits_per_symbol)
        if labels is None:
            raise _NotSeparable("AxisDemapper needs a product constellation whose bits each follow one axis")
        self.method, self.num_bits = method, constellation.num_bits_per_symbol
        self._axes = []  # (axis, bit positions on it)
        for axis in (0, 1):
            on_axis = [(b, label) for b, (a, _, label) in enumerate(labels) if a == axis]
            if not on_axis:
                continue
            levels = next(lv for a, lv, _ in labels if a == axis)
            # per bit on this axis, the levels labelled 1 then those labelled 0: [bits, 2, levels / 2]
            split = np.stack([np.stack([np.flatnonzero(label == 1), np.flatnonzero(label == 0)]) for _, label in on_axis])
            self._axes.append((axis, [b for b, _ in on_axis]))
            self.register_buffer(f"_levels{axis}", torch.as_tensor(levels, dtype=torch.float32), persistent=False)
            self.register_buffer(f"_split{axis}", torch.as_tensor(split.reshape(-1)), persistent=False)
        order = np.argsort([b for _, bits in self._axes for b in bits])  # axis-grouped columns -> bit order
        self.register_buffer("_order", torch.as_tensor(order), persistent=False)
        self._tiny = float(np.finfo(np.float32).tiny)

    def forward(self, y: torch.Tensor, no: torch.Tensor) -> torch.Tensor:
        no = torch.as_tensor(no, dtype=torch.float32, device=y.device).clamp_min(self._tiny).unsqueeze(-1)
        llrs = []
        for axis, bits in self._axes:
            coord = (y.real if axis == 0 else y.imag).unsqueeze(-1)
            e = -(coord - getattr(self, f"_levels{axis}")).square() / no  # [..., n, levels]
            e = e[..., getattr(self, f"_split{axis}")].unflatten(-1, (len(bits), 2, -1))  # [..., n, bits, 2, half]
            both = torch.logsumexp(e, dim=-1) if self.method == "app" else e.amax(dim=-1)
            llrs.append(both[..., 0] - both[..., 1])
        out = torch.cat(llrs, dim=-1)  # [..., n, bits], grouped by axis
        return out[..., self._order].flatten(-2)


def make_demapper(method: str, constellation: Constellation) -> nn.Module:
    """:class:`AxisDemapper` where the constellation allows it, else Sionna's ``Demapper``."""
    try:
        return AxisDemapper(method, constellation)
    except _NotSeparable:
        return Demapper(method, constellation=constellation)
