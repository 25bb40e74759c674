"""Channels honour one interface and stay differentiable; the digital link and the SNR convention."""

import math

import pytest
import torch
from sionna.phy import config as sionna_config

from linksim import registry
from linksim.channels import AWGNChannel, RayleighChannel, RayleighParams, TDLChannel, TDLParams
from linksim.link import DigitalLink, DigitalLinkParams
from linksim.snr import LinkBudget, esno_from_axis, snr_on_all_axes
from linksim.stats import binomial_interval

CHANNELS = {
    "awgn": lambda: AWGNChannel(),
    "rayleigh": lambda: RayleighChannel(),
    "rayleigh-fast": lambda: RayleighChannel(RayleighParams(coherence_symbols=1)),
    "tdl-perfect": lambda: TDLChannel(TDLParams(fft_size=24)),
    "tdl-ls": lambda: TDLChannel(TDLParams(fft_size=24, csi="ls", model="C", delay_spread=300e-9)),
}


@pytest.mark.parametrize("name", CHANNELS)
def test_channel_interface_shapes_and_gradients(name):
    sionna_config.seed = 1
    ch = CHANNELS[name]()
    x = (torch.randn(6, 50, dtype=torch.complex64) / math.sqrt(2)).requires_grad_(True)
    no = torch.tensor([1e-3, 1e-2, 1e-1, 1.0, 0.5, 0.05])
    y, no_eff = ch(x, no)
    assert y.shape == x.shape and y.dtype == torch.complex64
    assert no_eff.shape == x.shape and no_eff.dtype == torch.float32 and (no_eff > 0).all()
    y.abs().square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", CHANNELS)
def test_equalised_symbols_approach_sent_ones_at_high_snr(name):
    sionna_config.seed = 2
    x = torch.exp(1j * torch.rand(200, 64) * 2 * math.pi).to(torch.complex64)
    y, no_eff = CHANNELS[name]()(x, torch.tensor(1e-6))
    err = (y - x).abs().square().mean().item()
    assert err < (1e-2 if name == "tdl-ls" else 1e-3), err


def test_per_example_noise_variance_is_applied_per_row():
    x = torch.zeros(2, 20000, dtype=torch.complex64)
    y, no_eff = AWGNChannel()(x, torch.tensor([0.01, 1.0]))
    var = y.abs().square().mean(dim=1)
    assert var[0] == pytest.approx(0.01, rel=0.05) and var[1] == pytest.approx(1.0, rel=0.05)
    assert torch.equal(no_eff[:, 0], torch.tensor([0.01, 1.0]))


def test_rayleigh_block_fading_is_constant_within_a_block():
    sionna_config.seed = 3
    x = torch.ones(4, 12, dtype=torch.complex64)
    _, no_eff = RayleighChannel(RayleighParams(coherence_symbols=4))(x, torch.tensor(1.0))
    blocks = no_eff.reshape(4, 3, 4)
    assert torch.allclose(blocks, blocks[..., :1].expand_as(blocks))
    assert not torch.allclose(blocks[:, 0], blocks[:, 1])


def test_tdl_pilot_overhead_counts_as_channel_uses():
    ch = TDLChannel(TDLParams(fft_size=12, num_ofdm_symbols=14, pilot_ofdm_symbols=[2, 11]))
    assert ch.channel_uses(120) == pytest.approx(120 * 14 / 12)


def test_presets_resolve_to_registered_channel_types():
    presets = registry.channel_presets()
    assert {"awgn", "rayleigh", "rayleigh-fast", "tdl-a", "tdl-a-ls", "tdl-e"} <= set(presets)
    assert all(kind in registry.channels() for kind, _ in presets.values())


def test_noiseless_link_is_error_free_and_crc_flags_bad_blocks():
    sionna_config.seed = 4
    link = DigitalLink(DigitalLinkParams(k=128, n=256, bits_per_symbol=4, crc="CRC16", interleaver="nr"))
    bits = torch.randint(0, 2, (32, link.params.payload_bits)).float()
    bits_hat, ok = link(bits, AWGNChannel(), torch.tensor(1e-6))
    assert torch.equal(bits, bits_hat) and ok.all()
    bits_hat, ok = link(bits, AWGNChannel(), torch.tensor(3.0))  # far below threshold
    wrong = (bits != bits_hat).any(-1)
    assert wrong.any() and torch.equal(~ok & wrong, wrong)  # every block in error is flagged


def test_link_params_are_checked():
    with pytest.raises(ValueError, match="interleaver 'nr'"):
        DigitalLinkParams(k=64, interleaver="nr")
    with pytest.raises(ValueError, match="multiple of bits_per_symbol"):
        DigitalLinkParams(k=64, n=130, bits_per_symbol=4)
    assert DigitalLinkParams(k=128, n=256, crc="CRC24A").payload_bits == 104


def test_snr_axes_convert_both_ways():
    budget = LinkBudget(channel_uses=256, info_bits=512)  # 2 bits per complex channel use
    assert esno_from_axis(3.0, "ebno", budget) == pytest.approx(3.0 + 10 * math.log10(2))
    assert esno_from_axis(0.0, "snr_norm", budget, reference_channel_uses=512) == pytest.approx(10 * math.log10(2))
    axes = snr_on_all_axes(5.0, budget, 128)
    assert axes["ebno_db"] == pytest.approx(5 - 3.0103, abs=1e-4) and axes["snr_norm_db"] == pytest.approx(8.0103, abs=1e-4)
    with pytest.raises(ValueError, match="information bits"):
        esno_from_axis(0.0, "ebno", LinkBudget(channel_uses=10))
    assert math.isnan(snr_on_all_axes(0.0, LinkBudget(10))["ebno_db"])


def test_binomial_intervals():
    lo, hi = binomial_interval(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-3) and hi == pytest.approx(0.1744, abs=1e-3)  # Wilson
    lo, hi = binomial_interval(0, 50, method="clopper-pearson")
    assert lo == 0 and hi == pytest.approx(0.0711, abs=1e-3)
    assert all(math.isnan(v) for v in binomial_interval(0, 0))
    for n in (7, 500, 20_000):  # Wilson at the edges: exactly 0 and 1, not a rounding residue
        lo, hi = binomial_interval(0, n)
        assert lo == 0.0 and hi == pytest.approx(3.8415 / (n + 3.8415), rel=1e-4)  # z^2 / (n + z^2)
        assert binomial_interval(n, n)[1] == 1.0 and binomial_interval(n, n)[0] == pytest.approx(1 - hi)
