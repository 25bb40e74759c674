"""SINFONY Fig. 7 baselines: the classic digital chain (Huffman + 5G LDPC) and the per-element analog AE."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyContext, tiny_mnist
from sionna.phy import config as sionna_config

from linksim.channels import AWGNChannel
from linksim.channels.base import Channel
from linksim.config import load_scenario
from linksim.data.quadrants import split_quadrants
from linksim.link.huffman import float_to_symbols
from linksim.link.packing import complex_to_real, real_to_complex
from linksim.models import AnalogFeatureAE
from linksim.schemes.sinfony.analog_ae import SinfonyAnalogAEParams, SinfonyAnalogAEScheme
from linksim.schemes.sinfony.digital import (
    SinfonyDigitalParams,
    SinfonyDigitalScheme,
    decode_block,
    digital_channel_uses,
    merge_quadrants,
)
from linksim.snr import snr_on_all_axes

REPO = Path(__file__).resolve().parent.parent
TINY = {"train": {"epochs": 1}}
LINK = {"k": 64, "n": 128, "block_vectors": 4}


class _Context(TinyContext):
    train_size, test_size = 128, 24


class _Noiseless(Channel):
    def forward(self, x, no):
        return x, torch.full(x.shape, 1e-4, device=x.device)


class _Erase(Channel):
    """Noiseless, except that the first row (codeword) arrives as all zeros (LLRs 0: the decoder guesses)."""

    def forward(self, x, no):
        y = x.clone()
        y[0] = 0
        return y, torch.full(x.shape, 1e-4, device=x.device)


class _EraseSome(Channel):
    """Noiseless, except that codewords whose first symbol has a positive real part lose 70 % of their
    symbols (LLR 0): which codewords fail depends on their content only, not on how they are batched."""

    def forward(self, x, no):
        y = x.clone()
        y[x[:, 0].real > 0, : int(0.7 * x.shape[1])] = 0
        return y, torch.full(x.shape, 1e-4, device=x.device)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    torch.manual_seed(0)
    return _Context(cache_dir=tmp_path_factory.mktemp("models"), train_channel=AWGNChannel(), progress=False,
                    train_channel_spec={"name": "awgn", "type": "awgn", "params": {}})


def _digital(context, **params) -> SinfonyDigitalScheme:
    scheme = SinfonyDigitalScheme(SinfonyDigitalParams(**{**TINY, **LINK, **params}))
    scheme.prepare(context)
    return scheme


def test_noiseless_link_delivers_the_float16_features(context):
    scheme = _digital(context)
    facts = scheme.describe()
    assert facts["blocks"] == 6 and facts["test_images"] == 24
    t = scheme.transfer(np.arange(6), torch.tensor(1e-4), _Noiseless())
    sent = scheme.reference.transmitted_features(tiny_mnist(24, 1).images).numpy()
    assert np.array_equal(t.sent, sent.astype(np.float16).astype(np.float32))  # float16-rounded features
    assert np.array_equal(t.received, t.sent) and np.array_equal(t.received_symbols, float_to_symbols(sent))
    c = t.counters
    assert c["bit_errors"] == c["block_errors"] == c["source_block_errors"] == c["source_se"] == 0
    assert c["source_blocks"] == 24 and c["bits"] == 64 * c["blocks"]
    # through the engine's entry point: the perfect-comm. receiver sees exactly the sent features
    with torch.no_grad():
        out = scheme.simulate(24, torch.full((24,), 1e-4), _Noiseless())
        ref = scheme.reference.model.decode(torch.from_numpy(t.sent)).argmax(-1)
    assert out["samples"] == 24 and out["errors"] == int((ref != tiny_mnist(24, 1).labels).sum())
    # the run's timings say where the time went, per stage, and start again after each unit
    assert set(scheme.stage_times.take()) == {"link", "source_decode", "classifier"}
    assert scheme.stage_times.take() == {}


def test_batches_are_rounded_up_to_whole_blocks_and_wrap_around(context):
    scheme = _digital(context)
    with torch.no_grad():
        out = scheme.simulate(5, torch.tensor(1e-4), _Noiseless())  # 2 blocks of 4 images
        assert out["samples"] == 8 and out["source_blocks"] == 8
        out = scheme.simulate(24, torch.tensor(1e-4), _Noiseless())  # 6 blocks from block 2 on: wraps
    assert out["samples"] == 24 and out["source_block_errors"] == 0
    with pytest.raises(ValueError, match="one noise variance"):
        scheme.transfer(np.arange(2), torch.tensor([0.1, 0.2]), _Noiseless())


def test_pixels_reach_the_central_classifier_intact(context):
    scheme = _digital(context, source="pixels", huffman_max_length=16)
    t = scheme.transfer(np.arange(6), torch.tensor(1e-4), _Noiseless())
    images = tiny_mnist(24, 1).images
    assert np.array_equal(t.received_symbols, split_quadrants(images).reshape(24, 4, 196).numpy())
    assert torch.equal(merge_quadrants(split_quadrants(images)), images)
    assert 1 < scheme.describe()["huffman_bits_per_value"] < 8 and scheme.values == 196


def test_channel_uses_match_a_hand_calculation(context):
    # spec seed003 section 2: b = 11.86 bit/feature, R = 1/4, BPSK -> 2,656.6 real uses per agent and image,
    # +16.76 dB on the paper's per-real SNR = +19.77 dB on Es/N0 (BPSK: SNR = Es/N0 + 3.01 dB)
    uses = digital_channel_uses(4, 56, 11.86, 3840, 15360, 1)
    assert uses == pytest.approx(4 * 2656.64)
    assert 10 * math.log10(uses / 112) - 10 * math.log10(2) == pytest.approx(16.76, abs=0.01)
    assert 10 * math.log10(digital_channel_uses(4, 56, 11.86, 3840, 15360, 4) / 112) == pytest.approx(13.75, abs=0.01)
    # the scheme: 16-QAM, k=64, n=128, with the mean length measured on the training features
    scheme = _digital(context, modulation="qam", bits_per_symbol=4, interleaver="nr")
    train = tiny_mnist(128, 0).images
    symbols = float_to_symbols(scheme.reference.transmitted_features(train).numpy())
    bits = sum(code.lengths[symbols[:, a]].astype(np.int64).sum() for a, code in enumerate(scheme.codes))
    b = bits / symbols.size
    assert scheme.describe()["huffman_bits_per_value"] == pytest.approx(b, abs=1e-4)
    budget = scheme.budget(AWGNChannel())
    assert budget.channel_uses == pytest.approx(4 * 56 * b * 128 / 64 / 4)
    assert budget.info_bits == pytest.approx(4 * 56 * b)
    axes = snr_on_all_axes(0.0, budget, reference_channel_uses=112)
    assert axes["snr_norm_db"] == pytest.approx(10 * math.log10(4 * 56 * b * 0.5 / 112))
    with pytest.raises(RuntimeError, match="prepare"):
        SinfonyDigitalScheme(SinfonyDigitalParams(**LINK)).budget(AWGNChannel())


def test_a_corrupted_block_yields_the_documented_fallback(context):
    scheme = _digital(context, pad="zero")
    with torch.no_grad():
        out = scheme.simulate(8, torch.tensor(1e-4), _Erase())
    assert out["samples"] == 8 and out["block_errors"] >= 1 and out["source_block_errors"] >= 1
    assert 0 <= out["errors"] <= 8 and math.isfinite(out["loss_sum"]) and math.isfinite(out["source_se"])
    # the decoder's policy on its own: too few bits -> completed with symbol 0 (feature +0.0) ...
    code = scheme.codes[0]
    sent = np.array([1, 2, 3, 4], np.uint16)
    bits = code.encode(sent)
    symbols, ran_out = decode_block(code, bits[: int(code.lengths[1]) + int(code.lengths[2])], 4, "zero", None)
    assert ran_out and symbols.tolist() == [1, 2, 0, 0]
    symbols, ran_out = decode_block(code, bits[:5], 4, "random", np.random.default_rng(0))
    assert ran_out and symbols.shape == (4,)
    # ... extra bits are ignored, non-finite patterns (0x7c00 = inf, 0x7e00 = NaN) and -0 become 0
    nonfinite = np.array([0x7C00, 0x7E00, 0x8000, 0x3C00], np.uint16)
    symbols, ran_out = decode_block(code, np.concatenate([code.encode(nonfinite), [1, 0, 1]]), 4, "zero", None)
    assert not ran_out and scheme.symbol_values(symbols).tolist() == [0.0, 0.0, 0.0, 1.0]


def test_huffman_decoding_alongside_the_link_gives_the_sequential_result(context):
    """Blocks are Huffman-decoded in a worker thread as soon as their codewords are decoded: the result
    must not depend on how the link chunks the codewords (one per call here, all at once there)."""
    one_by_one, all_at_once = _digital(context, decoder_chunk=1), _digital(context, decoder_chunk=10_000)
    results = []
    for scheme in (one_by_one, all_at_once):
        torch.manual_seed(4)  # seeds the padding draws of desynchronised blocks
        with torch.no_grad():
            results.append(scheme.transfer(np.array([2, 0, 5, 1]), torch.tensor(1e-4), _EraseSome()))
    a, b = results
    assert a.counters == b.counters and np.array_equal(a.received_symbols, b.received_symbols)
    assert 0 < a.counters["block_errors"] < a.counters["blocks"] and a.counters["source_desync"] > 0
    assert set(one_by_one.stage_times.take()) == {"link", "source_decode"}


def test_link_params_are_validated():
    with pytest.raises(ValueError, match="multiple of bits_per_symbol"):
        SinfonyDigitalParams(k=64, n=130, modulation="qam", bits_per_symbol=4)
    with pytest.raises(ValueError, match="5G LDPC"):
        SinfonyDigitalParams(k=8, n=16)


def test_analog_ae_power_norm_over_the_batch(context):
    """``ae_power_norm: batch``: each symbol position has unit mean power over the batch (training: the
    batch statistic; evaluation: the running one), an element's energy may follow its value, and the
    weights are a cache entry of their own."""
    per_vector = SinfonyAnalogAEScheme(SinfonyAnalogAEParams(**TINY, ae_train={"epochs": 2, "lr": 1e-2}))
    per_batch = SinfonyAnalogAEScheme(SinfonyAnalogAEParams(**TINY, ae_power_norm="batch",
                                                            ae_train={"epochs": 2, "lr": 1e-2}))
    per_vector.prepare(context)
    per_batch.prepare(context)
    assert per_vector.describe()["weights"] != per_batch.describe()["weights"]
    assert per_vector.describe()["tx_power_per_real_use"] == pytest.approx(1.0, abs=1e-4)
    r = per_batch._features
    with torch.no_grad():
        energy = per_batch.ae.encode(r).square().sum(-1)  # [N, 4, 56]: 16 for every element per vector
        assert per_batch.describe()["tx_power_per_real_use"] == pytest.approx(float(energy.mean()) / 16, abs=1e-4)
        torch.testing.assert_close(per_vector.ae.encode(r).square().sum(-1), torch.full_like(energy, 16.0))
        assert energy.std() > 0.1 * energy.mean()
        x = copy.deepcopy(per_batch.ae.tx).train()(r.reshape(-1, 1))  # a copy: training mode moves the statistic
    torch.testing.assert_close(x.square().mean(0), torch.ones(16))


def test_analog_ae_training_reduces_the_mse(context):
    params = SinfonyAnalogAEParams(**TINY, ae_train={"epochs": 3, "lr": 1e-2})
    assert params.ae_train.optimizer == "adam" and params.ae_train.batch_size == 1000
    scheme = SinfonyAnalogAEScheme(params)
    untrained = AnalogFeatureAE(n_tx_el=16)
    untrained.load_state_dict(scheme.ae.state_dict())
    scheme.prepare(context)
    assert scheme.describe()["steps"] == 3 * math.ceil(128 * 224 / 1000)
    r = scheme._features
    no = torch.tensor(0.1)  # 10 dB
    with torch.no_grad():
        torch.manual_seed(1)
        before = (untrained(r, lambda x: x + 0.3 * torch.randn_like(x)) - r).square().mean()
        torch.manual_seed(1)
        after = (scheme.ae(r, lambda x: x + 0.3 * torch.randn_like(x)) - r).square().mean()
        out = scheme.simulate(24, no, AWGNChannel())
    assert after < 0.5 * before
    assert out["samples"] == 24 and out["source_values"] == 24 * 224
    assert out["source_se"] / out["source_values"] < before
    assert scheme.budget(AWGNChannel()).channel_uses == 4 * 56 * 16 / 2  # 1,792 complex per image
    again = SinfonyAnalogAEScheme(params)
    again.prepare(context)
    assert again.describe()["weights_reused"] and again.describe()["weights"] == scheme.describe()["weights"]
    # the AE's symbols are computed once in prepare: a point gives what encoding its batch would give
    scheme.reset()
    sionna_config.seed = 3
    with torch.no_grad():
        out = scheme.simulate(24, no, AWGNChannel())
        sionna_config.seed = 3
        x = scheme.ae.encode(r)
        y, _ = AWGNChannel()(real_to_complex(x.reshape(24, 4, -1)), no)
        r_hat = scheme.ae.decode(complex_to_real(y, (4, 56 * 16)).reshape(x.shape))
    assert out["source_se"] == pytest.approx(float((r_hat - r).double().square().sum()), rel=1e-6)


def test_presets_load_with_their_type_and_params(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_BASELINES", str(REPO / "baselines"))
    presets = {
        "sinfony-digital-bpsk-r14": ("sinfony_digital", {"k": 3840, "n": 15360, "modulation": "pam",
                                                         "bits_per_symbol": 1, "source": "features"}),
        "sinfony-digital-bpsk-r12": ("sinfony_digital", {"k": 8000, "n": 16000, "modulation": "pam",
                                                         "bits_per_symbol": 1}),
        "sinfony-digital-16qam-r14": ("sinfony_digital", {"k": 3840, "n": 15360, "modulation": "qam",
                                                          "bits_per_symbol": 4}),
        "sinfony-pixels-bpsk-r14": ("sinfony_digital", {"k": 3840, "n": 15360, "source": "pixels",
                                                        "bits_per_symbol": 1}),
        "sinfony-analog-ae": ("sinfony_analog_ae", {"n_tx_el": 16}),
    }
    schemes = "\n".join(f"  - {{name: s{i}, baseline: {name}}}" for i, name in enumerate(presets))
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nsnr: {{values: [0]}}\nchannels: [awgn]\nschemes:\n{schemes}\n")
    scenario = load_scenario(path)
    for spec, (name, (kind, expected)) in zip(scenario.schemes, presets.items(), strict=True):
        assert spec.type == kind and spec.label, name
        assert {k: spec.params[k] for k in expected} == expected, name


@pytest.mark.parametrize("profile", [None, "quick", "medium"])
def test_the_mnist_scenario_has_the_fig7_curves(profile):
    scenario = load_scenario(REPO / "scenarios" / "sinfony_mnist.yaml", profile=profile)
    types = {s.name: s.type for s in scenario.schemes}
    assert list(types.values()).count("sinfony_digital") == 4 and "sinfony_analog_ae" in types.values()
    assert list(types.values()).count("sinfony") == 9
    perfect = next(s for s in scenario.schemes if s.name == "perfect").params
    for s in scenario.schemes:
        if s.type != "sinfony":
            assert s.params["train"] == perfect["train"], s.name  # same cached perfect-comm. model
            if s.type == "sinfony_analog_ae":
                assert s.params["data"] == perfect["data"], s.name  # the same test images
