"""Model parameters <-> bits: per-tensor integer quantisation of a network, and the splice of bit streams.

A learned decoder that travels over the channel (AESC-I, seed004) is sent as the integer levels of
its parameters. Every tensor gets its own uniform affine quantiser
(:class:`~linksim.quantizers.UniformQuantizer` spanning the tensor's min and max): any bit pattern,
corrupted or not, names a valid level, so a decoder rebuilt from received bits always has finite
weights (raw float16 bits would not: a flipped exponent bit gives inf or NaN). The per-tensor ranges
and the architecture are format information, known at the receiver (like a JPEG header).

:func:`splice` / :func:`unsplice` lay several bit streams (a decoder, then image codes) end to end,
each padded to whole channel-code blocks, and take them apart again by their known lengths.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from linksim.quantizers import UniformQuantizer

__all__ = ["ParameterCodec", "splice", "unsplice"]


class ParameterCodec:
    """The parameters of one network as ``bits`` bits per value, and back.

    :param module: the network (its parameters, in ``named_parameters`` order, make the stream).
    :param bits: bits per parameter value (1..24): 8 or 16 in seed004.

    :meth:`to_bits` -> [num_bits] float32 in {0, 1}: for each tensor in order, its values
    (flattened, C order) as levels of its quantiser, natural binary, MSB first.
    :meth:`rebuild` -> a copy of ``module`` whose parameters are the dequantised levels read from
    (possibly corrupted) bits: always finite, each value within its tensor's original range.

    .. rubric:: Example

    >>> codec = ParameterCodec(nn.Linear(4, 2), bits=8)
    >>> b = codec.to_bits()
    >>> b.shape
    torch.Size([80])
    >>> net = codec.rebuild(1.0 - b)  # every bit flipped: still finite weights
    """

    def __init__(self, module: nn.Module, bits: int):
        self.module = module
        self.bits = int(bits)
        self.names = [name for name, _ in module.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in module.named_parameters()]
        self.quantizers = [UniformQuantizer.fit(p.detach(), self.bits) for _, p in module.named_parameters()]
        self.values = sum(p.numel() for p in module.parameters())

    @property
    def num_bits(self) -> int:
        """Bits of the whole stream: parameter values x bits per value."""
        return self.values * self.bits

    @torch.no_grad()
    def to_bits(self) -> torch.Tensor:
        """The parameters of ``module`` as they are now -> [num_bits] float32 bits."""
        params = dict(self.module.named_parameters())
        return torch.cat([q.to_bits(q.quantize(params[name])).reshape(-1)
                          for name, q in zip(self.names, self.quantizers, strict=True)])

    @torch.no_grad()
    def load_bits(self, target: nn.Module, bits: torch.Tensor) -> None:
        """Write the parameters read from ``bits`` ([num_bits], any value > 0.5 reads as 1) into
        ``target`` (a network of ``module``'s architecture), in place."""
        if bits.shape != (self.num_bits,):
            raise ValueError(f"expected {self.num_bits} parameter bits, found {tuple(bits.shape)}")
        params = dict(target.named_parameters())
        offset = 0
        for name, shape, q in zip(self.names, self.shapes, self.quantizers, strict=True):
            count = params[name].numel()
            chunk = bits[offset : offset + count * self.bits].reshape(count, self.bits)
            params[name].copy_(q.dequantize(q.from_bits(chunk)).reshape(shape).to(params[name]))
            offset += count * self.bits

    def rebuild(self, bits: torch.Tensor) -> nn.Module:
        """A new network (a copy of ``module``) with the parameters read from ``bits``."""
        target = copy.deepcopy(self.module)
        self.load_bits(target, bits.to(next(target.parameters()).device))
        return target


def _blocks(length: int, block: int) -> int:
    return -(-length // block)


def splice(segments: Sequence[torch.Tensor], block: int = 1) -> torch.Tensor:
    """Lay bit streams end to end, each zero-padded to a whole number of ``block`` bits (so that a
    segment starts at a channel-code block boundary).

    :input segments: [L_i] each, float.
    :output stream: [sum_i ceil(L_i / block) * block], the dtype of the first segment.
    """
    if not segments:
        raise ValueError("splice needs at least one segment")
    parts = []
    for s in segments:
        pad = _blocks(len(s), block) * block - len(s)
        parts.append(torch.cat([s, s.new_zeros(pad)]) if pad else s)
    return torch.cat(parts)


def unsplice(stream: torch.Tensor, lengths: Sequence[int], block: int = 1) -> list[torch.Tensor]:
    """The inverse of :func:`splice` for known segment ``lengths``: the segments, padding dropped.

    :input stream: [sum_i ceil(L_i / block) * block] (as :func:`splice` laid it out).
    :output: a list of [L_i] views of ``stream``.
    """
    sizes = [_blocks(n, block) * block for n in lengths]
    if sum(sizes) != len(stream):
        raise ValueError(f"a stream of {len(stream)} bits does not hold segments of {list(lengths)} bits "
                         f"in blocks of {block} ({sum(sizes)} bits)")
    return [part[:n] for part, n in zip(torch.split(stream, sizes), lengths, strict=True)]
