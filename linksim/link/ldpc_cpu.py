"""A compiled CPU core for linksim's 5G LDPC flooding decoder (numba).

:class:`CompiledBP` replaces the decoding loop of :class:`~linksim.link.ldpc.EarlyStopBP` with one
numba kernel, compiled on first use and cached on disk (``cache=True``). It reads the same tables
(``_edge_vn`` and the degree buckets, built from Sionna's parity-check matrix) and performs the
torch core's float32 operations in the same order:

* ``v2c = total[vn] - c2v``, clipped to ``llr_max``;
* the check-node rule of the torch core (``boxplus-phi``, ``boxplus``, ``minsum``,
  ``offset-minsum``) with the same argument clipping, sign rule, summation order and output clipping;
* ``total = llr + c2v`` summed edge by edge in edge order (as ``index_add``);
* after every iteration but the last, with early stop on, a codeword whose hard decisions
  (``total <= 0`` is bit 1) satisfy every parity check stops with those decisions.

``_LANES`` codewords are decoded side by side, the codeword axis innermost so that every loop over
it compiles to SIMD instructions; a lane whose codeword is done takes the next codeword of the batch
at once. ``phi = log1p(2 / expm1(x))`` is evaluated as torch does, three float32 roundings, with
``expm1`` and ``log1p`` computed here in float64 by branch-free polynomials (vectorisable; libm calls
are not) and rounded once: on 4 million arguments they differ from torch's vectorised kernels in the
last bit for 0.35 % of them (libm's: 6 %). Decisions and iteration counts equal the torch core's in
``tests/test_ldpc_cpu.py``; the speed is in ``bench/link_throughput.py``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from linksim.link.ldpc import _ATANH_CLIP, _OFFSET, _PHI_CLIP, CN_UPDATES, EarlyStopBP

__all__ = ["CompiledBP", "LDPC5GCompiledDecoder"]

_F = np.float32
_PHI_LO, _PHI_HI = _F(_PHI_CLIP[0]), _F(_PHI_CLIP[1])
_ATANH_HI, _E_LO, _T_LO = _F(_ATANH_CLIP), _F(1e-7), _F(1e-12)
_OFF, _ZERO, _ONE, _TWO, _INF = _F(_OFFSET), _F(0.0), _F(1.0), _F(2.0), _F(np.inf)
_INV_LN2, _LN2, _SQRT2 = 1 / np.log(2), np.log(2), np.sqrt(2)
_LANES = 16  # codewords decoded side by side (SIMD lanes)
_JIT = {"cache": True, "error_model": "numpy"}  # numpy's error model: no zero-division branch, so loops vectorise


@numba.njit(inline="always", **_JIT)
def _pow2_split(k):
    """``2^k`` for a float ``0 <= k < 32`` holding an integer, without branches or tables."""
    t = 1.0
    for shift in (16.0, 8.0, 4.0, 2.0, 1.0):
        c = np.float64(k >= shift)
        t *= 1.0 + (2.0**shift - 1.0) * c
        k -= shift * c
    return t


@numba.njit(inline="always", **_JIT)
def _expm1(x):
    """float32 ``expm1(x)`` for ``0 <= x < 22``: float64 polynomial after ``x = k ln 2 + r``, rounded once."""
    xd = np.float64(x)
    k = np.floor(xd * _INV_LN2 + 0.5)
    r = xd - k * _LN2
    p = r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (
        1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r / 3628800)))))))))
    t = _pow2_split(k)
    return np.float32(p * t + (t - 1.0))


@numba.njit(inline="always", **_JIT)
def _log1p(q):
    """float32 ``log1p(q)`` for ``0 <= q < 2^32``: ``1 + q`` is exact in float64; ``log`` of its
    mantissa by the ``atanh`` series, rounded once."""
    u, m = 1.0 + np.float64(q), 0.0
    for shift in (16.0, 8.0, 4.0, 2.0, 1.0):
        c = np.float64(u >= 2.0**shift)
        u *= 1.0 - (1.0 - 2.0**-shift) * c
        m += shift * c
    c = np.float64(u > _SQRT2)
    u *= 1.0 - 0.5 * c
    m += c
    s = (u - 1.0) / (u + 1.0)
    s2 = s * s
    poly = 1 + s2 * (1 / 3 + s2 * (1 / 5 + s2 * (1 / 7 + s2 * (1 / 9 + s2 * (1 / 11 + s2 * (1 / 13 + s2 / 15))))))
    return np.float32(m * _LN2 + 2 * s * poly)


@numba.njit(inline="always", **_JIT)
def _phi(x):
    """``phi(x) = log1p(2 / expm1(x))`` in float32, argument clipped as in Sionna (and the torch core)."""
    return _log1p(_TWO / _expm1(min(max(x, _PHI_LO), _PHI_HI)))


# fused multiply-adds ("contract") change only phi's float64 polynomials: no float32 expression here
# has the form a * b + c
@numba.njit(fastmath={"contract"}, **_JIT)
def _cn_update(tot, c2v, edge_vn, first, degree, kind, clip, llr_max, v2c, mag, sign, acc, prod):
    """Update of one check node in every lane: ``tot [num_vns, lanes]`` and ``c2v [edges, lanes]`` ->
    new ``c2v[first:first + degree]``. ``v2c``, ``mag``, ``sign``: [max degree, lanes], ``acc``,
    ``prod``: [lanes] float32 scratch."""
    lanes = tot.shape[1]
    prod[:] = _ONE
    for j in range(degree):
        e, v = first + j, edge_vn[first + j]
        for w in range(lanes):
            x = tot[v, w] - c2v[e, w]
            x = min(max(x, -llr_max), llr_max) if clip else x
            v2c[j, w] = x
            sign[j, w] = -_ONE if x < _ZERO else _ONE
            prod[w] *= sign[j, w]
    if kind == 0:  # boxplus-phi
        acc[:] = _ZERO
        for j in range(degree):
            for w in range(lanes):
                mag[j, w] = _phi(abs(v2c[j, w]))
                acc[w] += mag[j, w]
        for j in range(degree):
            for w in range(lanes):
                mag[j, w] = _phi(acc[w] - mag[j, w])
    elif kind == 1:  # boxplus
        acc[:] = _ONE
        for j in range(degree):
            for w in range(lanes):
                mag[j, w] = max(np.tanh(abs(v2c[j, w]) / _TWO), _T_LO)
                acc[w] *= mag[j, w]
        for j in range(degree):
            for w in range(lanes):
                t = min(acc[w] / mag[j, w], _ATANH_HI)
                mag[j, w] = _TWO * np.arctanh(_ZERO if t < _E_LO else t)
    else:  # min-sum (2), offset min-sum (3): the smallest magnitude elsewhere
        m1, m2 = acc, v2c[degree]  # v2c has one spare row
        m1[:], m2[:] = _INF, _INF
        for j in range(degree):
            for w in range(lanes):
                x = abs(v2c[j, w])
                m2[w] = m1[w] if x < m1[w] else min(x, m2[w])
                m1[w] = min(x, m1[w])
        for j in range(degree):
            for w in range(lanes):
                x = m2[w] if abs(v2c[j, w]) == m1[w] else m1[w]
                mag[j, w] = max(x - _OFF, _ZERO) if kind == 3 else x
    for j in range(degree):
        for w in range(lanes):
            x = sign[j, w] * prod[w] * mag[j, w]
            c2v[first + j, w] = min(max(x, -llr_max), llr_max) if clip else x


@numba.njit(**_JIT)
def _bp_lanes(llr, edge_vn, cn_first, cn_degree, kind, clip, llr_max, num_iter, early_stop, lanes):
    """Flooding BP of ``lanes`` codewords at a time, a lane refilled with the next codeword as soon as
    its codeword is done.

    :input llr: [batch, num_vns] float32 true LLRs (``log p(0)/p(1)``), C-contiguous.
    :input edge_vn: [edges] int64, the variable node of each edge (edges grouped by check node).
    :input cn_first, cn_degree: [num_cns] int64, each check node's first edge and degree.
    :input kind: the index of the check-node rule in :data:`~linksim.link.ldpc.CN_UPDATES`.
    :input clip, llr_max: clip the messages to ``[-llr_max, llr_max]``.
    :output total: [batch, num_vns] float32 final totals (a valid codeword's where it stopped early).
    :output iterations: [batch] int32 iterations used.
    """
    batch, num_vns = llr.shape
    edges, degree_max = edge_vn.shape[0], cn_degree.max() if len(cn_degree) else 1
    total = np.empty_like(llr)
    iterations = np.full(batch, num_iter, dtype=np.int32)
    ch = np.zeros((num_vns, lanes), dtype=np.float32)  # channel LLRs of the codeword in each lane
    tot = np.zeros((num_vns, lanes), dtype=np.float32)
    c2v = np.zeros((edges, lanes), dtype=np.float32)
    v2c = np.empty((degree_max + 1, lanes), dtype=np.float32)
    mag, sign = np.empty_like(v2c), np.empty_like(v2c)
    acc, prod = np.empty(lanes, dtype=np.float32), np.empty(lanes, dtype=np.float32)
    parity = np.empty(lanes, dtype=np.uint8)
    hard = np.empty((num_vns, lanes), dtype=np.uint8)
    codeword = np.full(lanes, -1, dtype=np.int64)  # the codeword in each lane, -1: idle
    used = np.zeros(lanes, dtype=np.int32)  # iterations run on it
    nxt, busy = 0, 0
    for w in range(min(lanes, batch)):
        ch[:, w] = llr[nxt]
        tot[:, w] = llr[nxt]
        codeword[w], nxt, busy = nxt, nxt + 1, busy + 1
    while busy:
        for c in range(len(cn_first)):
            _cn_update(tot, c2v, edge_vn, cn_first[c], cn_degree[c], kind, clip, llr_max, v2c, mag, sign, acc, prod)
        tot[:] = ch
        for e in range(edges):
            v = edge_vn[e]
            for w in range(lanes):
                tot[v, w] += c2v[e, w]
        used += 1
        satisfied = np.zeros(lanes, dtype=np.bool_)
        if early_stop:
            for v in range(num_vns):
                for w in range(lanes):
                    hard[v, w] = tot[v, w] <= _ZERO
            satisfied[:] = True
            for c in range(len(cn_first)):
                parity[:] = 0
                for e in range(cn_first[c], cn_first[c] + cn_degree[c]):
                    v = edge_vn[e]
                    for w in range(lanes):
                        parity[w] ^= hard[v, w]
                for w in range(lanes):
                    satisfied[w] &= parity[w] == 0
        for w in range(lanes):
            if codeword[w] < 0 or not (used[w] == num_iter or satisfied[w]):
                continue
            total[codeword[w]] = tot[:, w]
            iterations[codeword[w]] = used[w]
            used[w] = 0
            c2v[:, w] = _ZERO
            if nxt < batch:
                ch[:, w] = llr[nxt]
                tot[:, w] = llr[nxt]
                codeword[w], nxt = nxt, nxt + 1
            else:
                ch[:, w], tot[:, w], codeword[w], busy = _ZERO, _ZERO, -1, busy - 1
    return total, iterations


class CompiledBP(EarlyStopBP):
    """:class:`~linksim.link.ldpc.EarlyStopBP` with its decoding loop in a compiled CPU kernel.

    Same interface and tables; float32 only; the whole batch in one call (no chunks: the kernel's
    working set is one codeword's messages).
    """

    def _build_tables(self, cn_update: str) -> None:
        super()._build_tables(cn_update)
        first, degree = [], []
        for row, cns, deg in self._buckets:
            first.append(row + deg * np.arange(cns))
            degree.append(np.full(cns, deg))
        self._tables = (self._edge_vn.cpu().numpy(), np.concatenate(first).astype(np.int64),
                        np.concatenate(degree).astype(np.int64), CN_UPDATES.index(cn_update))

    def compile_iterations(self) -> None:
        """Nothing to do: the kernel is compiled already."""

    def _chunk(self, device: torch.device) -> None:
        """The whole batch in one call."""

    def _decode(self, llr: torch.Tensor, num_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [num_vns, batch]`` float32 true LLRs -> (final totals ``[num_vns, batch]``, iterations
        ``[batch]`` int32), as :meth:`EarlyStopBP._decode`."""
        if llr.device.type != "cpu" or llr.dtype != torch.float32:
            raise ValueError(f"the compiled BP decoder runs float32 on a CPU, found {llr.dtype} on {llr.device}")
        edge_vn, cn_first, cn_degree, kind = self._tables
        clip = self._llr_max is not None
        total, iterations = _bp_lanes(np.ascontiguousarray(llr.T.numpy()), edge_vn, cn_first, cn_degree, kind, clip,
                                    _F(self._llr_max if clip else 0.0), num_iter, self.early_stop, _LANES)
        return torch.from_numpy(total).T, torch.from_numpy(iterations)


class LDPC5GCompiledDecoder(LDPC5GDecoder, CompiledBP):
    """Sionna's 5G LDPC decoder (rate recovery, pruning, interleaver) around the :class:`CompiledBP` core.

    Parameters, input and output as :class:`~linksim.link.ldpc.LDPC5GEarlyStopDecoder`; CPU and
    float32 only.
    """

    def __init__(self, encoder: LDPC5GEncoder, *, cn_update: str = "boxplus-phi", num_iter: int = 20,
                 early_stop: bool = True, hard_out: bool = True):
        super().__init__(encoder, cn_update="boxplus-phi", num_iter=num_iter, hard_out=hard_out)
        self.early_stop = early_stop
        self._build_tables(cn_update)
