"""The SINFONY scheme: channel glue, channel-use accounting, training, the weight cache, encode once."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyContext, tiny_mnist
from sionna.phy import config as sionna_config

import linksim.schemes.sinfony.classifier as classifier_module
import linksim.schemes.sinfony.reference as reference_module
import linksim.training.learned as learned_module
from linksim.channels import AWGNChannel
from linksim.layers import inference_chunk
from linksim.link.packing import complex_to_real, real_to_complex
from linksim.schemes.sinfony.classifier import SinfonyScheme
from linksim.schemes.sinfony.reference import SinfonyParams, SinfonyTrainParams
from linksim.snr import snr_on_all_axes
from linksim.training import PiecewiseSchedule, TrainParams, train


class _Context(TinyContext):
    train_size, test_size = 256, 64


@pytest.mark.parametrize("n", [1, 7, 14])
def test_real_complex_packing_round_trips_and_keeps_unit_energy(n):
    x = torch.randn(5, 4, n)
    x = x / x.square().mean().sqrt()
    z = real_to_complex(x)
    assert z.shape == (5, 4 * math.ceil(n / 2)) and z.dtype == torch.complex64
    assert torch.allclose(complex_to_real(z, (4, n)), x, atol=1e-6)
    padded = 4 * math.ceil(n / 2) * 2
    assert z.abs().square().mean().item() == pytest.approx(4 * n / padded, rel=1e-5)


def test_per_real_channel_use_snr_equals_es_over_n0():
    torch.manual_seed(0)
    x = torch.zeros(2000, 4, 14)
    no = torch.tensor(0.25)  # Es/N0 = 6 dB -> sigma^2 = 1/SNR = 0.25 per real channel use
    y, _ = AWGNChannel()(real_to_complex(x), no)
    assert complex_to_real(y, (4, 14)).var().item() == pytest.approx(0.25, rel=0.02)


@pytest.mark.parametrize(("variant", "n_tx", "complex_uses", "shift_db"),
                         [("txrx", 14, 28, -6.0206), ("txrx", 7, 14, -9.0309), ("perfect", None, 112, 0.0),
                          ("central", None, 112, 0.0)])
def test_channel_uses_and_rate_normalised_shift(variant, n_tx, complex_uses, shift_db):
    scheme = SinfonyScheme(SinfonyParams(variant=variant, n_tx=n_tx))
    budget = scheme.budget(AWGNChannel())
    assert budget.channel_uses == pytest.approx(complex_uses) and budget.info_bits is None
    axes = snr_on_all_axes(0.0, budget, reference_channel_uses=224 / 2)
    assert axes["snr_norm_db"] == pytest.approx(shift_db, abs=1e-3)


def test_params_are_checked():
    with pytest.raises(ValueError, match="needs n_tx"):
        SinfonyParams(variant="txrx")
    with pytest.raises(ValueError, match="only apply to variant txrx"):
        SinfonyParams(variant="perfect", n_tx=4)
    with pytest.raises(ValueError, match="SINFONY is set up for mnist, cifar10"):
        SinfonyParams(variant="perfect", data={"name": "synthetic-mnist"})


def test_the_papers_recipe_is_the_default():
    train = SinfonyParams(variant="perfect").train
    assert (train.optimizer, train.lr, train.momentum, train.batch_size, train.epochs, train.conv_l2) == (
        "sgd", 0.1, 0.9, 64, 20, 1e-4)
    assert train.schedule == PiecewiseSchedule(milestones=[3, 6], decay=0.1) and train.snr_db == (-4.0, 6.0)


def test_training_lowers_the_loss_and_resumes_from_its_checkpoint(tmp_path):
    data = tiny_mnist(256, 0)
    params = TrainParams(epochs=3, batch_size=32, optimizer="sgd", lr=0.05, schedule={"milestones": [2]}, snr_db=None)

    def run(epochs, checkpoint):
        torch.manual_seed(3)
        scheme = SinfonyScheme(SinfonyParams(variant="txrx", n_tx=4, n_rx=8))

        def step(images, labels, rng):
            logits = scheme.model(images)
            return torch.nn.functional.cross_entropy(logits, labels), {"accuracy": logits.argmax(-1) == labels}

        hist = train(scheme.model, step, data.images, data.labels, params.model_copy(update={"epochs": epochs}),
                     seed=1, checkpoint=checkpoint)
        return scheme.model, hist

    straight, hist = run(3, None)
    assert hist[-1]["loss"] < hist[0]["loss"] and [h["lr"] for h in hist] == pytest.approx([0.05, 0.05, 0.005])
    ck = tmp_path / "ck.pt"
    run(2, ck)  # "killed" after two epochs
    resumed, hist2 = run(3, ck)
    assert [h["loss"] for h in hist2] == pytest.approx([h["loss"] for h in hist])
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_trained_weights_are_cached_and_reused(tmp_path, monkeypatch):
    ctx = _Context(cache_dir=tmp_path / "models", run_dir=tmp_path / "run", train_channel=AWGNChannel(),
                   train_channel_spec={"name": "awgn", "type": "awgn", "params": {}}, progress=False)
    params = SinfonyParams(variant="txrx", n_tx=4, n_rx=8, train=SinfonyTrainParams(epochs=1))
    first = SinfonyScheme(params)
    first.name = "txrx4"
    first.prepare(ctx)
    assert first.describe()["weights_reused"] is False
    assert (tmp_path / "run" / "training" / "txrx4.csv").read_text().startswith("epoch,lr,loss,accuracy")

    monkeypatch.setattr(learned_module, "train", lambda *a, **k: pytest.fail("retrained instead of reusing the cache"))
    second = SinfonyScheme(params)
    second.prepare(ctx)
    assert second.describe()["weights_reused"] is True
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    # anything that changes the weights changes the key: a different training SNR range retrains
    other = SinfonyScheme(params.model_copy(update={"train": SinfonyTrainParams(epochs=1, snr_db=(0.0, 1.0))}))
    with pytest.raises(pytest.fail.Exception, match="retrained"):
        other.prepare(ctx)


def test_awgn_variant_reuses_the_perfect_model_and_evaluates_over_the_channel(tmp_path):
    ctx = _Context(cache_dir=tmp_path, train_channel=AWGNChannel(), progress=False)
    perfect = SinfonyScheme(SinfonyParams(variant="perfect", train=SinfonyTrainParams(epochs=1)))
    perfect.prepare(ctx)
    awgn = SinfonyScheme(SinfonyParams(variant="awgn", train=SinfonyTrainParams(epochs=1)))
    awgn.prepare(ctx)
    assert awgn.describe()["weights"] == perfect.describe()["weights"] and awgn.describe()["weights_reused"]
    with torch.no_grad():
        clean = perfect.simulate(64, torch.tensor(10.0), AWGNChannel())
        noisy = awgn.simulate(64, torch.tensor(1e3), AWGNChannel())  # -30 dB
    assert clean["samples"] == noisy["samples"] == 64
    assert noisy["loss_sum"] > clean["loss_sum"]


def test_compile_switch_routes_training_and_evaluation_through_the_compiled_model(tmp_path, monkeypatch):
    calls = []

    def fake_compiled(fn, **kwargs):  # stands in for torch.compile (seconds to minutes on a CPU)
        def call(*args):
            calls.append(len(args[0]))
            return fn(*args)
        return call

    monkeypatch.setattr(reference_module, "compiled", fake_compiled)  # the training forward pass
    monkeypatch.setattr(classifier_module, "compiled", fake_compiled)  # the receiver, per SNR point
    ctx = _Context(cache_dir=tmp_path, train_channel=AWGNChannel(), progress=False, compile=True)
    scheme = SinfonyScheme(SinfonyParams(variant="txrx", n_tx=4, train=SinfonyTrainParams(epochs=1)))
    scheme.prepare(ctx)
    assert calls == [64] * 4  # 256 training images, batch 64
    with torch.no_grad():
        scheme.simulate(64, torch.tensor(0.5), AWGNChannel())
    assert calls[-1] == 64


class _ManyTestImages(TinyContext):
    train_size, test_size = 256, 600  # more than one CPU inference chunk


@pytest.mark.parametrize(("variant", "n_tx"), [("txrx", 5), ("awgn", None), ("perfect", None), ("central", None)])
def test_encoding_once_gives_the_counters_of_the_whole_network(tmp_path, variant, n_tx):
    """A point runs the channel and the receiver on the Tx output computed in ``prepare``: the counters
    equal those of the whole network run on the images, in the same chunks and with the same noise."""
    ctx = _ManyTestImages(cache_dir=tmp_path, train_channel=AWGNChannel(), progress=False)
    scheme = SinfonyScheme(SinfonyParams(variant=variant, n_tx=n_tx, train=SinfonyTrainParams(epochs=1)))
    scheme.prepare(ctx)
    test, channel, no = ctx.dataset("mnist", "test"), AWGNChannel(), torch.tensor(0.5)
    sionna_config.seed = 5
    counters = scheme.simulate(600, no, channel)
    sionna_config.seed = 5
    step, chunks = inference_chunk("cpu"), []
    with torch.no_grad():
        for i in range(0, 600, step):
            images = test.images[i : i + step].float() / 255.0
            if scheme.params.uses_channel:
                no_b = no.expand(len(images))
                chunks.append(scheme.model(images, lambda x, no_b=no_b: scheme.reference.through(x, channel, no_b)))
            else:
                chunks.append(scheme.model(images))
    logits = torch.cat(chunks)
    assert counters["samples"] == 600
    assert counters["errors"] == int((logits.argmax(-1) != test.labels).sum())
    assert counters["loss_sum"] == pytest.approx(float(F.cross_entropy(logits, test.labels, reduction="sum")),
                                                 rel=1e-6)
