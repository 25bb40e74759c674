"""JCM and its baselines: Table III's sizes, the sampler, power normalisation, the channel conventions,
the Uniform / NN bit chains, one training step, and the scheme's life cycle on synthetic CIFAR-shaped data."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import seeded
from pydantic import ValidationError
from torch import nn

from linksim.channels import AWGNChannel
from linksim.engine import seed_everything
from linksim.estimators import gumbel_softmax_st
from linksim.link.packing import real_to_complex
from linksim.metrics import (
    occupancy_counters,
    occupancy_entropy_bits,
    psnr,
    psnr_per_channel,
)
from linksim.models import JCM, jcm_complexity
from linksim.quantizers import LearnedQuantizer
from linksim.schemes.jcm.chain import SymbolChain
from linksim.schemes.jcm.scheme import JCMParams, mse_weight


class Recording(nn.Module):
    """AWGN that keeps what it was given (symbols and noise variance)."""

    def __init__(self):
        super().__init__()
        self.awgn = AWGNChannel()

    def forward(self, x, no):
        self.x, self.no = x, no
        return self.awgn(x, no)

    def channel_uses(self, k):
        return k


# Table III at n = 256 and the same models at n = 128 (width 1, 4 / 16 / 64-QAM: K = 2, 4, 8 levels per
# value, d = 2 n), in the units the table is quoted in; 18,564,812 parameters (n = 128, 64-QAM) is quoted as
# 18.57 M (a double rounding through 18.565), hence the 0.006 M tolerance
@pytest.mark.parametrize("n, levels, params_m, gmacs", [
    (256, 2, 24.59, 0.640), (256, 4, 32.98, 0.649), (256, 8, 49.76, 0.665),
    (128, 2, 12.27, 0.538), (128, 4, 14.37, 0.540), (128, 8, 18.57, 0.545)])
def test_width_one_sizes_equal_table_iii(n, levels, params_m, gmacs):
    c = jcm_complexity(JCM("jcm", d=2 * n, levels=levels))
    assert abs(c["parameters"] / 1e6 - params_m) < 0.006
    assert round(c["macs"] / 1e9, 3) == gmacs


def test_bpsk_size_and_the_analog_model_is_the_jcm_model_without_its_head():
    c = jcm_complexity(JCM("jcm", d=128, levels=2))
    assert (round(c["parameters"] / 1e6, 2), round(c["macs"] / 1e9, 3)) == (9.03, 0.510)
    jcm, analog = JCM("jcm", d=256, levels=4), JCM("analog", d=256, levels=4)
    head = sum(p.numel() for p in jcm.head.parameters())
    assert jcm_complexity(analog)["parameters"] == jcm_complexity(jcm)["parameters"] - head
    assert set(analog.state_dict()) == {k for k in jcm.state_dict() if not k.startswith("head.")}


@pytest.mark.parametrize("temperature", [1.0, 1.5, 5.0])
def test_sampler_draws_softmax_of_the_logits_and_passes_a_gradient(temperature):
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]]).repeat(40_000, 1).requires_grad_()
    one_hot = gumbel_softmax_st(logits, temperature, generator=seeded(0))
    freq = one_hot.detach().mean(0)
    assert torch.allclose(freq, torch.softmax(logits[0].detach(), 0), atol=0.01)  # ~5 sigma
    assert torch.equal(one_hot.detach().sum(1), torch.ones(40_000))
    (one_hot @ torch.tensor([-3.0, -1.0, 1.0, 3.0])).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_jcm_chain_samples_levels_with_the_head_probabilities():
    chain = SymbolChain("jcm", "qam16")
    logits = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])).expand(2000, 16, 4)
    _, points = chain(logits, AWGNChannel(), torch.tensor(1e-8), generator=seeded(1))
    i_level = points // 4  # I index of each point
    freq = torch.bincount(i_level.flatten(), minlength=4) / i_level.numel()
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.01)


@pytest.mark.parametrize("method", ["analog", "jcm", "uniform"])
def test_power_normalisation_per_batch_and_per_image(method):
    g = seeded(2)
    scale = torch.tensor([[0.5], [1.0], [3.0], [1.0]])
    features = (torch.randn(4, 32, 4, generator=g) * scale.unsqueeze(-1) if method == "jcm"
                else torch.randn(4, 32, generator=g) * scale)
    if method == "jcm":  # the scale lives in the levels the images pick: inner ones (row 0), outer ones (row 2)
        features[0, :, 1:3] += 20
        features[2, :, 0] += 20
    power = {}
    for scope in ("batch", "image"):
        channel = Recording()
        SymbolChain(method, "qam16", power_norm=scope)(features, channel, torch.tensor(1e-8), generator=seeded(3))
        power[scope] = channel.x.abs().square().mean(dim=1)  # per image, unit-energy complex symbols
    assert math.isclose(float(power["batch"].mean()), 1.0, rel_tol=1e-5)
    assert float(power["batch"].max() - power["batch"].min()) > 0.5  # rows keep their relative power
    assert torch.allclose(power["image"], torch.ones(4), rtol=1e-5)


def test_bpsk_noise_convention_is_the_real_channel_one():
    """BPSK: real symbols with noise variance 10^(-SNR/10) per real symbol, i.e. 2 no per complex use."""
    snr_db = 3.0
    no = torch.tensor(10 ** (-snr_db / 10))
    channel = Recording()
    chain = SymbolChain("analog", "bpsk")
    x = torch.ones(400, 256)
    seed_everything(4)
    y, _ = chain(x, channel, no)
    assert torch.allclose(channel.no, 2 * no)
    assert torch.equal(channel.x.imag, torch.zeros_like(x)) and torch.allclose(channel.x.real, x)
    assert math.isclose(float((y - x).var()), float(no), rel_tol=0.02)  # the real part only: no, not no / 2
    # QAM (and analog 2D): each real value also sees variance no, at no per complex use
    qam = Recording()
    seed_everything(4)
    y2, _ = SymbolChain("analog", "qam16")(x, qam, no)
    assert torch.allclose(qam.no, no)
    assert math.isclose(float((y2 - x).var()), float(no), rel_tol=0.02)


@pytest.mark.parametrize("modulation", ["bpsk", "qam4", "qam16", "qam64"])
def test_uniform_chain_without_noise_returns_the_quantised_values(modulation):
    chain = SymbolChain("uniform", modulation)
    z = torch.randn(8, 64, generator=seeded(5)) * 2
    channel = Recording()
    y, points = chain(z.clone().requires_grad_(), channel, torch.tensor(1e-12))
    zn = z / z.square().mean().sqrt()
    levels = chain.levels
    clipped = zn.clamp(levels[0], levels[-1])
    quantised = levels[(clipped.unsqueeze(-1) - levels).abs().argmin(-1)]
    assert torch.equal(y.detach(), quantised)
    # the symbols on the air are Sionna's Gray points of those levels, times the batch's power gain
    sent = torch.complex(quantised, torch.zeros_like(quantised)) if modulation == "bpsk" else \
        real_to_complex(quantised.reshape(8, 1, 64))
    gain = channel.x.abs().square().mean().rsqrt()
    assert torch.allclose(channel.x * gain / sent.abs().square().mean().rsqrt(), sent, atol=1e-6)
    assert torch.allclose(chain.points[points], sent, atol=1e-6)


def test_nn_chain_without_noise_returns_the_dequantised_bits_and_is_weak_by_construction():
    q = LearnedQuantizer(2)
    chain = SymbolChain("nn", "qam16")
    z = torch.randn(16, 64, generator=seeded(6))
    y, _ = chain(z, AWGNChannel(), torch.tensor(1e-12), quantizer=q)
    zn = z / z.square().mean().sqrt()
    assert torch.allclose(y, q(zn), atol=1e-6)
    assert len(torch.unique(y)) <= 3  # 2 thresholds: 3 cells of the 4 levels a 16-QAM axis has


def _step_loss(model, chain, x, labels, seed):
    seed_everything(seed)
    torch.manual_seed(seed)  # dropout
    y, _ = chain(model.encode(x), AWGNChannel(), torch.full((len(x),), 0.1), generator=seeded(seed))
    logits, recon = model.decode(y)
    return F.cross_entropy(logits, labels) + 20 * (recon - x).square().mean()


def test_one_jcm_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = JCM("jcm", d=32, levels=4, width=0.125)
    chain = SymbolChain("jcm", "qam16")
    x = torch.rand(16, 3, 32, 32, generator=seeded(7)) * 2 - 1
    labels = torch.randint(0, 10, (16,), generator=seeded(8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = _step_loss(model, chain, x, labels, 9)
    opt.zero_grad()
    before.backward()
    assert model.head.linear.weight.grad.abs().sum() > 0  # the gradient reaches the probability head
    opt.step()
    after = _step_loss(model, chain, x, labels, 9)
    assert after < before


def test_table_ii_and_bad_params_name_the_key():
    assert (mse_weight("bpsk", 12), mse_weight("qam16", -12), mse_weight("qam4", 0)) == (2, 250, 30)
    ok = {"method": "jcm", "bandwidth_ratio": "1/24", "snr_db": [0, 12]}
    p = JCMParams(**ok)
    assert (p.channel_uses, p.d, p.levels) == (128, 256, 4)
    assert JCMParams(**{**ok, "modulation": "bpsk"}).d == 128
    with pytest.raises(ValidationError, match="mse_weight"):
        JCMParams(**{**ok, "snr_db": [3]})
    assert JCMParams(**{**ok, "snr_db": [3], "mse_weight": 10}).snr_db == [3]
    with pytest.raises(ValidationError, match="width"):
        JCMParams(**ok, width=0.1)
    with pytest.raises(ValidationError, match="snr_db"):
        JCMParams(**ok, train={"snr_db": 5})
    assert JCMParams(**{**ok, "bandwidth_ratio": "1/48", "modulation": "bpsk"}).d == 64
    with pytest.raises(ValidationError, match="bandwidth_ratio"):
        JCMParams(**{**ok, "bandwidth_ratio": 100 / 3072, "modulation": "bpsk"})  # 100 reals: not a multiple of 16


def test_paper_psnr_and_occupancy_counters():
    x = torch.rand(5, 3, 32, 32, generator=seeded(10))
    y = (x + 0.05 * torch.randn(5, 3, 32, 32, generator=seeded(11))).clamp(0, 1)
    assert (psnr_per_channel(x, y, layout="NCHW") >= psnr(x, y, max_val=1.0, layout="NCHW") - 1e-9).all()
    counts = occupancy_counters(torch.tensor([0, 0, 1, 3]), 4)
    assert counts == {"occupancy_0": 2, "occupancy_1": 1, "occupancy_2": 0, "occupancy_3": 1}
    assert math.isclose(occupancy_entropy_bits(counts), 1.5)
    assert math.isclose(occupancy_entropy_bits(occupancy_counters(torch.arange(16), 16)), 4.0)


def test_scenario_trains_the_four_methods_with_warm_starts_and_reports(tmp_path, synthetic_data, monkeypatch):
    from linksim.config import load_scenario
    from linksim.results import RunDirectory
    from linksim.runner import RunOptions, run_scenario

    monkeypatch.setenv("LINKSIM_MODELS", str(tmp_path / "models"))
    (tmp_path / "s.yaml").write_text("""
