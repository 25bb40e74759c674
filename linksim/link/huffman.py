"""Canonical length-limited Huffman coding (vectorised numpy encoder, table-driven decoder) and float16 symbols."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["MAX_CODE_LENGTH", "HuffmanCode", "float_to_symbols", "symbols_to_float"]

MAX_CODE_LENGTH = 25
"""Largest supported code length in bits: decoding reads 32-bit words at byte offsets, so ``length + 7 <= 32``."""

Padding = Literal["random", "zero"]


def _huffman_lengths(weights: np.ndarray) -> np.ndarray:
    """Optimal (unlimited) Huffman code lengths, int64 [n], for positive weights float [n], n >= 2 (two queues)."""
    n = weights.size
    order = np.argsort(weights, kind="stable")
    leaf_w = weights[order].tolist()
    node_w: list[float] = []  # internal nodes in creation order; their weights never decrease
    parent = [0] * (2 * n - 1)  # node ids: 0..n-1 leaves (ascending weight), n..2n-2 internal nodes, 2n-2 the root
    i = j = 0
    for k in range(n, 2 * n - 1):
        merged = 0.0
        for _ in range(2):
            if i < n and (j == len(node_w) or leaf_w[i] <= node_w[j]):
                parent[i], merged, i = k, merged + leaf_w[i], i + 1
            else:
                parent[n + j], merged, j = k, merged + node_w[j], j + 1
        node_w.append(merged)
    depth = [0] * (2 * n - 1)
    for k in range(2 * n - 3, -1, -1):  # parents have larger ids than their children
        depth[k] = depth[parent[k]] + 1
    lengths = np.empty(n, np.int64)
    lengths[order] = depth[:n]
    return lengths


def _limit_length_counts(counts: list[int], max_length: int) -> list[int]:
    """Re-balance ``counts[l]`` (number of codes of length l) of a complete code so that no length exceeds
    ``max_length``, keeping the Kraft sum at exactly 1. Two codes at the deepest level become one code one level up
    plus a sibling of the longest code shorter than that level (the classic JPEG Annex K.3 adjustment)."""
    counts = counts + [0] * max(0, max_length + 1 - len(counts))
    for level in range(len(counts) - 1, max_length, -1):
        while counts[level]:
            donor = level - 2
            while counts[donor] == 0:
                donor -= 1
            counts[level] -= 2
            counts[level - 1] += 1
            counts[donor + 1] += 2
            counts[donor] -= 1
    return counts[: max_length + 1]


class HuffmanCode:
    """A complete canonical prefix code over the alphabet ``0 .. alphabet_size - 1``.

    The code is fully determined by its per-symbol code lengths: symbols are sorted by (length, symbol index) and get
    consecutive code words (canonical assignment). Every symbol has a code word, so any symbol can be sent, and every
    bit sequence decodes (the code is complete: the Kraft sum is exactly 1).

    Attributes:
        alphabet_size: number of symbols n.
        lengths: uint8 [n], code length of each symbol in bits.
        codes: uint32 [n], code word of each symbol, right-aligned (the low ``lengths[s]`` bits, MSB sent first).
        max_length: the longest code length in bits (the decoder's look-up table has ``2**max_length`` bytes).
    """

    def __init__(self, lengths: np.ndarray) -> None:
        """Build the canonical code from per-symbol code lengths (int [n], n >= 2, each in [1, MAX_CODE_LENGTH],
        Kraft sum exactly 1)."""
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.size < 2 or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError("lengths must be a 1-D integer array with at least 2 entries")
        if lengths.min() < 1 or lengths.max() > MAX_CODE_LENGTH:
            raise ValueError(f"code lengths must lie in [1, {MAX_CODE_LENGTH}]")
        self.alphabet_size = int(lengths.size)
        self.max_length = int(lengths.max())
        self.lengths = lengths.astype(np.uint8)
        # Canonical order; a code word left-aligned to max_length bits is the running sum of 2**(max_length - length).
        self._order = np.argsort(self.lengths, kind="stable")
        self._sorted_lengths = self.lengths[self._order]
        self._span = np.int64(1) << (self.max_length - self._sorted_lengths.astype(np.int64))
        self._left = np.cumsum(self._span) - self._span
        if self._left[-1] + self._span[-1] != 1 << self.max_length:
            raise ValueError("code lengths must satisfy the Kraft equality (a complete prefix code)")
        self.codes = np.empty(self.alphabet_size, np.uint32)
        self.codes[self._order] = self._left >> (self.max_length - self._sorted_lengths.astype(np.int64))
        # Per length l: canonical rank and left-aligned value of the first code word of length l.
        self._first_rank = np.searchsorted(self._sorted_lengths, np.arange(self.max_length + 1))
        self._first_left = np.append(self._left, 1 << self.max_length)[self._first_rank]
        self._length_table: np.ndarray | None = None  # uint8 [2**max_length], code length by leading bits; lazy
        self._symbol_dtype = np.min_scalar_type(self.alphabet_size - 1)
        for array in (self.lengths, self.codes, self._order, self._sorted_lengths, self._span, self._left,
                      self._first_rank, self._first_left):
            array.setflags(write=False)

    # ----------------------------------------------------------------------------------------------------- building
    @classmethod
    def from_counts(cls, counts: np.ndarray, *, floor: float = 0.5, max_length: int = 24) -> HuffmanCode:
        """Huffman code for symbol counts (int/float [n], n >= 2, one entry per symbol).

        Args:
            counts: occurrences of each symbol in the training data.
            floor: pseudo-count (> 0) added to every symbol, so symbols never seen in training remain encodable.
                The default 0.5 is the Krichevsky-Trofimov estimator.
            max_length: longest allowed code length in bits, in [ceil(log2 n), MAX_CODE_LENGTH]; longer Huffman codes
                are shortened by a Kraft-preserving re-balancing of the length histogram (slightly sub-optimal).
        """
        counts = np.asarray(counts, np.float64)
        n = counts.size
        if counts.ndim != 1 or n < 2 or counts.min() < 0:
            raise ValueError("counts must be a 1-D non-negative array with at least 2 entries")
        if not floor > 0:
            raise ValueError("floor must be positive")
        if not (n - 1).bit_length() <= max_length <= MAX_CODE_LENGTH:
            raise ValueError(f"max_length must lie in [{(n - 1).bit_length()}, {MAX_CODE_LENGTH}] for {n} symbols")
        weights = counts + floor
        length_counts = np.bincount(_huffman_lengths(weights)).tolist()
        length_counts = _limit_length_counts(length_counts, max_length)
        lengths = np.empty(n, np.int64)  # the most frequent symbols get the shortest codes
        lengths[np.argsort(-weights, kind="stable")] = np.repeat(np.arange(len(length_counts)), length_counts)
        return cls(lengths)

    @classmethod
    def fit(cls, symbols: np.ndarray, alphabet_size: int, *, floor: float = 0.5, max_length: int = 24) -> HuffmanCode:
        """Huffman code fitted to the empirical histogram of training symbols (uint, any shape, < alphabet_size);
        ``floor`` and ``max_length`` as in :meth:`from_counts`."""
        symbols = np.asarray(symbols).ravel()
        if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet_size):
            raise ValueError(f"symbols must lie in [0, {alphabet_size})")
        counts = np.bincount(symbols, minlength=alphabet_size)
        return cls.from_counts(counts, floor=floor, max_length=max_length)

    # ------------------------------------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, list[int]]:
        """The code as a small JSON-friendly dict (the lengths determine a canonical code)."""
        return {"lengths": self.lengths.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, list[int]]) -> HuffmanCode:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(state["lengths"], np.int64))

    def save(self, path: str | Path) -> None:
        """Write the code lengths to an ``.npz`` file."""
        np.savez(path, lengths=self.lengths)

    @classmethod
    def load(cls, path: str | Path) -> HuffmanCode:
        """Read a code written by :meth:`save`."""
        with np.load(path) as data:
            return cls(data["lengths"])

    # ---------------------------------------------------------------------------------------------------- statistics
    def mean_length(self, symbols: np.ndarray) -> float:
        """Average code length in bits/symbol over the given symbols (uint, any shape)."""
        return float(self.lengths[self._check(symbols)].mean())

    def expected_length(self, probabilities: np.ndarray) -> float:
        """Expected code length in bits/symbol for symbol probabilities (float [n], summing to 1)."""
        return float(np.dot(np.asarray(probabilities, np.float64), self.lengths))

    # ------------------------------------------------------------------------------------------------------- coding
    def encode(self, symbols: np.ndarray) -> np.ndarray:
        """Encode symbols (uint, any shape, flattened in C order) into bits, uint8 [L] with values 0/1."""
        symbols = self._check(symbols).ravel()
        lengths = self.lengths[symbols]
        left_aligned = (self.codes[symbols].astype(np.uint64) << (32 - lengths).astype(np.uint64)).astype(">u4")
        bits = np.unpackbits(left_aligned.view(np.uint8)).reshape(-1, 32)
        return bits[np.arange(32, dtype=np.uint8) < lengths[:, None]]

    def decode(
        self, bits: np.ndarray, num_symbols: int, *, pad: Padding = "random", rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, int]:
        """Decode exactly ``num_symbols`` symbols from bits (any numeric [L]; nonzero means 1).

        Never raises on corrupted input. Decoding stops after ``num_symbols`` symbols (trailing bits, e.g. channel-code
        padding, are ignored). If the bits run out first (e.g. after bit errors changed code lengths), the missing
        symbols are filled per ``pad``: "random" draws them i.i.d. from the code's implied distribution
        ``2**-lengths`` with ``rng`` (required), "zero" uses symbol 0.

        Returns:
            symbols: [num_symbols], the smallest unsigned dtype holding ``alphabet_size - 1`` (uint16 for 2**16).
            num_decoded: how many leading symbols were actually decoded (< num_symbols means padding happened).
        """
        if pad not in ("random", "zero"):
            raise ValueError(f"unknown pad policy {pad!r}")
        if pad == "random" and rng is None:
            raise ValueError('pad="random" needs a numpy Generator rng')
        decoded = self._decode_stream(np.asarray(bits).ravel() != 0, num_symbols)
        out = np.zeros(num_symbols, self._symbol_dtype)
        out[: decoded.size] = decoded
        if pad == "random" and decoded.size < num_symbols:
            windows = rng.integers(0, 1 << self.max_length, num_symbols - decoded.size, dtype=np.uint32)
            out[decoded.size :] = self._symbols_at(windows, self._lengths_at(windows))
        return out, int(decoded.size)

    def encode_blocks(self, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encode each row of symbols (uint [num_blocks, block_len]) as an independent block.

        Returns:
            bits: uint8 [L], the blocks' bit streams concatenated.
            block_bits: int64 [num_blocks], the number of bits of each block (sums to L).
        """
        symbols = np.asarray(symbols)
        if symbols.ndim != 2:
            raise ValueError("symbols must have shape [num_blocks, block_len]")
        return self.encode(symbols), self.lengths[self._check(symbols)].sum(axis=1, dtype=np.int64)

    def decode_blocks(
        self,
        bits: np.ndarray,
        block_bits: np.ndarray,
        block_len: int,
        *,
        pad: Padding = "random",
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode blocks independently, so errors in one block cannot shift the symbols of another.

        Args:
            bits: concatenated received bits of all blocks ([L], nonzero means 1).
            block_bits: int [num_blocks], bits of each block in ``bits`` (sums to L); trailing padding bits of a block
                are allowed and ignored.
            block_len: symbols per block.
            pad, rng: as in :meth:`decode`.

        Returns:
            symbols: [num_blocks, block_len] (dtype as in :meth:`decode`); num_decoded: int64 [num_blocks].
        """
        bits = np.asarray(bits).ravel()
        block_bits = np.asarray(block_bits, np.int64)
        if block_bits.ndim != 1 or block_bits.min(initial=0) < 0 or block_bits.sum() != bits.size:
            raise ValueError("block_bits must be non-negative and sum to len(bits)")
        out = np.empty((block_bits.size, block_len), self._symbol_dtype)
        num_decoded = np.empty(block_bits.size, np.int64)
        ends = np.cumsum(block_bits)
        for b, (start, end) in enumerate(zip(ends - block_bits, ends, strict=True)):
            out[b], num_decoded[b] = self.decode(bits[start:end], block_len, pad=pad, rng=rng)
        return out, num_decoded

    # ----------------------------------------------------------------------------------------------------- internals
    def _check(self, symbols: np.ndarray) -> np.ndarray:
        """Validated integer symbols (any shape)."""
        symbols = np.asarray(symbols)
        if not np.issubdtype(symbols.dtype, np.integer):
            raise TypeError("symbols must be integers")
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self.alphabet_size):
            raise ValueError(f"symbols must lie in [0, {self.alphabet_size})")
        return symbols

    def _lengths_at(self, windows: np.ndarray) -> np.ndarray:
        """Lengths (uint8 [m]) of the code words that prefix the given max_length-bit windows (uint32 [m])."""
        if self._length_table is None:
            self._length_table = np.repeat(self._sorted_lengths, self._span)
        return self._length_table[windows]

    def _symbols_at(self, windows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Symbols whose code words (of the given lengths, uint8 [m]) prefix the max_length-bit windows (uint32 [m])."""
        shift = self.max_length - lengths.astype(np.int64)
        rank = self._first_rank[lengths] + ((windows - self._first_left[lengths]) >> shift)
        return self._order[rank].astype(self._symbol_dtype)

    def _decode_stream(self, bits: np.ndarray, num_symbols: int) -> np.ndarray:
        """Decode up to num_symbols symbols from bool bits [N]; returns the symbols decoded before the bits ran out.

        Vectorised over bit positions: the code length (hence the next code word start) is looked up for a code word
        starting at *every* bit position; only following that chain from position 0 is sequential (a tight loop).
        """
        n_bits = bits.size
        if n_bits == 0 or num_symbols <= 0:
            return np.empty(0, self._symbol_dtype)
        # The 32 bits starting at every byte, then the max_length-bit window starting at every bit (0-padded at end).
        packed = np.concatenate([np.packbits(bits), np.zeros(3, np.uint8)]).astype(np.uint32)
        words = packed[:-3] << 24 | packed[1:-2] << 16 | packed[2:-1] << 8 | packed[3:]
        windows = (words[:, None] << np.arange(8, dtype=np.uint32)).ravel()[:n_bits] >> np.uint32(32 - self.max_length)
        lengths = self._lengths_at(windows)
        chain = np.arange(n_bits + 1, dtype=np.int32 if n_bits < 2**31 - 64 else np.int64)
        chain[:-1] += lengths  # end of the code word starting at each bit = start of the next one
        complete = chain <= n_bits  # that code word lies inside the stream
        complete[-1] = False
        np.minimum(chain, n_bits, out=chain)  # position n_bits absorbs
        starts = np.empty(num_symbols, chain.dtype)
        start_view, chain_view = memoryview(starts), memoryview(chain)
        pos = 0
        for i in range(num_symbols):
            start_view[i] = pos
            pos = chain_view[pos]
        starts = starts[complete[starts]]  # a prefix of starts: the chain never leaves the absorbing end
        return self._symbols_at(windows[starts], lengths[starts])


def float_to_symbols(x: np.ndarray) -> np.ndarray:
    """Float features (any shape) -> float16 bit patterns, uint16 (same shape), rounding to nearest float16.
    Magnitudes beyond the float16 range saturate at +-65504 instead of becoming infinite; NaN stays NaN."""
    limit = np.finfo(np.float16).max
    return np.clip(np.asarray(x, np.float32), -limit, limit).astype(np.float16).view(np.uint16)


def symbols_to_float(symbols: np.ndarray) -> np.ndarray:
    """float16 bit patterns (uint, any shape) -> float32 (same shape). Patterns that are not finite (all-ones exponent:
    +-inf, NaN; only reachable through bit errors) and -0 are replaced by +0.0 (the spec's simple repair, §9.5)."""
    x = np.asarray(symbols).astype(np.uint16).view(np.float16).astype(np.float32)
    x[~np.isfinite(x) | (x == 0)] = 0.0
    return x
