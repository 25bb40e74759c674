"""Tests for the canonical Huffman coder and the float16 symbol helpers (linksim.link.huffman)."""

from __future__ import annotations

import heapq
import time

import numpy as np
import pytest

from linksim.link.huffman import MAX_CODE_LENGTH, HuffmanCode, float_to_symbols, symbols_to_float


def _kraft_sum(lengths: np.ndarray) -> float:
    return float(np.sum(2.0 ** -lengths.astype(np.float64)))


def _entropy(symbols: np.ndarray) -> float:
    p = np.bincount(symbols) / symbols.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _reference_huffman_cost(weights: np.ndarray) -> float:
    """Sum over all merges of the merged weight = sum(weight * length) of an optimal prefix code."""
    heap = weights.tolist()
    heapq.heapify(heap)
    cost = 0.0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


def _skewed(rng: np.random.Generator, size: int, alphabet: int = 256) -> np.ndarray:
    return np.minimum(rng.geometric(0.15, size) - 1, alphabet - 1)


@pytest.mark.parametrize("alphabet", [256, 1 << 16])
def test_round_trip_uniform(alphabet: int) -> None:
    rng = np.random.default_rng(1)
    code = HuffmanCode.fit(rng.integers(0, alphabet, 200_000), alphabet)
    symbols = rng.integers(0, alphabet, 50_000).astype(np.uint16)
    bits = code.encode(symbols)
    assert bits.dtype == np.uint8 and set(np.unique(bits)) <= {0, 1}
    assert bits.size == code.lengths[symbols].sum()
    decoded, num_decoded = code.decode(bits, symbols.size, pad="zero")
    assert num_decoded == symbols.size
    np.testing.assert_array_equal(decoded, symbols)
    assert decoded.dtype == (np.uint8 if alphabet == 256 else np.uint16)
    assert code.mean_length(symbols) == pytest.approx(np.log2(alphabet), abs=0.5)


def test_round_trip_skewed_and_near_entropy() -> None:
    rng = np.random.default_rng(2)
    symbols = _skewed(rng, 100_000)
    code = HuffmanCode.fit(symbols, 256, floor=1e-6)
    decoded, num_decoded = code.decode(code.encode(symbols), symbols.size, pad="zero")
    assert num_decoded == symbols.size
    np.testing.assert_array_equal(decoded, symbols)
    entropy = _entropy(symbols)
    assert entropy <= code.mean_length(symbols) < entropy + 1
    probabilities = np.bincount(symbols, minlength=256) / symbols.size
    assert code.expected_length(probabilities) == pytest.approx(code.mean_length(symbols))


def test_unlimited_lengths_are_optimal() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 1000, 500) * (rng.random(500) < 0.7)
    code = HuffmanCode.from_counts(counts, floor=0.5, max_length=MAX_CODE_LENGTH)
    weights = counts + 0.5
    assert float(weights @ code.lengths) == pytest.approx(_reference_huffman_cost(weights), rel=1e-12)


def test_unseen_symbol_is_encodable() -> None:
    rng = np.random.default_rng(4)
    train = rng.integers(0, 100, 10_000)  # symbols 100..65535 never seen
    code = HuffmanCode.fit(train, 1 << 16)
    message = np.array([5, 65535, 100, 7, 40_000, 5], np.uint16)
    decoded, num_decoded = code.decode(code.encode(message), message.size, pad="zero")
    assert num_decoded == message.size
    np.testing.assert_array_equal(decoded, message)
    assert code.lengths[65535] > code.lengths[5]


def test_float16_feature_round_trip() -> None:
    rng = np.random.default_rng(5)
    features = (rng.standard_normal((100, 56)) * 2).astype(np.float32)
    features[0, :4] = [0.0, -0.0, 1e-9, -3e-8]  # zero, negative zero, float16 underflow
    symbols = float_to_symbols(features)
    assert symbols.dtype == np.uint16 and symbols.shape == features.shape
    code = HuffmanCode.fit(float_to_symbols(rng.standard_normal(50_000)), 1 << 16)
    bits, block_bits = code.encode_blocks(symbols.reshape(2, -1))
    decoded, num_decoded = code.decode_blocks(bits, block_bits, 50 * 56, pad="zero")
    np.testing.assert_array_equal(num_decoded, [50 * 56, 50 * 56])
    restored = symbols_to_float(decoded.reshape(features.shape))
    assert restored.dtype == np.float32
    np.testing.assert_array_equal(restored, features.astype(np.float16).astype(np.float32))
    assert not np.signbit(restored[0, :2]).any()


