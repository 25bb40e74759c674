"""A compiled CPU core for linksim's 5G LDPC BP decoder (numba): the default on CPUs.

:class:`CompiledBP` replaces the decoding loop of :class:`~linksim.link.ldpc.EarlyStopBP` with one
numba kernel, compiled on first use and cached on disk (``cache=True``). It reads the same tables
(``_edge_vn`` and the degree buckets, built from Sionna's parity-check matrix) and performs the
torch core's float32 operations in the same order:

* ``v2c = total[vn] - c2v``, clipped to ``llr_max``;
* the check-node rule of the torch core (``boxplus-phi``, ``boxplus``, ``minsum``,
  ``offset-minsum``, ``normalized-minsum``) with the same argument clipping, sign rule, summation order
  and output clipping;
* ``total = llr + c2v`` summed edge by edge in edge order (as ``index_add``), accumulated while the
  check nodes are updated;
* after every iteration but the last, with early stop on, a codeword whose hard decisions
  (``total <= 0`` is bit 1) satisfy every parity check stops with those decisions.

``_LANES`` codewords are decoded side by side, the codeword axis innermost and of a length known when
compiling, so that every loop over it compiles to SIMD instructions; a lane whose codeword is done
takes the next codeword of the batch at once (its old messages are masked, not cleared).

``phi(x) = log1p(2 / expm1(x))`` is evaluated in float32 as three steps like torch's, ``expm1`` and
``log1p`` each by a polynomial after splitting off the power of two through the float's bits (no
libm call, so the loops vectorise): on 2 million arguments 7 % differ from torch's vectorised
kernels, by at most 3 units in the last place. That changes no decision: decisions and iteration
counts equal the torch core's in ``tests/test_ldpc_cpu.py`` and on the benchmark's codewords
(``bench/ldpc_decoder.py``, which also times it).

``schedule="layered"`` (this core only) updates each check node's variable nodes at once instead of
after the whole iteration (row-by-row layered BP): fewer iterations for the same frame error rate,
other decisions than flooding.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from linksim.link.ldpc import _ATANH_CLIP, _OFFSET, _PHI_CLIP, CN_UPDATES, MINSUM_SCALE, EarlyStopBP

__all__ = ["SCHEDULES", "CompiledBP", "LDPC5GCompiledDecoder"]

SCHEDULES = ("flooding", "layered")

_F = np.float32
_PHI_LO, _PHI_HI = _F(_PHI_CLIP[0]), _F(_PHI_CLIP[1])
_ATANH_HI, _E_LO, _T_LO = _F(_ATANH_CLIP), _F(1e-7), _F(1e-12)
_OFF, _ZERO, _HALF, _ONE, _TWO, _INF = _F(_OFFSET), _F(0.0), _F(0.5), _F(1.0), _F(2.0), _F(np.inf)
_INV_LN2 = _F(1 / math.log(2))
_LN2_HI = _F(0.693145751953125)  # ln 2 to 12 bits: k * _LN2_HI is exact for the exponents here
_LN2_LO = _F(math.log(2) - 0.693145751953125)
_EXPM1 = tuple(_F(1 / math.factorial(i)) for i in range(3, 9))  # Taylor coefficients r^3 .. r^8
_ATANH = tuple(_F(2 / i) for i in (3, 5, 7, 9))  # log1p's series in s^2
_SQRT_HALF_BITS = np.int32(0x3F3504F3)  # float32 bits of sqrt(1/2)
_LANES = 32  # codewords decoded side by side: 2 AVX-512 registers of float32
_JIT = {"cache": True, "error_model": "numpy"}  # numpy's error model: no zero-division branch, so loops vectorise


@numba.njit(inline="always", fastmath={"contract"}, **_JIT)
def _phi(x):
    """``phi(x) = log1p(2 / expm1(x))`` in float32, argument clipped as in Sionna (and the torch core)."""
    x = min(max(x, _PHI_LO), _PHI_HI)
    # expm1: x = k ln 2 + r, |r| <= ln 2 / 2; expm1(x) = 2^k expm1(r) + 2^k - 1
    k = np.floor(x * _INV_LN2 + _HALF)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    c3, c4, c5, c6, c7, c8 = _EXPM1
    p = r + r * r * (_HALF + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * (c7 + r * c8))))))
    t = np.int32((np.int32(k) + 127) << 23).view(np.float32)  # 2^k
    q = _TWO / (t * p + (t - _ONE))
    # log1p: 1 + q = 2^m (1 + g), sqrt(1/2) <= 1 + g < sqrt(2), and the rounding of 1 + q corrected;
    # log(1 + g) = g - s (g - R) with s = g / (2 + g), R = 2 s^2 / 3 + 2 s^4 / 5 + ...
    u = _ONE + q
    correction = (q - (u - _ONE)) / u
    bits = np.float32(u).view(np.int32)
    m = np.int32(np.int32(bits - _SQRT_HALF_BITS) >> 23)
    g = np.int32(bits - np.int32(m << 23)).view(np.float32) - _ONE
    s = g / (_TWO + g)
    z = s * s
    a3, a5, a7, a9 = _ATANH
    big_r = z * (a3 + z * (a5 + z * (a7 + z * a9)))
    mf = np.float32(m)
    return mf * _LN2_HI + (g - (s * (g - big_r) - (mf * _LN2_LO + correction)))


# fused multiply-adds ("contract") change only phi's polynomials: no other float32 expression here has
# the form a * b + c
@numba.njit(fastmath={"contract"}, **_JIT)
def _iterate(tot, ch, new, c2v, fresh, edge_vn, cn_first, cn_degree, kind, llr_max, scale, layered,
             v2c, mag, sign, acc, acc2, prod):
    """One BP iteration in every lane.

    :input tot: [num_vns, lanes] float32 totals after the last iteration (updated in place when
        ``layered``); ``ch``: the channel LLRs; ``new`` receives the flooding totals.
    :input c2v: [edges, lanes] float32 check-to-variable messages, updated in place; a lane whose
        ``fresh`` [lanes] is 0 reads them as 0 (a codeword just placed there).
    :input v2c, mag, sign: [max degree, lanes], ``acc``, ``acc2``, ``prod``: [lanes] float32 scratch.
    """
    if not layered:
        new[:] = ch
    for c in range(cn_first.shape[0]):
        first, degree = cn_first[c], cn_degree[c]
        for w in range(_LANES):
            prod[w] = _ONE
        for j in range(degree):
            e, v = first + j, edge_vn[first + j]
            for w in range(_LANES):
                x = min(max(tot[v, w] - c2v[e, w] * fresh[w], -llr_max), llr_max)
                v2c[j, w] = x
                sign[j, w] = -_ONE if x < _ZERO else _ONE
                prod[w] *= sign[j, w]
        if kind == 0:  # boxplus-phi
            for w in range(_LANES):
                acc[w] = _ZERO
            for j in range(degree):
                for w in range(_LANES):
                    mag[j, w] = _phi(abs(v2c[j, w]))
                    acc[w] += mag[j, w]
            for j in range(degree):
                for w in range(_LANES):
                    mag[j, w] = _phi(acc[w] - mag[j, w])
        elif kind == 1:  # boxplus
            for w in range(_LANES):
                acc[w] = _ONE
            for j in range(degree):
                for w in range(_LANES):
                    mag[j, w] = max(np.tanh(abs(v2c[j, w]) / _TWO), _T_LO)
                    acc[w] *= mag[j, w]
            for j in range(degree):
                for w in range(_LANES):
                    t = min(acc[w] / mag[j, w], _ATANH_HI)
                    mag[j, w] = _TWO * np.arctanh(_ZERO if t < _E_LO else t)
        else:  # min-sum (2), offset (3), normalised (4): the smallest magnitude elsewhere
            m1, m2 = acc, acc2
            m1[:], m2[:] = _INF, _INF
            for j in range(degree):
                for w in range(_LANES):
                    x = abs(v2c[j, w])
                    m2[w] = m1[w] if x < m1[w] else min(x, m2[w])
                    m1[w] = min(x, m1[w])
            for j in range(degree):
                for w in range(_LANES):
                    x = m2[w] if abs(v2c[j, w]) == m1[w] else m1[w]
                    mag[j, w] = max(x - _OFF, _ZERO) if kind == 3 else (x * scale if kind == 4 else x)
        for j in range(degree):
            e, v = first + j, edge_vn[first + j]
            if layered:
                for w in range(_LANES):
                    x = min(max(sign[j, w] * prod[w] * mag[j, w], -llr_max), llr_max)
                    tot[v, w] += x - c2v[e, w] * fresh[w]
                    c2v[e, w] = x
            else:
                for w in range(_LANES):
                    x = min(max(sign[j, w] * prod[w] * mag[j, w], -llr_max), llr_max)
                    c2v[e, w] = x
                    new[v, w] += x


@numba.njit(**_JIT)
def _unsatisfied(tot, edge_vn, cn_first, cn_degree, hard, parity, bad):
    """``bad`` [lanes] uint8 <- 1 where the hard decisions of ``tot`` [num_vns, lanes] violate a parity
    check; stops early once every lane has one. ``hard`` [num_vns, lanes], ``parity`` [lanes]: scratch."""
    for v in range(tot.shape[0]):
        for w in range(_LANES):
            hard[v, w] = tot[v, w] <= _ZERO
    bad[:] = 0
    for c in range(cn_first.shape[0]):
        parity[:] = 0
        for e in range(cn_first[c], cn_first[c] + cn_degree[c]):
            v = edge_vn[e]
            for w in range(_LANES):
                parity[w] ^= hard[v, w]
        every = np.uint8(1)
        for w in range(_LANES):
            bad[w] |= parity[w]
            every &= bad[w]
        if every:
            return


@numba.njit(**_JIT)
def _bp_lanes(logits, edge_vn, cn_first, cn_degree, kind, llr_max, scale, num_iter, early_stop, layered):
    """BP decoding of ``_LANES`` codewords at a time, a lane refilled with the next codeword as soon as
    its codeword is done.

    :input logits: [batch, num_vns] float32 channel logits (``log p(1)/p(0)``), C-contiguous.
    :input edge_vn: [edges] int64, the variable node of each edge (edges grouped by check node).
    :input cn_first, cn_degree: [num_cns] int64, each check node's first edge and degree.
    :input kind: the index of the check-node rule in :data:`~linksim.link.ldpc.CN_UPDATES`.
    :input llr_max: messages clipped to ``[-llr_max, llr_max]`` (``inf``: no clipping).
    :input scale: the factor of normalised min-sum.
    :output total: [batch, num_vns] float32 final totals as true LLRs (``log p(0)/p(1)``; a valid
        codeword's where it stopped early).
    :output iterations: [batch] int32 iterations used.
    """
    batch, num_vns = logits.shape
    edges, degree_max = edge_vn.shape[0], cn_degree.max() if len(cn_degree) else 1
    total = np.empty_like(logits)
    iterations = np.full(batch, num_iter, dtype=np.int32)
    ch = np.zeros((num_vns, _LANES), dtype=np.float32)  # channel LLRs of the codeword in each lane
    tot, new = np.zeros_like(ch), np.zeros_like(ch)
    c2v = np.zeros((edges, _LANES), dtype=np.float32)
    fresh = np.zeros(_LANES, dtype=np.float32)  # 0: the lane's c2v are stale (read as 0), 1: valid
    v2c = np.empty((degree_max, _LANES), dtype=np.float32)
    mag, sign = np.empty_like(v2c), np.empty_like(v2c)
    acc, acc2, prod = np.empty(_LANES, dtype=np.float32), np.empty(_LANES, dtype=np.float32), np.empty(_LANES, dtype=np.float32)
    hard = np.empty((num_vns, _LANES), dtype=np.uint8)
    parity, bad = np.empty(_LANES, dtype=np.uint8), np.ones(_LANES, dtype=np.uint8)
    codeword = np.full(_LANES, -1, dtype=np.int64)  # the codeword in each lane, -1: idle
    used = np.zeros(_LANES, dtype=np.int32)  # iterations run on it
    nxt, busy = 0, 0
    for w in range(min(_LANES, batch)):
        for v in range(num_vns):
            ch[v, w] = tot[v, w] = -logits[nxt, v]
        codeword[w], nxt, busy = nxt, nxt + 1, busy + 1
    while busy:
        _iterate(tot, ch, new, c2v, fresh, edge_vn, cn_first, cn_degree, kind, llr_max, scale, layered,
                 v2c, mag, sign, acc, acc2, prod)
        if not layered:
            tot, new = new, tot
        fresh[:] = _ONE
        used += 1
        if early_stop:
            _unsatisfied(tot, edge_vn, cn_first, cn_degree, hard, parity, bad)
        for w in range(_LANES):
            if codeword[w] < 0 or (used[w] < num_iter and bad[w]):
                continue
            for v in range(num_vns):
                total[codeword[w], v] = tot[v, w]
            iterations[codeword[w]] = used[w]
            used[w], fresh[w] = 0, _ZERO
            if nxt < batch:
                for v in range(num_vns):
                    ch[v, w] = tot[v, w] = -logits[nxt, v]
                codeword[w], nxt = nxt, nxt + 1
            else:
                ch[:, w], tot[:, w], codeword[w], busy = _ZERO, _ZERO, -1, busy - 1
    return total, iterations


class CompiledBP(EarlyStopBP):
    """:class:`~linksim.link.ldpc.EarlyStopBP` with its decoding loop in a compiled CPU kernel.

    Same interface and tables; the whole batch in one call (no chunks: the kernel's working set is
    ``_LANES`` codewords' messages). Inputs that are not float32 on a CPU go to the torch core, or raise
    when ``cpu_only``.
    """

    cpu_only: bool = False
    schedule: str = "flooding"

    def _build_tables(self, cn_update: str) -> None:
        super()._build_tables(cn_update)
        first, degree = [], []
        for row, cns, deg in self._buckets:
            first.append(row + deg * np.arange(cns))
            degree.append(np.full(cns, deg))
        self._tables = (self._edge_vn.cpu().numpy(), np.concatenate(first).astype(np.int64),
                        np.concatenate(degree).astype(np.int64), CN_UPDATES.index(cn_update))

    def _decide(self, llr: torch.Tensor, num_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`EarlyStopBP._decide`, in the compiled kernel when ``llr`` is float32 on a CPU."""
        if llr.device.type != "cpu" or llr.dtype != torch.float32:
            if self.cpu_only or self.schedule != "flooding":
                raise ValueError(f"the compiled BP decoder (implementation: cpu, or schedule: {self.schedule}) runs "
                                 f"float32 on a CPU, found {llr.dtype} on {llr.device}")
            return super()._decide(llr, num_iter)
        edge_vn, cn_first, cn_degree, kind = self._tables
        llr_max = _F(np.inf if self._llr_max is None else self._llr_max)
        total, iterations = _bp_lanes(np.ascontiguousarray(llr.detach().numpy()), edge_vn, cn_first, cn_degree, kind,
                                      llr_max, _F(self.minsum_scale), num_iter, self.early_stop,
                                      self.schedule == "layered")
        return torch.from_numpy(total), torch.from_numpy(iterations)


class LDPC5GCompiledDecoder(LDPC5GDecoder, CompiledBP):
    """Sionna's 5G LDPC decoder (rate recovery, pruning, interleaver) around the :class:`CompiledBP` core.

    Parameters, input and output as :class:`~linksim.link.ldpc.LDPC5GEarlyStopDecoder`, and
    ``schedule`` (``flooding`` or ``layered``) and ``cpu_only`` (raise instead of using the torch core
    for inputs that are not float32 on a CPU; ``layered`` always does).
    """

    def __init__(self, encoder: LDPC5GEncoder, *, cn_update: str = "boxplus-phi", num_iter: int = 20,
                 early_stop: bool = True, hard_out: bool = True, minsum_scale: float = MINSUM_SCALE,
                 schedule: str = "flooding", cpu_only: bool = False):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, found {schedule!r}")
        super().__init__(encoder, cn_update="boxplus-phi", num_iter=num_iter, hard_out=hard_out)
        self.early_stop, self.minsum_scale, self.schedule, self.cpu_only = early_stop, minsum_scale, schedule, cpu_only
        self._build_tables(cn_update)