name: jcm-tiny
seed: 2
device: cpu
snr: {values: [0, 12]}
stop: {batch_size: 8, max_samples: 8}
channels: [awgn]
scheme_defaults:
  jcm: {bandwidth_ratio: 1/24, width: 0.0625, snr_db: [0, 12], data: {name: cifar10, eval_subset: 8},
        train: {epochs: 1, batch_size: 16, subset: 32}, quantizer: {images: 32, steps: 20}}
schemes:
  - {name: jcm, type: jcm, params: {method: jcm, train: {warm_start: analog}}}
  - {name: nn, type: jcm, params: {method: nn, train: {warm_start: analog}}}
  - {name: uniform, type: jcm, params: {method: uniform, train: {warm_start: analog}}}
  - {name: analog, type: jcm, params: {method: analog}}
""")
    summary = run_scenario(load_scenario(tmp_path / "s.yaml"), RunOptions(out=str(tmp_path / "out"), progress=False,
                                                                          plots=False))
    run = RunDirectory(summary.run_dir.path)
    facts = run.load_manifest()["schemes"]
    for name in ("jcm", "nn", "uniform"):
        for snr in ("0", "12"):
            assert facts[name]["models"][snr]["warm_start_weights"] == facts["analog"]["models"][snr]["weights"]
            assert facts[name]["models"][snr]["weights"] != facts["analog"]["models"][snr]["weights"]
    assert len(facts["jcm"]["constellation"]) == 16 and "constellation" not in facts["analog"]
    import pandas as pd

    df = pd.read_csv(run.csv)
    assert set(df["train_snr_db"]) == {0.0, 12.0} and (df["samples"] == 8).all()
    jcm = df[df["scheme"] == "jcm"]
    assert (jcm[[f"occupancy_{i}" for i in range(16)]].sum(axis=1) == 8 * 128).all()
    assert ((jcm["occupancy_entropy_bits"] > 0) & (jcm["occupancy_entropy_bits"] <= 4)).all()
    assert df[df["scheme"] == "analog"]["occupancy_entropy_bits"].isna().all()
    assert df["accuracy"].between(0, 1).all() and (df["psnr_paper_db"] > 0).all()
    from linksim.schemes.jcm.figures import plot_occupancy, plot_training_curves

    assert [p.name for p in plot_occupancy(run.path, "jcm", formats=("png",))] == ["jcm_occupancy.png"]
    with pytest.raises(ValueError, match="analog"):
        plot_occupancy(run.path, "analog")
    curves = plot_training_curves(run.path, ["analog", "jcm", "nn"], 12, formats=("png",))
    assert [p.name for p in curves] == ["training_snr12.png"]
    with pytest.raises(ValueError, match="no training log"):
        plot_training_curves(run.path, ["jcm"], 6)
