"""5G LDPC belief-propagation decoding with early stopping.

Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` always runs ``num_iter`` flooding iterations on
the whole batch. :class:`LDPC5GEarlyStopDecoder` keeps Sionna's 5G rate recovery (puncturing,
shortening/filler bits, pruning, the 38.212 interleaver) and replaces only the BP core with
:class:`EarlyStopBP`:

* the same flooding schedule and the same message updates and clipping as Sionna's decoder, so with
  early stopping off its hard decisions equal Sionna's (up to float summation order);
* messages kept edge-major, ``[edges, batch]``, so that gathers and scatters move contiguous rows,
  and check nodes grouped by degree, so that no message is padding;
* after every iteration, a codeword whose hard decisions satisfy all parity checks is done: its
  decisions (a valid codeword) are kept and finished codewords leave the batch in bulk; decoding
  stops when none is left. The iterations each codeword used are kept in
  :attr:`EarlyStopBP.last_iterations`;
* on a CPU, large batches are decoded in cache-sized chunks.

Validated against Sionna's decoder in ``tests/test_ldpc.py``; measured in ``bench/link_throughput.py``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.fec.ldpc.decoding import LDPCBPDecoder

from linksim.accel import compiled

__all__ = ["CN_UPDATES", "MINSUM_SCALE", "EarlyStopBP", "LDPC5GEarlyStopDecoder"]

CN_UPDATES = ("boxplus-phi", "boxplus", "minsum", "offset-minsum", "normalized-minsum")

_PHI_CLIP = (8.5e-8, 16.635532)  # float32 range of phi's argument, as in Sionna
_ATANH_CLIP = 1 - 1e-7
_OFFSET = 0.5  # offset of offset-min-sum, as in Sionna
MINSUM_SCALE = 0.75  # default factor of normalised min-sum


def _phi(x: torch.Tensor) -> torch.Tensor:
    """``phi(x) = -log(tanh(x / 2)) = log1p(2 / expm1(x))`` for ``x >= 0`` (argument clipped as in Sionna)."""
    return torch.log1p(2 / torch.expm1(x.clamp(*_PHI_CLIP)))


def _cn_update(v2c: torch.Tensor, kind: str, llr_max: float | None, scale: float = MINSUM_SCALE) -> torch.Tensor:
    """Extrinsic update of check nodes that all have the same degree (``scale``: the factor of
    normalised min-sum).

    :input v2c: [cns, degree, batch] float32 variable-to-check LLRs.
    :output c2v: [cns, degree, batch] float32 check-to-variable LLRs.
    """
    sign = torch.where(v2c < 0, -1.0, 1.0)
    sign = sign * sign.prod(dim=1, keepdim=True)
    mag = v2c.abs()
    if kind == "boxplus-phi":
        p = _phi(mag)
        out = _phi(p.sum(dim=1, keepdim=True) - p)
    elif kind == "boxplus":
        t = torch.tanh(mag / 2).clamp_min(1e-12)
        e = (t.prod(dim=1, keepdim=True) / t).clamp(max=_ATANH_CLIP)
        out = 2 * torch.atanh(torch.where(e < 1e-7, 0.0, e))
    else:  # min-sum: the smallest magnitude elsewhere is the second minimum at the minimum's position
        two = mag.topk(2, dim=1, largest=False).values
        m1, m2 = two[:, :1], two[:, 1:]
        out = torch.where(mag == m1, m2, m1)
        if kind == "offset-minsum":
            out = (out - _OFFSET).clamp_min(0)
        elif kind == "normalized-minsum":
            out = out * scale
    out = sign * out
    return out if llr_max is None else out.clamp(-llr_max, llr_max)


class EarlyStopBP(LDPCBPDecoder):
    """Flooding BP core with per-codeword early stopping (used through :class:`LDPC5GEarlyStopDecoder`).

    Call it like Sionna's :class:`~sionna.phy.fec.ldpc.LDPCBPDecoder`: ``llr_ch [..., n]`` logits
    (``log p(1)/p(0)``) -> hard bits ``[..., n]`` float32 (or logits with ``hard_out=False``).
    Decoder state (``msg_v2c``, ``return_state``) is not supported.

    Check nodes are grouped by degree, so that no message is padding: the edges are stored check
    node by check node, one contiguous block of rows per degree.
    """

    early_stop: bool = True
    minsum_scale: float = MINSUM_SCALE
    last_iterations: torch.Tensor | None = None
    """[batch] int32: iterations each codeword of the last call used (``num_iter`` when it never
    satisfied all checks)."""

    def _build_tables(self, cn_update: str) -> None:
        if cn_update not in CN_UPDATES:
            raise ValueError(f"cn_update must be one of {', '.join(CN_UPDATES)}, found {cn_update!r}")
        self._cn_kind = cn_update
        pcm = sp.csr_matrix(self.pcm)
        pcm.sort_indices()
        degrees = np.diff(pcm.indptr)
        edge_vn, self._buckets = [], []  # buckets: (first edge row, check nodes, degree)
        row = 0
        for degree in np.unique(degrees):
            cns = np.flatnonzero(degrees == degree)
            edge_vn.append(np.concatenate([pcm.indices[pcm.indptr[c] : pcm.indptr[c + 1]] for c in cns]))
            self._buckets.append((row, len(cns), int(degree)))
            row += len(cns) * int(degree)
        self.register_buffer("_edge_vn", torch.as_tensor(np.concatenate(edge_vn), dtype=torch.int64,
                                                         device=self.device), persistent=False)

    def compile_iterations(self) -> None:
        """Run the BP iteration through ``torch.compile`` (see :mod:`linksim.accel`)."""
        self._iteration = compiled(self._iteration)

    def call(self, llr_ch: torch.Tensor, /, *, num_iter: int | None = None, msg_v2c=None) -> torch.Tensor:
        if msg_v2c is not None or self._return_state:
            raise ValueError("EarlyStopBP keeps no decoder state (msg_v2c / return_state)")
        num_iter = self._num_iter if num_iter is None else num_iter
        shape = llr_ch.shape
        llr = llr_ch.reshape(-1, self._num_vns).to(self.dtype)
        if self._llr_max is not None:
            llr = llr.clamp(-self._llr_max, self._llr_max)
        decided, self.last_iterations = self._decide(llr, num_iter)
        x = (decided <= 0).to(self.dtype) if self._hard_out else -decided
        return x.reshape(shape)

    def _decide(self, llr: torch.Tensor, num_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [batch, num_vns]`` channel logits (``log p(1)/p(0)``, clipped) -> (final totals
        ``[batch, num_vns]`` as true LLRs, ``log p(0)/p(1)``, iterations used ``[batch]`` int32)."""
        step = self._chunk(llr.device) or max(1, len(llr))
        parts = [self._decode(-part.T.contiguous(), num_iter) for part in llr.split(step)]  # true LLRs, edge-major
        if not parts:
            return llr, torch.zeros(0, dtype=torch.int32, device=llr.device)
        return torch.cat([d for d, _ in parts], dim=1).T, torch.cat([i for _, i in parts])

    def _chunk(self, device: torch.device) -> int | None:
        """Codewords per decoding pass: on a CPU about 2^20 messages (17 codewords of (3840, 15360),
        244 of (512, 1024)), which stay in the caches and run 1.3x faster per codeword than a batch of
        2,000; the whole batch on a GPU."""
        return max(1, (1 << 20) // len(self._edge_vn)) if device.type == "cpu" else None

    def _iteration(self, llr: torch.Tensor, total: torch.Tensor, c2v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One flooding iteration: ``llr, total [num_vns, batch]``, ``c2v [edges, batch]`` -> new
        (total, c2v)."""
        v2c = total.index_select(0, self._edge_vn) - c2v
        if self._llr_max is not None:
            v2c = v2c.clamp(-self._llr_max, self._llr_max)
        c2v = torch.cat([
            _cn_update(v2c[row : row + cns * degree].view(cns, degree, -1), self._cn_kind, self._llr_max,
                       self.minsum_scale)
            .view(cns * degree, -1)
            for row, cns, degree in self._buckets
        ])
        return llr.index_add(0, self._edge_vn, c2v), c2v

    def _unsatisfied(self, total: torch.Tensor) -> torch.Tensor:
        """[batch] bool: the hard decisions of ``total [num_vns, batch]`` violate a parity check."""
        hard = (total <= 0).to(torch.uint8).index_select(0, self._edge_vn)
        bad = [(hard[row : row + cns * degree].view(cns, degree, -1).sum(dim=1) & 1).any(dim=0)
               for row, cns, degree in self._buckets]
        return torch.stack(bad).any(dim=0)

    def _decode(self, llr: torch.Tensor, num_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [num_vns, batch]`` true LLRs -> (final totals ``[num_vns, batch]``, iterations used
        ``[batch]`` int32).

        A codeword's decisions are taken at the first iteration that satisfies all its checks. Leaving
        the batch costs a copy of every message, so finished codewords are dropped only once they are
        a quarter of those still in it (until then they are decoded on, their decisions already kept).
        """
        batch = llr.shape[1]
        active = torch.arange(batch, device=llr.device)
        decided = llr.clone()
        iterations = torch.full((batch,), num_iter, dtype=torch.int32, device=llr.device)
        c2v = llr.new_zeros(len(self._edge_vn), batch)
        total, finished = llr, torch.zeros(batch, dtype=torch.bool, device=llr.device)
        for it in range(num_iter):
            total, c2v = self._iteration(llr, total, c2v)
            if not self.early_stop or it == num_iter - 1:
                continue
            new = ~self._unsatisfied(total) & ~finished
            if not bool(new.any()):
                continue
            decided[:, active[new]] = total[:, new]
            iterations[active[new]] = it + 1
            finished |= new
            done = int(finished.sum())
            if done == len(active):
                return decided, iterations
            if 4 * done >= len(active):
                keep = (~finished).nonzero().squeeze(1)
                active, llr, total, c2v = active[keep], llr[:, keep], total[:, keep], c2v[:, keep]
                finished = finished[keep]
        left = ~finished
        decided[:, active[left]] = total[:, left]
        return decided, iterations


class LDPC5GEarlyStopDecoder(LDPC5GDecoder, EarlyStopBP):
    """Sionna's 5G LDPC decoder (rate recovery, pruning, interleaver) around the :class:`EarlyStopBP` core.

    The method resolution order puts :class:`EarlyStopBP` between :class:`LDPC5GDecoder` and
    Sionna's BP core, so ``LDPC5GDecoder``'s rate recovery calls our BP core.

    :param encoder: the :class:`~sionna.phy.fec.ldpc.LDPC5GEncoder` of the code.
    :param cn_update: ``boxplus-phi`` (exact BP, Sionna's default), ``boxplus``, ``minsum``,
        ``offset-minsum`` (Sionna's offset, 0.5) or ``normalized-minsum`` (the minimum times
        ``minsum_scale``).
    :param num_iter: maximum BP iterations.
    :param early_stop: let each codeword leave once its hard decisions satisfy all parity checks.
    :param hard_out: hard bits (float32 in {0, 1}) or logits.
    :param minsum_scale: the factor of normalised min-sum, in (0, 1].

    :input llr_ch: [..., n] float32 channel logits ``log p(1)/p(0)`` (Sionna's demapper convention).
    :output: [..., k] float32 information bits (hard) or logits.
    """

    def __init__(self, encoder: LDPC5GEncoder, *, cn_update: str = "boxplus-phi", num_iter: int = 20,
                 early_stop: bool = True, hard_out: bool = True, minsum_scale: float = MINSUM_SCALE):
        super().__init__(encoder, cn_update="boxplus-phi", num_iter=num_iter, hard_out=hard_out)
        self.early_stop, self.minsum_scale = early_stop, minsum_scale
        self._build_tables(cn_update)
