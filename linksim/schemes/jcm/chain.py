"""The JCM symbol chain: encoder output -> channel symbols -> channel -> the reals the decoders see.

One chain per (method, modulation). Every method sends ``d`` real values per image (``d = 2 n`` for QAM,
``d = n`` for BPSK) at unit average power per real value, normalised over the whole batch tensor (the
authors' code, ``power_norm: batch``) or per image (the paper's text, ``image``):

- ``analog``: the continuous encoder output.
- ``jcm``: one PAM level per value drawn from the head's categorical distribution (straight-through
  Gumbel-softmax, :func:`~linksim.estimators.gumbel_softmax_st`; it samples in evaluation too).
- ``uniform``: each value clipped and rounded to the nearest PAM level; ``nn``: a learned one-layer
  quantiser's bits (:class:`~linksim.quantizers.LearnedQuantizer`). Both then go as Gray bits through
  Sionna's ``Mapper``, the channel and a hard ``Demapper``; the decoders get the decided levels (``uniform``)
  or the dequantised bits (``nn``), with a straight-through gradient to the encoder output. The one-layer
  quantiser is weak by construction: each of its ``b`` bits thresholds the value once, so it reaches at
  most ``b + 1`` of the ``2^b`` levels of an axis (3 of 4 for 16-QAM, 4 of 8 for 64-QAM).

The PAM levels are Sionna's (``Constellation("pam", b)``, unit power per real value; ``b = log2(M) / 2``
bits per value for M-QAM, 1 for BPSK), so a pair of levels is exactly a point of Sionna's unit-energy
Gray QAM.

**Channel conventions.** QAM (and analog 2D): reals ``(2i, 2i+1)`` are the I and Q of complex symbol ``i``
(:func:`~linksim.link.packing.real_to_complex`), sent at the scheme's noise variance ``no`` per complex
symbol: each real value sees noise of variance ``no``, so SNR = P / sigma^2 per real and per complex use
alike. BPSK (and analog 1D): real symbols on a real channel with noise variance ``no`` per real symbol,
i.e. sent on the I branch with ``2 no`` per complex use and the real part kept (the authors' convention,
3 dB harsher than BPSK on a complex channel at the same Es/N0).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from sionna.phy.mapping import PAM2QAM, QAM2PAM, Constellation, Demapper, Mapper
from torch import nn

from linksim.channels.base import Channel
from linksim.estimators import gumbel_softmax_st, straight_through
from linksim.link.packing import reals_through
from linksim.models.jcm import Method
from linksim.quantizers import LearnedQuantizer, bits_to_int, int_to_bits

__all__ = ["MODULATIONS", "Modulation", "PowerScope", "SymbolChain", "normalize_power"]

Modulation = Literal["bpsk", "qam4", "qam16", "qam64"]
PowerScope = Literal["batch", "image"]

#: constellation points M per modulation
MODULATIONS: dict[str, int] = {"bpsk": 2, "qam4": 4, "qam16": 16, "qam64": 64}


def normalize_power(power: torch.Tensor, scope: PowerScope, eps: float = 1e-12) -> torch.Tensor:
    """The gain that gives unit mean ``power`` over the whole batch tensor (``batch``, a scalar) or over
    each row (``image``, [B, 1]).

    :input power: [B, d], float. Power of each value (``x^2`` of reals, ``|s|^2`` of complex symbols).
    :output: [] or [B, 1], float. Multiply the values by it.
    """
    mean = power.mean() if scope == "batch" else power.mean(dim=1, keepdim=True)
    return torch.rsqrt(mean + eps)


class SymbolChain(nn.Module):
    """Transmitter back end, channel and receiver front end of one JCM-family method (module docstring).

    :param method: ``jcm``, ``analog``, ``uniform`` or ``nn``.
    :param modulation: ``bpsk`` (real channel, 1 bit per value) or ``qam4`` / ``qam16`` / ``qam64``
        (complex channel, ``log2(M) / 2`` bits per value); for ``analog`` it only selects 1D (``bpsk``) or 2D.
    :param power_norm: ``batch`` or ``image`` (:func:`normalize_power`).
    :param temperature: the Gumbel-softmax temperature of the backward pass (``jcm``).

    :input features: the encoder output, [B, d, K] logits (``jcm``) or [B, d] reals (the others).
    :input channel: a :class:`~linksim.channels.base.Channel` (equalised symbols and their noise out).
    :input no: [] or [B], torch.float32. Noise variance per complex channel use (linear).
    :input quantizer: the model's :class:`~linksim.quantizers.LearnedQuantizer` (``nn`` only).
    :input generator: ``torch.Generator`` for the Gumbel noise, ``None`` for Sionna's.
    :output y: [B, d], torch.float32. What the decoders see.
    :output points: [B, n] int64 indices of the constellation points sent (:attr:`points`), ``None`` for
        ``analog``.

    .. rubric:: Example

    >>> from linksim.channels import AWGNChannel
    >>> chain = SymbolChain("uniform", "qam16")
    >>> y, points = chain(torch.randn(2, 32), AWGNChannel(), torch.tensor(1e-9))
    >>> bool((y.unsqueeze(-1) - chain.levels).abs().min(-1).values.max() < 1e-6)   # decided PAM levels
    True
    """

    def __init__(self, method: Method, modulation: Modulation, power_norm: PowerScope = "batch",
                 temperature: float = 1.5):
        super().__init__()
        self.method, self.power_norm, self.temperature = method, power_norm, temperature
        self.real = modulation == "bpsk"
        self.bits = 1 if self.real else int(math.log2(MODULATIONS[modulation])) // 2
        pam = Constellation("pam", self.bits).points.real.float()  # index = Gray label, unit power
        order = torch.argsort(pam)
        self.register_buffer("levels", pam[order].contiguous(), persistent=False)  # ascending
        self.register_buffer("label_of", order, persistent=False)  # sorted level index -> label
        self.register_buffer("index_of", torch.argsort(order), persistent=False)  # label -> sorted index
        if method in ("uniform", "nn"):
            m = 1 if self.real else 2 * self.bits
            kind = "pam" if self.real else "qam"
            self.mapper = Mapper(kind, m)
            self.demapper = Demapper("maxlog", kind, m, hard_out=True)
            if not self.real:
                self.pam2qam, self.qam2pam = PAM2QAM(m), QAM2PAM(m)

    @property
    def points(self) -> torch.Tensor:
        """[M] complex64: the constellation point of each index in ``points`` (unit average energy under
        uniform use): level ``i`` of BPSK, or ``(level[i // K] + j level[i % K]) / sqrt(2)`` for QAM."""
        if self.real:
            return self.levels.to(torch.complex64)
        k = len(self.levels)
        return torch.complex(self.levels.repeat_interleave(k), self.levels.repeat(k)) / math.sqrt(2.0)

    def forward(self, features: torch.Tensor, channel: Channel, no: torch.Tensor,
                quantizer: LearnedQuantizer | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.method == "analog":
            x = features * normalize_power(features.square(), self.power_norm)
            return self._through(x, channel, no), None
        if self.method == "jcm":
            one_hot = gumbel_softmax_st(features, self.temperature, generator=generator)
            v = one_hot @ self.levels
            x = v * normalize_power(v.square(), self.power_norm)
            return self._through(x, channel, no), self._point_index(one_hot.detach().argmax(-1))
        z = features * normalize_power(features.square(), self.power_norm)
        if self.method == "uniform":
            sent = (z.detach().unsqueeze(-1) - self.levels).abs().argmin(-1)  # nearest level = clip + round
            received = self._digital(self.label_of[sent], channel, no)
            y = self.levels[self.index_of[received]]
        else:
            labels = bits_to_int(quantizer.quantize(z.detach()))
            sent = self.index_of[labels]
            received = self._digital(labels, channel, no)
            y = quantizer.dequantize(int_to_bits(received, self.bits))
        return straight_through(y, z), self._point_index(sent)

    def _point_index(self, level_index: torch.Tensor) -> torch.Tensor:
        """[B, d] sorted level indices -> [B, n] point indices (I index x K + Q index for QAM)."""
        if self.real:
            return level_index
        pairs = level_index.reshape(len(level_index), -1, 2)
        return pairs[..., 0] * len(self.levels) + pairs[..., 1]

    def _noise(self, no: torch.Tensor) -> torch.Tensor:
        """Noise variance per complex use that gives ``no`` per real value on this chain's channel."""
        return 2.0 * no if self.real else no

    def _through(self, x: torch.Tensor, channel: Channel, no: torch.Tensor) -> torch.Tensor:
        """Reals [B, d] at unit power -> complex symbols -> ``channel`` -> reals [B, d]."""
        if self.real:
            x = x.float()  # a transmitter under bf16 autocast: channels run in float32
            y, _ = channel(torch.complex(x, torch.zeros_like(x)), self._noise(no))
            return y.real
        return reals_through(x, channel, no)

    def _digital(self, labels: torch.Tensor, channel: Channel, no: torch.Tensor) -> torch.Tensor:
        """PAM labels [B, d] -> Gray bits -> Mapper -> power gain -> ``channel`` -> hard Demapper -> labels [B, d]."""
        batch = len(labels)
        if self.real:
            s = self.mapper(labels.float())
        else:
            pairs = labels.reshape(batch, -1, 2)
            qam = self.pam2qam(pairs[..., 0].int(), pairs[..., 1].int())
            s = self.mapper(int_to_bits(qam, 2 * self.bits).flatten(1))
        gain = normalize_power(s.abs().square(), self.power_norm)  # a transmit gain the receiver knows
        y, no_eff = channel(s * gain, self._noise(no))
        if self.real:
            y = torch.complex(y.real, torch.zeros_like(y.real))
        bits = self.demapper(y / gain, no_eff * gain.square().reciprocal())
        if self.real:
            return bits.long()
        i, q = self.qam2pam(bits_to_int(bits.reshape(batch, -1, 2 * self.bits)).int())
        return torch.stack((i, q), dim=-1).reshape(batch, -1).long()
