"""Tests of the SINFONY, central-classifier and analog-AE models in linksim.models."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from linksim.models import AnalogFeatureAE, CentralClassifier, Sinfony, conv_kernels, count_parameters

MNIST = dict(in_channels=1, image_size=28, units_per_stage=2, base_width=14)
CIFAR = dict(in_channels=3, image_size=32, units_per_stage=3, base_width=16)


def _central(cfg: dict) -> CentralClassifier:
    return CentralClassifier(in_channels=cfg["in_channels"], units_per_stage=cfg["units_per_stage"],
                             base_width=cfg["base_width"])


def _randomize_batch_norm(model: nn.Module) -> None:
    """Non-trivial BN affine parameters, so that a wrong per-agent slicing would show."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)


def _agent_state(batched: nn.Module, single: nn.Module, agent: int, num_agents: int) -> dict:
    """Agent ``agent``'s entries of ``batched``'s state, laid out for the single-agent model ``single``."""
    source = batched.state_dict()
    state = {}
    for key, target in single.state_dict().items():
        tensor = source[key]
        if tensor.shape != target.shape:  # per-agent tensor: agents are stacked along dim 0
            tensor = tensor.unflatten(0, (num_agents, -1))[agent]
        state[key] = tensor
    return state


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- parameter counts (spec section 3) ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (lambda: _central(CIFAR), 273_066),
        (lambda: Sinfony(**CIFAR, n_tx=64, n_rx=64), 1_127_754),
        (lambda: _central(MNIST).feature_extractor, 133_924),
        (lambda: _central(MNIST), 134_494),
        (lambda: Sinfony(**MNIST), 536_266),
        (lambda: Sinfony(**MNIST, n_tx=56), 564_994),
        (lambda: Sinfony(**MNIST, n_tx=14, n_rx=56), 541_138),
        (lambda: AnalogFeatureAE(), (32 + 32 + 32 * 32 + 32 + 32 * 16 + 16) + (16 * 32 + 32 + 32 * 32 + 32 + 33)),
    ],
)
def test_parameter_counts(model, expected):
    assert count_parameters(model()) == expected


def test_cifar_parameter_breakdown():
    model = Sinfony(**CIFAR, n_tx=64)
    assert count_parameters(_central(CIFAR).feature_extractor) == 272_416
    assert count_parameters(model.feature_extractor) == 4 * 272_416
    assert count_parameters(model.tx) == 4 * 8_320
    assert count_parameters(model.rx) == 4_160
    assert count_parameters(model.rx) + count_parameters(model.classifier) == 4_810


def test_conv_kernels_are_exactly_the_convolution_weights():
    model = _central(CIFAR)
    kernels = conv_kernels(model)
    assert len(kernels) == 1 + 2 * 9 + 2  # stem, two convs per unit, two projection shortcuts
    assert all(k.dim() == 4 for k in kernels)
    n_conv = sum(k.numel() for k in kernels)
    n_other = sum(p.numel() for p in model.parameters() if p.dim() < 4)
    assert n_conv + n_other == count_parameters(model)
    assert model.classifier.weight not in set(kernels)


# --- shapes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("n_tx", [None, 2, 4, 7, 14, 56])
def test_sinfony_shapes(cfg, n_tx):
    model = Sinfony(**cfg, n_tx=n_tx)
    n_feat = 4 * cfg["base_width"]
    size = cfg["image_size"]
    images = torch.rand(3, cfg["in_channels"], size, size)
    r = model.features(images)
    x = model.encode(images)
    expected_n_tx = n_feat if n_tx is None else n_tx
    assert r.shape == (3, 4, n_feat)
    assert x.shape == (3, 4, expected_n_tx) and x.dtype == torch.float32
    assert model.n_tx == expected_n_tx and model.channel_uses_real == 4 * expected_n_tx
    logits = model(images, channel_fn=lambda v: v + 0.1 * torch.randn_like(v))
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    assert model.decode(x).shape == (3, 10)


@pytest.mark.parametrize("cfg", [MNIST, CIFAR], ids=["mnist", "cifar"])
def test_central_shapes(cfg):
    size = cfg["image_size"]
    model = _central(cfg)
    images = torch.rand(3, cfg["in_channels"], size, size)
    assert model.features(images).shape == (3, 4 * cfg["base_width"])
    assert model(images).shape == (3, 10)


def test_sinfony_rejects_wrong_inputs():
    with pytest.raises(ValueError):
        Sinfony(**MNIST, n_rx=56)  # perfect comm has no Rx
    with pytest.raises(ValueError):
        Sinfony(**{**MNIST, "image_size": 27})
    with pytest.raises(ValueError):
        Sinfony(**MNIST).features(torch.rand(2, 3, 28, 28))


def test_perfect_comm_is_power_normalised_features():
    model = Sinfony(**MNIST).eval()
    images = torch.rand(4, 1, 28, 28)
    r = model.features(images)
    x = model.encode(images)
    assert model.rx is None
    torch.testing.assert_close(x, 56**0.5 * F.normalize(r, dim=-1))
    torch.testing.assert_close(model.decode(x), model.classifier(x.mean(dim=1)))