def test_float_helpers_repair_and_saturate() -> None:
    patterns = np.array([0x7C00, 0xFC00, 0x7E00, 0xFFFF, 0x8000, 0x3C00, 0xBC00], np.uint16)  # inf -inf nan nan -0 1 -1
    values = symbols_to_float(patterns)
    np.testing.assert_array_equal(values, [0, 0, 0, 0, 0, 1, -1])
    assert not np.signbit(values[:5]).any()
    saturated = symbols_to_float(float_to_symbols(np.array([1e6, -1e6, 65504.0], np.float32)))
    np.testing.assert_array_equal(saturated, [65504, -65504, 65504])


def test_bit_errors_never_raise_and_keep_length() -> None:
    rng = np.random.default_rng(6)
    symbols = float_to_symbols(rng.standard_normal(2_000))
    code = HuffmanCode.fit(float_to_symbols(rng.standard_normal(20_000)), 1 << 16)
    bits = code.encode(symbols)
    for trial in range(50):
        corrupted = bits.copy()
        flips = rng.integers(0, bits.size, 1 + trial % 5)
        corrupted[flips] ^= 1
        decoded, num_decoded = code.decode(corrupted, symbols.size, rng=rng)
        assert decoded.shape == symbols.shape and 0 <= num_decoded <= symbols.size
    garbage = rng.integers(0, 2, 500)
    decoded, num_decoded = code.decode(garbage, symbols.size, pad="zero")
    assert decoded.shape == symbols.shape and num_decoded < symbols.size
    assert np.all(decoded[num_decoded:] == 0)
    flipped = bits.copy()
    flipped[0] ^= 1
    assert code.decode(flipped, symbols.size, rng=rng)[0][0] != symbols[0]


