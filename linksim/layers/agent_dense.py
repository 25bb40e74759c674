"""Per-agent dense layer evaluated for all agents in one batched matrix product."""

import torch
from torch import nn

from .initializers import init_weights_

__all__ = ["AgentDense"]


class AgentDense(nn.Module):
    r"""Independent fully connected layer for each of ``num_agents`` agents.

    Agent ``a`` computes ``y[..., a, :] = act(x[..., a, :] W_a^T + b_a)`` with its
    own parameters ``W_a`` and ``b_a``; all agents run in one ``einsum`` (a
    batched matrix product) instead of ``num_agents`` separate layers. The
    weights are stored as ``weight [num_agents, out_features, in_features]`` and
    ``bias [num_agents, out_features]``. Each agent's weight is He-uniform
    initialised if ``relu`` else Glorot-uniform, with its own fans; biases are
    zero.

    :param in_features: Input width per agent.
    :param out_features: Output width per agent.
    :param num_agents: Number of agents.
    :param relu: Apply a ReLU to the output.

    :input x: [..., num_agents, in_features], `torch.float32`
    :output y: [..., num_agents, out_features], `torch.float32`
    """

    def __init__(self, in_features: int, out_features: int, num_agents: int, *, relu: bool = False):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.num_agents = num_agents
        self.relu = relu
        self.weight = nn.Parameter(torch.empty(num_agents, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(num_agents, out_features))
        init_weights_(self.weight, relu=relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("...ai,aoi->...ao", x, self.weight) + self.bias
        return torch.relu(y) if self.relu else y

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_agents={self.num_agents}, relu={self.relu}"
        )