@pytest.mark.parametrize("power_norm", ["vector", "batch"])
def test_tx_output_has_unit_power(power_norm):
    model = Sinfony(**MNIST, n_tx=7, power_norm=power_norm).train()
    x = model.encode(torch.rand(64, 1, 28, 28))
    power = x.square().mean(dim=-1) if power_norm == "vector" else x.square().mean(dim=0)
    torch.testing.assert_close(power, torch.ones_like(power))


# --- batched agents == independent agents -----------------------------------------------------------

@pytest.mark.parametrize("power_norm", ["vector", "batch"])
def test_batched_agents_equal_independent_networks(power_norm):
    batched = Sinfony(**MNIST, n_tx=14, n_rx=56, tx_layers=2, power_norm=power_norm)
    _randomize_batch_norm(batched)
    with torch.no_grad():  # populate per-agent running statistics
        for _ in range(2):
            batched.train()(torch.rand(16, 1, 28, 28))
    batched.eval()
    images = torch.rand(5, 1, 28, 28)
    r, x = batched.features(images), batched.encode(images)

    single = Sinfony(in_channels=1, image_size=14, grid=1, units_per_stage=2, base_width=14,
                     n_tx=14, n_rx=56, tx_layers=2, power_norm=power_norm).eval()
    assert 4 * count_parameters(single.feature_extractor) == count_parameters(batched.feature_extractor)
    quadrants = [images[..., :14, :14], images[..., :14, 14:], images[..., 14:, :14], images[..., 14:, 14:]]
    for agent, quadrant in enumerate(quadrants):
        single.load_state_dict(_agent_state(batched, single, agent, 4))
        torch.testing.assert_close(single.features(quadrant)[:, 0], r[:, agent], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(single.encode(quadrant)[:, 0], x[:, agent], rtol=1e-5, atol=1e-5)
    # agents do not share weights
    assert not torch.allclose(r[:, 0], r[:, 1], atol=1e-3)


def test_receiver_is_shared_and_pools_over_agents():
    model = Sinfony(**MNIST, n_tx=7, n_rx=56).eval()
    y = torch.randn(6, 4, 7)
    logits = model.decode(y)
    torch.testing.assert_close(model.decode(y[:, [2, 0, 3, 1]]), logits)
    hidden = torch.relu(y @ model.rx.weight.T + model.rx.bias).mean(dim=1)
    torch.testing.assert_close(logits, hidden @ model.classifier.weight.T + model.classifier.bias)


# --- training -----------------------------------------------------------------------------------------

def _noisy_channel(x: torch.Tensor) -> torch.Tensor:
    return x + 0.5 * torch.randn_like(x)


def test_gradients_reach_every_agent_through_noisy_channel():
    model = Sinfony(**MNIST, n_tx=7, n_rx=56).train()
    loss = F.cross_entropy(model(torch.rand(8, 1, 28, 28), channel_fn=_noisy_channel), torch.arange(8) % 10)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    per_agent = [model.feature_extractor.stem.weight, model.tx[0].weight, model.tx[-2].weight]
    for param in per_agent:
        grad_norms = param.grad.unflatten(0, (4, -1)).flatten(1).norm(dim=1)
        assert (grad_norms > 0).all(), grad_norms
    assert model.rx.weight.grad.norm() > 0 and model.classifier.weight.grad.norm() > 0


def test_sgd_steps_lower_the_loss():
    model = Sinfony(**MNIST, n_tx=14, n_rx=56).train()
    images = torch.rand(64, 1, 28, 28)
    labels = torch.randint(0, 10, (64,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss_fn() -> torch.Tensor:
        ce = F.cross_entropy(model(images, channel_fn=_noisy_channel), labels)
        return ce + 1e-4 * sum(k.square().sum() for k in conv_kernels(model))

    torch.manual_seed(1)
    with torch.no_grad():
        initial = loss_fn().item()
    for _ in range(15):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    torch.manual_seed(1)
    with torch.no_grad():
        final = loss_fn().item()
    assert final < 0.7 * initial, (initial, final)


# --- analog per-feature autoencoder -------------------------------------------------------------------

def test_analog_feature_ae_shapes_and_power():
    ae = AnalogFeatureAE()
    r = torch.randn(5, 4, 56)
    x = ae.encode(r)
    assert x.shape == (5, 4, 56, 16)
    torch.testing.assert_close(x.square().mean(dim=-1), torch.ones(5, 4, 56))
    assert ae.decode(x).shape == r.shape
    assert ae(r, channel_fn=_noisy_channel).shape == r.shape


def test_analog_feature_ae_learns_to_reconstruct():
    ae = AnalogFeatureAE()
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-2)
    r = torch.randn(1000)
    initial = F.mse_loss(ae(r), r).item()
    for _ in range(100):
        optimizer.zero_grad()
        F.mse_loss(ae(r), r).backward()
        optimizer.step()
    assert F.mse_loss(ae(r), r).item() < 0.1 * initial
