"""Tests of the SINFONY building blocks in linksim.layers."""

import math

import pytest
import torch
import torch.nn.functional as F

from linksim.layers import AgentDense, Dense, PowerNormalization, PreActResNet


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_vector_power_norm_gives_unit_power_per_vector():
    x = torch.randn(32, 4, 7) * torch.logspace(-3, 3, 32).view(32, 1, 1)
    y = PowerNormalization("vector")(x)
    torch.testing.assert_close(y.square().mean(dim=-1), torch.ones(32, 4))
    # direction is kept
    torch.testing.assert_close(F.normalize(y, dim=-1), F.normalize(x, dim=-1))


def test_vector_power_norm_zero_vector_stays_finite():
    y = PowerNormalization("vector")(torch.zeros(3, 5))
    assert torch.equal(y, torch.zeros(3, 5))


def test_batch_power_norm_training_unit_power_per_element_and_running_update():
    norm = PowerNormalization("batch", feature_shape=(4, 7), momentum=0.01)
    scale = torch.rand(4, 7) * 10 + 0.1
    x = torch.randn(256, 4, 7) * scale
    y = norm.train()(x)
    torch.testing.assert_close(y.square().mean(dim=0), torch.ones(4, 7))
    batch_power = x.square().mean(dim=0)
    torch.testing.assert_close(norm.running_power, 0.99 + 0.01 * batch_power)
    assert "running_power" in norm.state_dict()


def test_batch_power_norm_eval_uses_running_statistics():
    norm = PowerNormalization("batch", feature_shape=(3,), momentum=0.1)
    scale = torch.tensor([0.5, 2.0, 8.0])
    for _ in range(200):
        norm.train()(torch.randn(512, 3) * scale)
    torch.testing.assert_close(norm.running_power, scale.square(), rtol=0.1, atol=0.0)
    norm.eval()
    x = torch.randn(4096, 3) * scale
    y = norm(x)
    torch.testing.assert_close(y.square().mean(dim=0), torch.ones(3), rtol=0.15, atol=0.0)
    # eval output of a sample does not depend on the rest of the batch
    torch.testing.assert_close(norm(x[:1]), y[:1])
    before = norm.running_power.clone()
    norm(x)
    assert torch.equal(norm.running_power, before)


def test_power_norm_rejects_bad_arguments():
    with pytest.raises(ValueError):
        PowerNormalization("frame")
    with pytest.raises(ValueError):
        PowerNormalization("batch")


def test_agent_dense_equals_independent_dense_layers():
    layer = AgentDense(5, 3, num_agents=4, relu=True)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 6, 4, 5)
    y = layer(x)
    assert y.shape == (2, 6, 4, 3)
    for a in range(4):
        torch.testing.assert_close(y[..., a, :], torch.relu(F.linear(x[..., a, :], layer.weight[a], layer.bias[a])))


@pytest.mark.parametrize("relu", [True, False])
def test_agent_dense_init_uses_per_agent_fans(relu):
    fan_in, fan_out = 200, 100
    layer = AgentDense(fan_in, fan_out, num_agents=4, relu=relu)
    bound = math.sqrt(6 / fan_in) if relu else math.sqrt(6 / (fan_in + fan_out))
    assert torch.count_nonzero(layer.bias) == 0
    for w in layer.weight:
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.95 * bound
    assert not torch.equal(layer.weight[0], layer.weight[1])


def test_dense_init_and_activation():
    relu, linear = Dense(300, 100, relu=True), Dense(300, 100)
    for layer, bound in [(relu, math.sqrt(6 / 300)), (linear, math.sqrt(6 / 400))]:
        assert 0.95 * bound < layer.weight.abs().max() <= bound
        assert torch.count_nonzero(layer.bias) == 0
    x = torch.randn(8, 300)
    assert (relu(x) >= 0).all()
    assert (linear(x) < 0).any()


def test_resnet_conv_init_uses_per_agent_fan():
    net = PreActResNet(3, units_per_stage=1, base_width=64, num_agents=4)
    w = net.units[2].conv2.weight.unflatten(0, (4, -1))  # [agents, 256, 256, 3, 3]
    bound = math.sqrt(6 / (256 * 9))
    assert w.abs().max() <= bound
    for a in range(4):
        assert w[a].abs().max() > 0.95 * bound
    assert torch.count_nonzero(net.units[2].conv2.bias) == 0


@pytest.mark.parametrize(("size", "n", "width", "spatial"), [(14, 2, 14, [14, 7, 4]), (16, 3, 16, [16, 8, 4])])
def test_resnet_stage_shapes(size, n, width, spatial):
    net = PreActResNet(1, units_per_stage=n, base_width=width, num_agents=4)
    assert len(net.units) == 3 * n
    h = net.stem(torch.rand(2, 4, size, size))
    for stage in range(3):
        for unit in net.units[stage * n : (stage + 1) * n]:
            h = unit(h)
        assert h.shape == (2, 4 * width * 2**stage, spatial[stage], spatial[stage])
    assert net(torch.rand(2, 4, 1, size, size)).shape == (2, 4, 4 * width)
