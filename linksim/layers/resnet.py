"""Pre-activation ResNet-(6n+2) feature extractor, batched over agents with grouped convolutions."""

import torch
from torch import nn

from .initializers import init_weights_

__all__ = ["PreActResidualUnit", "PreActResNet", "preferred_memory_format", "inference_chunk"]

BN_EPS = 1e-3
"""BatchNorm epsilon (Keras default)."""

BN_MOMENTUM = 0.01
"""BatchNorm running-statistics update rate (Keras momentum 0.99)."""


def preferred_memory_format(device: torch.device | str) -> torch.memory_format:
    """Memory layout for the convolutions on ``device``: channels-last on a CPU, where oneDNN's grouped
    convolutions run 2-3x faster in it (``bench/sinfony_throughput.py``); the default layout elsewhere.
    Move a model with ``model.to(memory_format=...)``; :class:`PreActResNet` lays out its input to match."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def inference_chunk(device: torch.device | str) -> int | None:
    """Images per forward pass for inference on ``device``: 256 on a CPU, where the grouped
    convolutions of a batch of 2,000 images run about 2.7x slower per image than in chunks of 128-256
    (they fall out of the caches); ``None`` (the whole batch at once) elsewhere."""
    return 256 if torch.device(device).type == "cpu" else None


def _agent_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int, num_agents: int) -> nn.Conv2d:
    """Grouped convolution holding one independent ``in_channels -> out_channels`` conv per agent."""
    conv = nn.Conv2d(
        num_agents * in_channels,
        num_agents * out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        groups=num_agents,
    )
    # All convolutions feed a (pre-activation) BN-ReLU, so they are He-uniform initialised.
    init_weights_(conv.weight.unflatten(0, (num_agents, out_channels)), relu=True)
    nn.init.zeros_(conv.bias)
    return conv


def _agent_batch_norm(channels: int, num_agents: int) -> nn.BatchNorm2d:
    """BatchNorm over ``num_agents * channels`` channels, i.e. separate statistics per agent."""
    return nn.BatchNorm2d(num_agents * channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class PreActResidualUnit(nn.Module):
    r"""Pre-activation residual unit without bottleneck (He et al., identity mappings).

    ``out = conv2(ReLU(BN2(conv1(ReLU(BN1(x)))))) + shortcut(x)`` with 3x3
    convolutions (``conv1`` with stride ``stride``, padding 1). The shortcut is
    the identity, or a 1x1 convolution with stride ``stride`` on the raw input
    when the shape changes. All layers act on the channel layout
    ``[batch, num_agents * channels, H, W]`` as grouped convolutions and
    per-channel BatchNorm, which is exactly ``num_agents`` independent units.

    :param in_channels: Input channels per agent.
    :param out_channels: Output channels per agent.
    :param stride: Stride of ``conv1`` and of the shortcut.
    :param num_agents: Number of agents (groups).

    :input x: [batch, num_agents * in_channels, H, W], `torch.float32`
    :output y: [batch, num_agents * out_channels, ceil(H / stride), ceil(W / stride)], `torch.float32`
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, num_agents: int = 1):
        super().__init__()
        self.bn1 = _agent_batch_norm(in_channels, num_agents)
        self.conv1 = _agent_conv(in_channels, out_channels, 3, stride, num_agents)
        self.bn2 = _agent_batch_norm(out_channels, num_agents)
        self.conv2 = _agent_conv(out_channels, out_channels, 3, 1, num_agents)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = _agent_conv(in_channels, out_channels, 1, stride, num_agents)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(torch.relu(self.bn1(x)))
        h = self.conv2(torch.relu(self.bn2(h)))
        return h + self.shortcut(x)


class PreActResNet(nn.Module):
    r"""Pre-activation ResNet-(6n+2) feature extractor, one independent network per agent.

    Stem 3x3 convolution (stride 1, ``base_width`` filters), three stages of
    ``units_per_stage`` residual units with ``base_width``, ``2 * base_width`` and
    ``4 * base_width`` filters (first unit of stages 2 and 3 with stride 2), then
    BN -> ReLU -> global average pooling. Every unit, including the first one,
    applies BN-ReLU to its input. MNIST ResNet14: ``units_per_stage=2,
    base_width=14``; CIFAR ResNet20: ``units_per_stage=3, base_width=16``.

    The ``num_agents`` networks run as one batched computation (grouped
    convolutions with ``groups=num_agents``, BatchNorm with per-agent channels);
    each agent has its own parameters and the parameter count is
    ``num_agents`` times that of one network. ``num_agents=1`` is the plain
    (central) network.

    :param in_channels: Image channels per agent.
    :param units_per_stage: Residual units per stage ``n``.
    :param base_width: Filters of the stem and of stage 1.
    :param num_agents: Number of agents.

    :input x: [batch, num_agents, in_channels, H, W], `torch.float32`
    :output r: [batch, num_agents, num_features], `torch.float32` -- ``num_features = 4 * base_width``
    """

    def __init__(self, in_channels: int, units_per_stage: int, base_width: int, num_agents: int = 1):
        super().__init__()
        self.num_agents = num_agents
        self.num_features = 4 * base_width
        self.stem = _agent_conv(in_channels, base_width, 3, 1, num_agents)
        units = []
        channels = base_width
        for stage in range(3):
            width = base_width * 2**stage
            for unit in range(units_per_stage):
                stride = 2 if stage > 0 and unit == 0 else 1
                units.append(PreActResidualUnit(channels, width, stride, num_agents))
                channels = width
        self.units = nn.Sequential(*units)
        self.bn = _agent_batch_norm(channels, num_agents)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2).contiguous(memory_format=preferred_memory_format(x.device))
        h = self.units(self.stem(x))
        h = torch.relu(self.bn(h)).mean(dim=(-2, -1))
        return h.unflatten(1, (self.num_agents, self.num_features))
