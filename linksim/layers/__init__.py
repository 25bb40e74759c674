"""Neural-network building blocks of the learned transceivers."""

from .agent_dense import AgentDense
from .attention import AttentionBlock, SelfAttention2d
from .dense import Dense
from .gdn import GDN, IGDN
from .group_norm import group_norm
from .initializers import init_weights_
from .power_norm import PowerNormalization
from .residual import (
    GroupNormResBlock,
    PostActResidualUnit,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
)
from .resnet import PreActResidualUnit, PreActResNet, inference_chunk, preferred_memory_format
from .subpel import DepthToSpaceConv, subpel_conv3x3

__all__ = [
    "AgentDense",
    "Dense",
    "PowerNormalization",
    "PreActResNet",
    "preferred_memory_format",
    "inference_chunk",
    "PreActResidualUnit",
    "init_weights_",
    "GDN",
    "IGDN",
    "group_norm",
    "ResidualBlock",
    "ResidualBlockWithStride",
    "ResidualBlockUpsample",
    "GroupNormResBlock",
    "PostActResidualUnit",
    "AttentionBlock",
    "SelfAttention2d",
    "subpel_conv3x3",
    "DepthToSpaceConv",
]
