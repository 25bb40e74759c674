"""Split DeepJSCC (seed002): the interface's level schedule against the spec's table, VIMCO through the
multi-level BSC medium against an exact gradient, the deterministic stage 2, per-codeword power
normalisation, the per-level BER counters, the shared stage-1 weights and a tiny end-to-end run."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
from conftest import seeded
from pydantic import ValidationError

from linksim import registry
from linksim.channels import AWGNChannel, RayleighChannel, TDLChannel
from linksim.channels.binary import bsc_output_probs, level_index
from linksim.channels.tdl import TDLParams
from linksim.config import load_scenario
from linksim.data import DataParams, ImageDataset
from linksim.data.pooled import POOLED, pooled_loader
from linksim.engine import seed_everything
from linksim.estimators import bernoulli_log_prob, vimco_surrogate
from linksim.link.packing import real_to_complex
from linksim.models import ChannelCodec, SourceCodec
from linksim.runner import build_scheme
from linksim.schemes.base import SchemeContext
from linksim.schemes.split_jscc import (
    SplitJSCCParams,
    SplitJSCCScheme,
    level_error_counters,
    medium_samples,
    varying_bits,
)

# seed002 §2: eps_i from eq. 17 and the BSC capacity 1 - h2(eps_i) of each level
SPEC_TABLE = [(0.400000, 0.0290), (0.205562, 0.2671), (0.105639, 0.5134), (0.054288, 0.6957), (0.027899, 0.8163),
              (0.014337, 0.8917), (0.007368, 0.9372), (0.003786, 0.9641), (0.001946, 0.9797), (0.001000, 0.9886)]

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

_TINY = {"data": {"name": "cifar10", "eval_subset": 8}, "bandwidth_ratio": "1/48",
         "interface": {"bits": 400}, "width": 8, "channel_width": 8}
_TRAIN = {"epochs": 1, "subset": 24, "batch_size": 8, "validation": 8, "samples": 3}


def _params(**kw) -> SplitJSCCParams:
    return SplitJSCCParams(**{**_TINY, "source_train": _TRAIN, "train": {**_TRAIN, "snr_db": 10.0}, **kw})


def _context(tmp_path) -> SchemeContext:
    return SchemeContext(cache_dir=tmp_path / "models", run_dir=tmp_path / "run", train_channel=AWGNChannel(),
                         train_channel_spec={"name": "awgn", "type": "awgn", "params": {}}, progress=False)


def _h2(p: float) -> float:
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


# ---------------------------------------------------------------------------------------------- interface
def test_level_schedule_is_the_spec_table():
    interface = SplitJSCCParams(bandwidth_ratio="1/24").interface  # the scheme's default interface
    eps = interface.level_eps()
    assert interface.bits == 10_000 and interface.num_levels == 10
    for (want_eps, want_capacity), got in zip(SPEC_TABLE, eps.tolist(), strict=True):
        assert got == pytest.approx(want_eps, abs=5e-7)
        assert 1 - _h2(got) == pytest.approx(want_capacity, abs=5e-5)
    assert torch.allclose(eps[:-1] / eps[1:], torch.full((9,), 400 ** (1 / 9), dtype=torch.float64))
    assert sum(1000 * (1 - _h2(e)) for e in eps.tolist()) == pytest.approx(7083, abs=1)
    level = level_index(10_000, 10)  # contiguous: bits 1..1000 level 1 (eps 0.4), ..., 9001..10000 level 10
    assert torch.equal(level, torch.arange(10).repeat_interleave(1000))


def test_vimco_through_the_medium_is_unbiased_for_the_multi_sample_bound():
    """The stage-1 estimator as the scheme uses it (received bits drawn from Lemma 1's smeared
    probabilities, scored by their log probability, a decoder term in log w) averages to the exact
    gradient of L^J = E[log mean_j w(u^j)], enumerated over every tuple of received bits."""
    theta, eta, eps, j = torch.tensor([0.4, -0.8]), torch.tensor([0.7, -1.1]), torch.tensor([0.3, 0.05]), 3

    def log_w(b, e):  # a toy decoder likelihood: pathwise in e, nonlinear in the bits
        return e[..., 0] * b[..., 0] + e[..., 1] * b[..., 1] + 1.5 * b[..., 0] * b[..., 1] - 2.0

    outs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))  # [4, 2]
    th, et = theta.clone().requires_grad_(True), eta.clone().requires_grad_(True)
    f = torch.sigmoid(th)
    # Lemma 1: the smeared probability is the marginal over the sent bit and the flip
    marginal = f * (1 - eps) + (1 - f) * eps
    assert torch.allclose(marginal, bsc_output_probs(f, eps))
    v = outs[torch.tensor(list(itertools.product(range(4), repeat=j)))]  # [64, J, 2] every tuple
    log_p = bernoulli_log_prob(v, marginal).sum(-1)
    bound = torch.logsumexp(log_w(v, et), dim=-1) - math.log(j)
    exact_theta, exact_eta = torch.autograd.grad((log_p.exp() * bound).sum(), (th, et))

    r = 40_000
    theta_r, eta_r = theta.repeat(r, 1).requires_grad_(True), eta.repeat(r, 1).requires_grad_(True)
    received, log_probs = medium_samples(torch.sigmoid(theta_r), eps, j, seeded(5))
    assert received.shape == (j, r, 2) and log_probs.shape == (j, r)
    (vimco_surrogate(log_w(received, eta_r), log_probs).loss * r).backward()
    for grad, exact in ((-theta_r.grad, exact_theta), (-eta_r.grad, exact_eta)):
        mean, se = grad.mean(0), grad.std(0) / math.sqrt(r)
        assert (se < 0.05 * exact.abs().max()).all(), (se, exact)
        assert ((mean - exact).abs() <= 4 * se).all(), (mean, exact, se)
    # the received bits flip at the level's rate
    sent_one = torch.full((r, 2), 1.0)
    flipped = 1 - medium_samples(sent_one, eps, 2, seeded(6))[0]
    assert torch.allclose(flipped.mean((0, 1)), eps, atol=4 * math.sqrt(0.3 * 0.7 / (2 * r)))


# ---------------------------------------------------------------------------------------------- stage 2
def test_rounding_makes_stage_two_deterministic_and_the_source_frozen():
    scheme = SplitJSCCScheme(_params())
    scheme.source.eval().requires_grad_(False)
    images = torch.rand(4, 3, 32, 32, generator=seeded(0))
    codes = []
    for seed in (1, 2):
        seed_everything(seed)
        codes.append(scheme.source.quantize(images))
    assert torch.equal(codes[0], codes[1]) and set(codes[0].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(codes[0], (scheme.source.encode(images) > 0.5).float())
    # stage 1 draws differ between seeds; the rounded code does not
    probs = scheme.source.encode(images)
    assert not torch.equal(medium_samples(probs, scheme.eps[scheme.level], 2, seeded(1))[0],
                           medium_samples(probs, scheme.eps[scheme.level], 2, seeded(2))[0])
    # a stage-2 step: the channel codec gets a gradient, the frozen source codec none
    loss, metrics = scheme.channel_step(images, seeded(3), AWGNChannel())
    loss.backward()
    assert all(p.grad is None for p in scheme.source.parameters())
    assert all(p.grad is not None for p in scheme.model.parameters())
    assert metrics["ber"].shape == (4,) and metrics["psnr_db"].shape == (4,)


@pytest.mark.parametrize("channel", [RayleighChannel(), TDLChannel(TDLParams(model="A"))], ids=["rayleigh", "tdl-a"])
def test_channel_codec_trains_through_fading(channel):
    """Beyond the paper: a stage-2 step through Rayleigh block fading or TDL-A (equalised symbols)."""
    scheme = SplitJSCCScheme(_params())
    scheme.source.requires_grad_(False)
    loss, metrics = scheme.channel_step(torch.rand(2, 3, 32, 32, generator=seeded(8)), seeded(9), channel)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in scheme.model.parameters())
    assert metrics["ber"].shape == (2,)


def test_power_normalisation_holds_per_codeword():
    codec = ChannelCodec(bits=400, channel_uses=32, grid=(100, 2, 2), width=8)
    bits = torch.randint(0, 2, (5, 400), generator=seeded(4)).float()
    z = real_to_complex(codec.map(bits).reshape(5, 1, -1))  # [5, K] unit-energy complex symbols
    assert z.shape == (5, 32)
    assert torch.allclose(z.abs().square().sum(-1), torch.full((5,), 32.0), rtol=1e-5)  # sum |z_i|^2 = K P, P = 1
    alone = real_to_complex(codec.map(bits[:1]).reshape(1, 1, -1))  # one codeword's power ignores the batch
    assert torch.allclose(alone, z[:1], atol=1e-6)


def test_source_codec_layout():
    codec = SourceCodec(bits=10_000, width=8)
    assert codec.grid == (2500, 2, 2)  # 250 whole channels per level of 1,000 bits
    assert codec.encode(torch.rand(2, 3, 32, 32)).shape == (2, 10_000)
    with pytest.raises(ValueError, match="whole channels"):
        SourceCodec(bits=10_002, width=8)


# ---------------------------------------------------------------------------------------------- metrics
def test_per_level_ber_counters_add_up_across_batches():
    level = level_index(10, 3)  # unequal levels: 4, 3, 3 bits
    sent = torch.randint(0, 2, (6, 10), generator=seeded(7)).bool()
    received = sent.clone()
    received[0, 0] = ~received[0, 0]  # level 1
    received[4, [5, 9]] = ~received[4, [5, 9]]  # levels 2 and 3
    received[5, 8] = ~received[5, 8]  # level 3
    whole = level_error_counters(sent, received, level, 3)
    halves = [level_error_counters(sent[s], received[s], level, 3) for s in (slice(0, 3), slice(3, 6))]
    assert whole == {k: halves[0][k] + halves[1][k] for k in whole}
    assert [whole[f"bit_errors_l{i}"] for i in (1, 2, 3)] == [1, 1, 2]
    assert [whole[f"bits_l{i}"] for i in (1, 2, 3)] == [24, 18, 18]
    assert (whole["bit_errors"], whole["bits"]) == (4, 60)
    assert level_error_counters(sent.float(), received.float(), level, 3) == whole  # {0, 1} floats as well


# ---------------------------------------------------------------------------------------------- end to end
def test_scheme_end_to_end_shares_the_stage_one_weights(tmp_path, synthetic_data):
    context = _context(tmp_path)
    first = SplitJSCCScheme(_params())
    first.name = "split-r1_48"
    first.prepare(context)
    assert first.budget(AWGNChannel()).channel_uses == 64 and first.facts["source_weights_reused"] is False
    seed_everything(3)
    first.reset()
    counters = first.simulate(5, torch.tensor(0.1), AWGNChannel())
    assert counters["samples"] == 5 and counters["images"] == 5
    assert sum(counters[f"bits_l{i}"] for i in range(1, 11)) == counters["bits"] == 5 * 400
    assert sum(counters[f"bit_errors_l{i}"] for i in range(1, 11)) == counters["bit_errors"]
    assert {"psnr_db", "ssim", "ber", "ber_l1", "ber_l10"} <= set(first.rates)
    assert first.theory(AWGNChannel(), 10.0)["eps_l1"] == pytest.approx(0.4)
    assert (tmp_path / "run" / "training" / "split-r1_48.source.csv").is_file()
    assert 0 <= first.facts["source_polarised"] <= 1
    assert {"polarised", "varying"} <= set(first.source_step(torch.rand(2, 3, 32, 32), None, seeded(2))[1])
    assert 0 < first.facts["source_varying_bits"] <= 1
    log = (tmp_path / "run" / "training" / "split-r1_48.source.csv").read_text().splitlines()
    assert "varying" in log[0].split(",")

    # the cached source weights, but a mapper that says the same for every image, and a new channel codec:
    # refused before stage 2 trains on it
    collapsed = SplitJSCCScheme(_params(train={**_TRAIN, "snr_db": 3.0}))
    collapsed.source.encode = lambda images: torch.full((len(images), 400), 0.9)
    trained = set((tmp_path / "models").glob("*.json"))
    with pytest.raises(RuntimeError, match=r"collapsed to a constant code \(0.00% of its 400 bits"):
        collapsed.prepare(context)
    assert set((tmp_path / "models").glob("*.json")) == trained
    promised = first.facts["interface_psnr_db"]  # the code through the declared medium, one seeded draw
    assert 0 < promised < 100 and first.interface_psnr_db(context.seed) == pytest.approx(promised, abs=1e-3)

    other = SplitJSCCScheme(_params(bandwidth_ratio="1/24", train={**_TRAIN, "snr_db": 5.0}))
    other.prepare(context)  # another (K, SNR): a new channel codec, the same source codec from the cache
    assert other.facts["source_weights"] == first.facts["source_weights"] and other.facts["source_weights_reused"]
    assert other.facts["weights"] != first.facts["weights"] and not other.facts["weights_reused"]
    assert torch.equal(other._sent, first._sent)
    assert other.reconstruct(torch.arange(3), torch.tensor(0.1), AWGNChannel()).dtype == torch.uint8


def test_pooled_split_is_disjoint_complete_and_seeded(monkeypatch):
    """``cifar10-pooled``: CIFAR-10's two splits pooled and split again, 6,000 test images (seed002 §4)."""

    def numbered(split, path=None):  # image i carries its pool index in two pixels
        offset, n = (0, 900) if split == "train" else (900, 300)
        i = torch.arange(offset, offset + n)
        images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
        images[:, 0, 0, 0], images[:, 0, 0, 1] = (i % 256).to(torch.uint8), (i // 256).to(torch.uint8)
        return ImageDataset(images, torch.zeros(n, dtype=torch.int64), ("x",), "numbered", "numbered")

    monkeypatch.setitem(registry.datasets(), "numbered", numbered)
    load = pooled_loader("numbered", 250)

    def index(data):
        return (data.images[:, 0, 0, 0].long() + 256 * data.images[:, 0, 0, 1].long()).tolist()

    train, test = index(load("train")), index(load("test"))
    assert len(test) == 250 and len(train) == 950 and set(train) | set(test) == set(range(1200))
    assert not set(train) & set(test) and train == sorted(train)
    assert any(i >= 900 for i in train) and any(i < 900 for i in test)  # pooled, not the original split
    assert index(load("test")) == test
    assert DataParams(name="cifar10-pooled").image_shape == (3, 32, 32)
    assert registry.datasets()["cifar10-pooled"] is POOLED["cifar10-pooled"]


@pytest.mark.parametrize("profile", ["quick", "cpu", "full"])
def test_scenario_profiles_build(profile):
    """Every profile of the scenario loads and its schemes build (K = 128 / 64, the MCS grid of §5); the
    full profile's learned models (70 M parameters each) are checked by their params only."""
    scenario = load_scenario(SCENARIOS / "split_deepjscc_cifar10.yaml", profile=profile)
    awgn = AWGNChannel()
    by_name = {s.name: s for s in scenario.schemes}
    if profile == "full":
        paper = SplitJSCCParams(**by_name["split-r1_24-s20"].params)
        assert (paper.width, paper.source_train.samples, paper.train.samples, paper.source_train.lr) == (256, 100, 100, 1e-5)
        assert paper.interface.bits == 10_000 and paper.source_train.validation == 6000
    else:
        schemes = {name: build_scheme(s, seed=0) for name, s in by_name.items() if s.type != "image_digital"}
        assert schemes["split-r1_24-s20"].budget(awgn).channel_uses == 128
        assert schemes["split-r1_48-s20"].budget(awgn).channel_uses == 64
        assert schemes["djscc-r1_24-s20"].budget(awgn).channel_uses == 128
    digital = build_scheme(by_name["hevc-ldpc-r1_24"], seed=0)
    assert all(digital.codewords_per_image(i, awgn) >= 1 for i in range(len(digital.params.mcs)))
    assert {m.n for m in digital.params.mcs} == {512, 768}
    narrow = build_scheme(by_name["hevc-ldpc-r1_48"], seed=0)
    assert [narrow.codewords_per_image(i, awgn) for i in range(len(narrow.params.mcs))] == [1] * 5


@pytest.mark.parametrize(("kw", "key"), [
    ({"source_train": {"snr_db": 10.0}}, "source_train.snr_db"),
    ({"train": {"snr_db": None}}, "train.snr_db"),
    ({"train": {"samples": 1}}, "train.samples"),
    ({"interface": {"bits": 402}}, "interface"),
    ({"bandwidth_ratio": 0.001}, "bandwidth_ratio"),
])
def test_bad_params_name_the_key(kw, key):
    with pytest.raises(ValidationError) as info:
        SplitJSCCParams(**{**_TINY, **kw})
    assert [".".join(map(str, e["loc"])) for e in info.value.errors()] == [key]


def test_varying_bits_is_zero_for_a_constant_code_and_counts_positions_that_differ():
    constant = torch.tensor([[1.0, 0.0, 1.0, 0.0]]).repeat(5, 1)
    assert float(varying_bits(constant)) == 0.0
    half = constant.clone()
    half[2, :2] = 1 - half[2, :2]
    assert float(varying_bits(half)) == 0.5
