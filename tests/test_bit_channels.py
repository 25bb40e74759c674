"""Bit channels: BSC and multi-level BSC flip rates, seed002's levels, the digital-link adapter, the registry."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from sionna.phy import config as sionna_config

from linksim import registry
from linksim.channels import AWGNChannel
from linksim.channels.binary import (
    BSC,
    BitChannel,
    BSCParams,
    DigitalLinkBits,
    DigitalLinkBitsParams,
    MultiLevelBSC,
    MultiLevelBSCParams,
    bsc_output_probs,
    build_bit_channel,
    geometric_levels,
    level_index,
)
from linksim.estimators import bernoulli_sample
from linksim.link import DigitalLink, DigitalLinkParams
from linksim.stats import binomial_interval

# seed002 §2: eps_i of the 10 levels for M = 10,000, N = 10, 0.4 -> 0.001 (6 decimals as printed)
SEED002_EPS = [0.400000, 0.205562, 0.105639, 0.054288, 0.027899, 0.014337, 0.007368, 0.003786, 0.001946, 0.001000]


def _random_bits(batch: int, n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 2, (batch, n), generator=torch.Generator().manual_seed(seed)).float()


def _assert_rate(errors: torch.Tensor, p: float) -> None:
    errors = errors.float()
    low, high = binomial_interval(float(errors.sum()), errors.numel(), confidence=0.999, method="clopper-pearson")
    assert low <= p <= high, (float(errors.mean()), p)


@pytest.mark.parametrize("p", [0.0, 0.02, 0.3, 1.0])
def test_bsc_flip_rate_and_interface(p):
    sionna_config.seed = 1
    bits = _random_bits(200, 1000, 0)
    ch = BSC(BSCParams(p=p))
    bits_hat, flip_prob = ch(bits)
    assert isinstance(ch, BitChannel)
    assert bits_hat.shape == bits.shape and bits_hat.dtype == torch.float32
    assert ((bits_hat == 0) | (bits_hat == 1)).all()
    assert flip_prob.shape == bits.shape and flip_prob.dtype == torch.float32
    assert torch.allclose(flip_prob, torch.tensor(p))
    _assert_rate(bits_hat != bits, p)
    assert ch.channel_uses(1000) == 1000.0


def test_bsc_is_reproducible_under_the_sionna_seed_and_has_an_xor_gradient():
    bits = _random_bits(8, 500, 1).requires_grad_(True)
    ch = BSC(BSCParams(p=0.2))
    sionna_config.seed = 5
    a, _ = ch(bits)
    sionna_config.seed = 5
    b, _ = ch(bits)
    assert torch.equal(a, b)
    a.sum().backward()
    flipped = (a != bits).detach()
    assert torch.equal(bits.grad, torch.where(flipped, -1.0, 1.0))


def test_bsc_without_p_follows_hard_decision_bpsk_at_the_noise_variance():
    sionna_config.seed = 2
    ch = BSC()
    no = torch.tensor([1.0, 0.25])  # Es/N0 = 0 dB and 6 dB
    bits = _random_bits(2, 100000, 2)
    bits_hat, flip_prob = ch(bits, no)
    expected = [0.5 * math.erfc(math.sqrt(1 / v)) for v in no.tolist()]  # Q(sqrt(2 Es/N0)): 0.0786, 0.0023
    for row, p in enumerate(expected):
        assert flip_prob[row, 0].item() == pytest.approx(p, rel=1e-5)
        _assert_rate(bits_hat[row] != bits[row], p)
    with pytest.raises(ValueError, match="pass no"):
        ch(bits)
    with pytest.raises(ValueError, match="one value per row"):
        ch(bits, torch.ones(3))


def test_seed002_geometric_levels_table():
    eps = geometric_levels(0.4, 0.001, 10)
    assert [round(v, 6) for v in eps.tolist()] == SEED002_EPS
    ratio = eps[:-1] / eps[1:]
    assert torch.allclose(ratio, torch.full((9,), 400 ** (1 / 9), dtype=torch.float64))
    params = MultiLevelBSCParams(bits=10000)
    assert params.num_levels == 10 and torch.equal(params.level_eps(), eps)
    # capacity of the medium: sum of 1000 (1 - h2(eps_i)) ~ 7,083 bits (seed002 §2)
    h2 = -(eps * torch.log2(eps) + (1 - eps) * torch.log2(1 - eps))
    assert float((1000 * (1 - h2)).sum()) == pytest.approx(7083, abs=1)


def test_level_index_is_contiguous():
    level = level_index(10000, 10)
    assert torch.equal(torch.bincount(level), torch.full((10,), 1000))
    assert level[999] == 0 and level[1000] == 1 and level[9000] == 9 and level[-1] == 9
    uneven = level_index(25, 10)  # bit j (0-based) -> floor(j N / M)
    assert uneven.tolist() == [j * 10 // 25 for j in range(25)] and (uneven.diff() >= 0).all()


def test_multilevel_bsc_flip_rates_per_level():
    sionna_config.seed = 3
    ch = MultiLevelBSC(MultiLevelBSCParams(bits=10000))
    bits = _random_bits(20, 10000, 3)
    bits_hat, flip_prob = ch(bits)
    assert flip_prob.shape == bits.shape
    errors = (bits_hat != bits).float()
    for i, eps in enumerate(ch.eps.tolist()):
        sl = slice(1000 * i, 1000 * (i + 1))
        assert torch.all(flip_prob[:, sl] == eps)
        _assert_rate(errors[:, sl], eps)
    per_level = ch.per_level(errors).mean(0)
    torch.testing.assert_close(per_level, errors.reshape(20, 10, 1000).mean((0, 2)))
    with pytest.raises(ValueError, match="rows of 10000 bits"):
        ch(bits[:, :100])


def test_multilevel_bsc_with_explicit_levels_and_the_smeared_probability():
    sionna_config.seed = 4
    ch = MultiLevelBSC(MultiLevelBSCParams(bits=3000, eps=[0.25, 0.0, 0.1]))
    assert ch.eps.tolist() == pytest.approx([0.25, 0.0, 0.1])
    f = torch.full((40, 3000), 0.3)
    sent = bernoulli_sample(f, torch.Generator().manual_seed(0))
    received, flip_prob = ch(sent)
    p1 = bsc_output_probs(f, flip_prob)  # P(received = 1) = f (1 - 2 eps) + eps
    for i in range(3):
        sl = slice(1000 * i, 1000 * (i + 1))
        _assert_rate(received[:, sl], float(p1[0, sl][0]))
    assert (received[:, 1000:2000] == sent[:, 1000:2000]).all()  # eps = 0: error-free level


def _direct_run(link_params: DigitalLinkParams, bits: torch.Tensor, no: torch.Tensor, seed: int) -> torch.Tensor:
    link, channel = DigitalLink(link_params), AWGNChannel()
    sionna_config.seed = seed
    return link(bits, channel, no)[0]


@pytest.mark.parametrize("coded", [True, False])
def test_digital_link_bits_matches_a_direct_digital_link_run(coded):
    lp = DigitalLinkParams(k=64, n=128, bits_per_symbol=2) if coded else DigitalLinkParams(k=64, bits_per_symbol=4)
    ch = DigitalLinkBits(DigitalLinkBitsParams(link=lp, esno_db=1.0 if coded else 8.0))
    bits = _random_bits(6, 256, 4)  # 4 whole words per row
    sionna_config.seed = 21
    bits_hat, flip_prob = ch(bits)
    no = torch.tensor(10 ** (-(1.0 if coded else 8.0) / 10), dtype=torch.float32)
    direct = _direct_run(lp, bits.reshape(-1, 64), no, seed=21).reshape(6, 256)
    assert torch.equal(bits_hat, direct)
    ber = float((direct != bits).float().mean())
    assert 0 < ber < 0.2  # a point with errors, so the comparison is not trivial
    assert torch.allclose(flip_prob, torch.tensor(ber))
    assert ch.channel_uses(256) == 4 * lp.num_symbols


def test_digital_link_bits_ber_extremes_padding_and_per_row_noise():
    lp = DigitalLinkParams(k=64, n=128, bits_per_symbol=2)
    ch = build_bit_channel("digital_link", {"link": lp.model_dump()})
    bits = _random_bits(4, 150, 5)  # 3 words per row, the last one 42 bits of padding
    sionna_config.seed = 6
    no = torch.tensor([10 ** -1.5, 10 ** -1.5, 10.0, 10.0])  # 15 dB and -10 dB
    bits_hat, flip_prob = ch(bits, no)
    assert bits_hat.shape == bits.shape and flip_prob.shape == bits.shape
    errors = (bits_hat != bits).float().mean(1)
    assert errors[:2].max() == 0
    assert errors[2:].min() > 0.3  # the BP decoder fails: close to guessing
    torch.testing.assert_close(flip_prob[:, 0], errors)
    assert ch.channel_uses(150) == 3 * 64
    with pytest.raises(ValueError, match="esno_db"):
        ch(bits)


def test_digital_link_bits_over_a_channel_preset_with_chunking():
    ch = DigitalLinkBits(DigitalLinkBitsParams(link={"k": 40, "bits_per_symbol": 2}, channel="rayleigh-fast",
                                               esno_db=30.0, chunk_words=3))
    assert ch.channel.coherence == 1
    sionna_config.seed = 7
    bits = _random_bits(5, 100, 6)
    bits_hat, flip_prob = ch(bits)
    assert float((bits_hat != bits).float().mean()) < 0.01 and flip_prob.shape == bits.shape


def test_registry_lookup_and_bad_params_are_refused_naming_the_key():
    table = registry.bit_channels()
    assert {"bsc", "multilevel_bsc", "digital_link"} <= set(table)
    assert table["bsc"].factory is BSC and table["bsc"].params is BSCParams
    assert isinstance(build_bit_channel("multilevel_bsc", {"bits": 100, "levels": 4}), MultiLevelBSC)
    assert build_bit_channel("bsc", BSCParams(p=0.1)).params.p == 0.1
    with pytest.raises(ValueError, match="unknown bit channel 'bcs'"):
        build_bit_channel("bcs", {})
    cases = [
        ("bsc", {"q": 0.1}, "q"),
        ("bsc", {"p": 1.5}, "p"),
        ("multilevel_bsc", {"bits": 10, "levels": 20}, "levels"),
        ("multilevel_bsc", {"bits": 100, "eps": [0.1, 2.0]}, "eps"),
        ("multilevel_bsc", {"bits": 100, "levels": 3, "eps": [0.1, 0.2]}, "levels"),
        ("multilevel_bsc", {"levels": 3}, "bits"),
        ("digital_link", {"link": {"k": 64, "n": 128}, "channel": "nope"}, "nope"),
        ("digital_link", {"link": {"k": 64, "n": 128}, "channel": "rayleigh", "channel_params": {"coherence": 1}},
         "coherence"),
        ("digital_link", {"link": {"k": 64, "n": 128, "modulation": "psk"}}, "modulation"),
        ("digital_link", {"link": {"k": 64}, "esno": 3.0}, "esno"),
    ]
    for kind, params, key in cases:
        with pytest.raises(ValidationError, match=key):
            build_bit_channel(kind, params)
