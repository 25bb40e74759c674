"""5G LDPC encoding as one matrix product over GF(2), for codes whose generator matrix is small.

Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GEncoder` computes the parity bits by gathering and summing
rows of the parity-check matrix's parts, several small operations per call: on a CPU about 0.15 ms
per (512, 1024) codeword, a third of a 16-QAM link. Encoding, filler-bit removal, puncturing,
rate matching and the output interleaver are all linear over GF(2), so the encoder is one binary
``[k, n]`` matrix ``G``: :class:`LDPC5GMatrixEncoder` takes ``G`` from Sionna's encoder itself (its
codewords of the ``k`` unit vectors) and encodes ``c = u G mod 2`` in one float32 matrix product
(exact: the sums stay below 2^24). The codewords equal Sionna's (tested).
"""

from __future__ import annotations

import torch
from sionna.phy.fec.ldpc import LDPC5GEncoder

__all__ = ["MAX_GENERATOR_ENTRIES", "LDPC5GMatrixEncoder", "make_ldpc_encoder"]

MAX_GENERATOR_ENTRIES = 1 << 22  # k x n of the largest generator kept dense (16 MB in float32)


class LDPC5GMatrixEncoder(LDPC5GEncoder):
    """Sionna's ``LDPC5GEncoder(k, n, num_bits_per_symbol=...)`` with ``call(bits)`` as ``bits @ G mod 2``.

    :input bits: [..., k] information bits in {0, 1} (float).
    :output: [..., n] codeword bits, the dtype of ``bits``; with ``rv`` (HARQ redundancy versions)
        Sionna's own encoding.
    """

    def __init__(self, k: int, n: int, num_bits_per_symbol: int | None = None, **kwargs):
        super().__init__(k, n, num_bits_per_symbol=num_bits_per_symbol, **kwargs)
        with torch.no_grad():
            eye = torch.eye(k, dtype=torch.float32, device=self.device)
            self.register_buffer("_generator", super().call(eye).to(torch.float32), persistent=False)

    def call(self, bits: torch.Tensor, /, *, rv=None) -> torch.Tensor:
        if rv is not None:
            return super().call(bits, rv=rv)
        u = bits.reshape(-1, self.k).to(torch.float32)
        with torch.autocast(u.device.type, enabled=False):  # float32 whatever the caller's autocast
            c = torch.remainder(u @ self._generator, 2)
        return c.reshape(*bits.shape[:-1], self.n).to(bits.dtype)


def make_ldpc_encoder(k: int, n: int, num_bits_per_symbol: int | None = None) -> LDPC5GEncoder:
    """:class:`LDPC5GMatrixEncoder` when ``k * n <= MAX_GENERATOR_ENTRIES``, else Sionna's encoder
    (long codes: its gathers touch only the parity-check matrix's ones)."""
    cls = LDPC5GMatrixEncoder if k * n <= MAX_GENERATOR_ENTRIES else LDPC5GEncoder
    return cls(k, n, num_bits_per_symbol=num_bits_per_symbol)
