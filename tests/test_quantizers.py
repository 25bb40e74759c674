"""Scalar quantisers: uniform error bound and clipping, bit labels, float16 patterns, the learned MLP quantiser."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conftest import seeded
from linksim.link.huffman import float_to_symbols
from linksim.quantizers import (
    LearnedQuantizer,
    UniformQuantizer,
    bits_to_float16,
    bits_to_int,
    fit_range,
    float16_bits,
    float16_roundtrip,
    int_to_bits,
)


@pytest.mark.parametrize("bits", [1, 2, 4, 6])
def test_uniform_error_is_at_most_half_a_step_inside_and_clips_outside(bits):
    q = UniformQuantizer(bits, -1.5, 2.5)
    assert q.step == pytest.approx(4.0 / (2**bits - 1))
    x = torch.linspace(-1.5, 2.5, 10001)
    err = (q(x) - x).abs()
    assert err.max() <= q.step / 2 * (1 + 1e-5) + 1e-6
    levels = q.quantize(x)
    assert levels.dtype == torch.int64 and levels.min() == 0 and levels.max() == 2**bits - 1
    # the reconstruction values are the levels, endpoints included
    torch.testing.assert_close(q.dequantize(torch.tensor([0, 2**bits - 1])), torch.tensor([-1.5, 2.5]))
    outside = torch.tensor([-100.0, -1.6, 2.51, 1e9, float("inf"), -float("inf")])
    torch.testing.assert_close(q(outside), torch.tensor([-1.5, -1.5, 2.5, 2.5, 2.5, -1.5]))
    assert torch.isfinite(q(torch.tensor([float("nan")]))).all()


def test_uniform_forward_has_a_straight_through_gradient():
    x = torch.randn(50, generator=seeded(0)).requires_grad_(True)
    UniformQuantizer(3, -1.0, 1.0)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_uniform_bits_round_trip_and_every_pattern_dequantises_finite(bits):
    q = UniformQuantizer(bits, -1.0, 1.0)
    levels = torch.arange(2**bits)
    b = q.to_bits(levels)
    assert b.shape == (2**bits, bits) and b.dtype == torch.float32
    assert torch.equal(q.from_bits(b), levels)
    # MSB first, natural binary
    assert q.to_bits(torch.tensor([1])).tolist() == [[0.0] * (bits - 1) + [1.0]]
    assert q.to_bits(torch.tensor([2 ** (bits - 1)])).tolist() == [[1.0] + [0.0] * (bits - 1)]
    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=bits)))
    values = q.dequantize(q.from_bits(patterns))
    assert torch.isfinite(values).all() and values.min() >= -1.0 and values.max() <= 1.0
    with pytest.raises(ValueError, match="bits per value"):
        q.from_bits(torch.zeros(4, bits + 1))


def test_int_bits_helpers_and_fit_range():
    v = torch.randint(0, 1 << 12, (7, 5), generator=seeded(1))
    assert torch.equal(bits_to_int(int_to_bits(v, 12)), v)
    x = torch.tensor([0.5, -2.0, 3.0, float("nan"), 1.0])
    assert fit_range(x) == (-2.0, 3.0)
    q = UniformQuantizer.fit(x, 4)
    assert (q.low, q.high, q.bits) == (-2.0, 3.0, 4)
    lo, hi = fit_range(torch.randn(100000, generator=seeded(2)), coverage=0.95)
    assert lo == pytest.approx(-1.96, abs=0.05) and hi == pytest.approx(1.96, abs=0.05)
    assert fit_range(torch.ones(3)) == (1.0, 2.0)
    with pytest.raises(ValueError):
        UniformQuantizer(0, 0.0, 1.0)
    with pytest.raises(ValueError):
        UniformQuantizer(2, 1.0, 1.0)


def test_float16_round_trip_bits_and_corrupted_patterns():
    x = torch.cat([torch.randn(1000, generator=seeded(3)) * 100, torch.tensor([0.0, 1e-8, 7e4, -1e6, 65504.0])])
    y = float16_roundtrip(x)
    torch.testing.assert_close(y, x.clamp(-65504, 65504).half().float())
    b = float16_bits(x)
    assert b.shape == (x.numel(), 16) and ((b == 0) | (b == 1)).all()
    assert torch.equal(bits_to_float16(b), y)  # finite values survive the bit round trip exactly
    np.testing.assert_array_equal(bits_to_int(b).numpy(), float_to_symbols(x.numpy()).astype(np.int64))
    assert float16_bits(torch.tensor([1.0])).tolist() == [[0, 0, 1, 1, 1, 1] + [0] * 10]  # 0x3C00, MSB first
    # every one of the 65,536 patterns decodes to a finite value (inf/NaN patterns -> 0)
    every = int_to_bits(torch.arange(1 << 16), 16)
    values = bits_to_float16(every)
    assert torch.isfinite(values).all() and values.abs().max() == 65504
    assert bits_to_float16(int_to_bits(torch.tensor([0x7C00, 0xFC00, 0x7E00]), 16)).tolist() == [0.0, 0.0, 0.0]
    xg = x.clone().requires_grad_(True)
    float16_roundtrip(xg).sum().backward()
    assert torch.equal(xg.grad, torch.ones_like(x))


def _train(q: LearnedQuantizer, steps: int = 600, lr: float = 2e-2) -> float:
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    g = seeded(4)
    for _ in range(steps):
        x = torch.randn(1024, generator=g)
        loss = (q(x) - x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt = torch.randn(50000, generator=seeded(5))
    with torch.no_grad():
        return float((q(xt) - xt).square().mean())


def _uniform_mse(bits: int, x: torch.Tensor, half_range: float) -> float:
    return float((UniformQuantizer(bits, -half_range, half_range)(x) - x).square().mean())


def test_learned_quantizer_starts_as_a_uniform_quantizer_of_bits_plus_one_levels():
    x = torch.linspace(-3, 3, 1001)
    x = x[((x.unsqueeze(-1) - torch.tensor([-1 / 3, 1 / 3, 0.0])).abs() > 1e-3).all(-1)]  # off the thresholds
    with torch.no_grad():
        torch.testing.assert_close(LearnedQuantizer(1)(x), UniformQuantizer(1, -1.0, 1.0)(x))
        torch.testing.assert_close(LearnedQuantizer(3)(x), UniformQuantizer(2, -1.0, 1.0)(x))  # 4 levels
    with pytest.raises(ValueError, match="init_range"):
        LearnedQuantizer(2, init_range=(1.0, -1.0))


def test_learned_quantizer_trains_on_mse_to_the_uniform_error_at_one_bit():
    q = LearnedQuantizer(1)
    xt = torch.randn(50000, generator=seeded(5))
    best_uniform = min(_uniform_mse(1, xt, a / 100) for a in range(40, 200, 2))  # ~0.363 (+-0.8, Lloyd-Max)
    mse = _train(q)
    assert mse <= 1.02 * best_uniform
    b = q.quantize(xt[:10])
    assert b.shape == (10, 1) and ((b == 0) | (b == 1)).all()


@pytest.mark.parametrize("init_range", [(-1.0, 1.0), (-3.0, 3.0), (-0.5, 0.5)])
def test_learned_quantizer_at_two_bits_reaches_its_three_cell_optimum_and_beats_a_min_max_range(init_range):
    q = LearnedQuantizer(2, init_range)
    xt = torch.randn(50000, generator=seeded(5))
    mse = _train(q)
    # a one-layer sigmoid quantiser has at most bits + 1 cells: the 3-level Lloyd-Max MSE of N(0,1) is 0.1902
    assert mse <= 0.1902 * 1.03
    assert mse < _uniform_mse(2, xt, float(xt.abs().max()))  # the per-tensor min/max uniform range
    # gradients reach both MLPs through the straight-through bits
    q.zero_grad()
    (q(xt[:100]) - xt[:100]).square().mean().backward()
    assert q.encoder.weight.grad.abs().sum() > 0 and q.decoder.weight.grad.abs().sum() > 0
    # any bit pattern dequantises to a finite value
    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))
    assert torch.isfinite(q.dequantize(patterns)).all()
