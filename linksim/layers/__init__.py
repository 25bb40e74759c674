"""Neural-network building blocks of the learned transceivers."""

from .agent_dense import AgentDense
from .dense import Dense
from .initializers import init_weights_
from .power_norm import PowerNormalization
from .resnet import PreActResidualUnit, PreActResNet, inference_chunk, preferred_memory_format

__all__ = [
    "AgentDense",
    "Dense",
    "PowerNormalization",
    "PreActResNet",
    "preferred_memory_format",
    "inference_chunk",
    "PreActResidualUnit",
    "init_weights_",
]