def test_truncated_stream_is_padded_and_reported() -> None:
    rng = np.random.default_rng(7)
    symbols = _skewed(rng, 1_000)
    code = HuffmanCode.fit(symbols, 256)
    bits = code.encode(symbols)
    cut = bits.size // 2
    complete = int(np.sum(np.cumsum(code.lengths[symbols]) <= cut))
    decoded, num_decoded = code.decode(bits[:cut], symbols.size, pad="zero")
    assert num_decoded == complete < symbols.size
    np.testing.assert_array_equal(decoded[:complete], symbols[:complete])
    assert np.all(decoded[complete:] == 0)
    padded_a, _ = code.decode(bits[:cut], symbols.size, rng=np.random.default_rng(0))
    padded_b, _ = code.decode(bits[:cut], symbols.size, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(padded_a, padded_b)
    np.testing.assert_array_equal(padded_a[:complete], symbols[:complete])
    # Trailing bits (e.g. channel-code padding) are ignored: decoding stops after num_symbols.
    extra = np.concatenate([bits, rng.integers(0, 2, 300, dtype=np.uint8)])
    decoded, num_decoded = code.decode(extra.astype(np.float32), symbols.size, pad="zero")
    assert num_decoded == symbols.size
    np.testing.assert_array_equal(decoded, symbols)


def test_random_padding_follows_code_distribution() -> None:
    code = HuffmanCode.from_counts(np.array([8, 4, 2, 1, 1]), floor=1e-9)
    np.testing.assert_array_equal(code.lengths, [1, 2, 3, 4, 4])
    padded, num_decoded = code.decode(np.zeros(0, np.uint8), 40_000, rng=np.random.default_rng(8))
    assert num_decoded == 0
    frequencies = np.bincount(padded, minlength=5) / padded.size
    np.testing.assert_allclose(frequencies, 2.0 ** -code.lengths.astype(float), atol=0.01)


def test_canonical_code_is_prefix_free() -> None:
    rng = np.random.default_rng(9)
    code = HuffmanCode.from_counts(rng.integers(0, 10_000, 700) ** 2)
    assert _kraft_sum(code.lengths) == 1.0
    words = sorted(format(int(c), f"0{int(n)}b") for c, n in zip(code.codes, code.lengths, strict=True))
    assert len(set(words)) == len(words)
    assert not any(b.startswith(a) for a, b in zip(words, words[1:], strict=False))
    # Canonical: within one length, code words increase with the symbol index.
    for length in np.unique(code.lengths):
        assert np.all(np.diff(code.codes[code.lengths == length].astype(np.int64)) == 1)


@pytest.mark.parametrize("max_length", [8, 12, 24])
def test_max_length_respected_for_fibonacci_counts(max_length: int) -> None:
    fibonacci = [1, 1]
    while len(fibonacci) < 40:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    counts = np.array(fibonacci, np.float64)
    unlimited = HuffmanCode.from_counts(counts, floor=1e-9, max_length=MAX_CODE_LENGTH)
    assert unlimited.max_length == MAX_CODE_LENGTH  # the Huffman depth (39) had to be limited
    code = HuffmanCode.from_counts(counts, floor=1e-9, max_length=max_length)
    assert code.max_length == max_length
    assert _kraft_sum(code.lengths) == 1.0
    assert np.all(np.diff(code.lengths.astype(int)) <= 0)  # counts increase with the index: lengths must not
    symbols = np.random.default_rng(10).choice(40, 5_000, p=counts / counts.sum())
    decoded, num_decoded = code.decode(code.encode(symbols), symbols.size, pad="zero")
    assert num_decoded == symbols.size
    np.testing.assert_array_equal(decoded, symbols)
    entropy = _entropy(symbols)
    assert code.mean_length(symbols) < entropy + 1


def test_blocks_are_independent() -> None:
    rng = np.random.default_rng(11)
    symbols = _skewed(rng, (6, 400))
    code = HuffmanCode.fit(symbols, 256)
    bits, block_bits = code.encode_blocks(symbols)
    assert block_bits.sum() == bits.size
    np.testing.assert_array_equal(bits, code.encode(symbols.ravel()))
    # Corrupt block 2 and append channel-code padding to block 4.
    starts = np.concatenate([[0], np.cumsum(block_bits)])
    pieces = [bits[starts[b] : starts[b + 1]].copy() for b in range(6)]
    pieces[2][:40] ^= 1
    pieces[4] = np.concatenate([pieces[4], np.ones(77, np.uint8)])
    received = np.concatenate(pieces)
    decoded, num_decoded = code.decode_blocks(received, [p.size for p in pieces], 400, rng=rng)
    assert decoded.shape == symbols.shape and num_decoded.shape == (6,)
    for b in (0, 1, 3, 4, 5):
        assert num_decoded[b] == 400
        np.testing.assert_array_equal(decoded[b], symbols[b])
    assert not np.array_equal(decoded[2], symbols[2])


def test_serialisation_round_trip(tmp_path) -> None:
    code = HuffmanCode.fit(_skewed(np.random.default_rng(12), 5_000), 256)
    for restored in (HuffmanCode.from_dict(code.to_dict()), None):
        if restored is None:
            code.save(tmp_path / "code.npz")
            restored = HuffmanCode.load(tmp_path / "code.npz")
        assert restored.alphabet_size == 256
        np.testing.assert_array_equal(restored.lengths, code.lengths)
        np.testing.assert_array_equal(restored.codes, code.codes)


def test_invalid_inputs() -> None:
    code = HuffmanCode.from_counts(np.ones(16))
    with pytest.raises(ValueError):
        code.encode(np.array([16]))
    with pytest.raises(TypeError):
        code.encode(np.array([1.0]))
    with pytest.raises(ValueError):
        code.decode(np.zeros(8), 2)  # pad="random" without rng
    with pytest.raises(ValueError):
        code.decode(np.zeros(8), 2, pad="last")
    with pytest.raises(ValueError):
        HuffmanCode(np.array([1, 2, 2, 2]))  # Kraft sum > 1
    with pytest.raises(ValueError):
        HuffmanCode(np.array([1, 2]))  # incomplete code
    with pytest.raises(ValueError):
        HuffmanCode.from_counts(np.ones(300), max_length=8)  # 300 symbols need 9 bits
    with pytest.raises(ValueError):
        code.decode_blocks(np.zeros(10), [4, 4], 3, pad="zero")


def throughput(num_symbols: int = 1_000_000, seed: int = 0) -> tuple[float, float]:
    """Encode/decode throughput (symbols/s, CPU time) for float16 Gaussian features; printed, not asserted."""
    rng = np.random.default_rng(seed)
    code = HuffmanCode.fit(float_to_symbols(rng.standard_normal(2_000_000)), 1 << 16)
    symbols = float_to_symbols(rng.standard_normal(num_symbols))
    code.decode(code.encode(symbols[:1000]), 1000, pad="zero")  # build the decoding table
    start = time.process_time()
    bits = code.encode(symbols)
    encode_rate = num_symbols / (time.process_time() - start)
    start = time.process_time()
    decoded, _ = code.decode(bits, num_symbols, pad="zero")
    decode_rate = num_symbols / (time.process_time() - start)
    assert np.array_equal(decoded, symbols)
    print(f"{code.mean_length(symbols):.2f} bit/symbol, encode {encode_rate:.3g} symbols/s, "
          f"decode {decode_rate:.3g} symbols/s")
    return encode_rate, decode_rate


if __name__ == "__main__":
    throughput()
