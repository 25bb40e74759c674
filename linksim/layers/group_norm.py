"""GroupNorm factory with the group count of the VQGAN/LDM-style autoencoders (32, or fewer for narrow layers)."""

from torch import nn

__all__ = ["group_norm"]


def group_norm(channels: int, num_groups: int = 32, eps: float = 1e-6) -> nn.GroupNorm:
    r"""Affine :class:`torch.nn.GroupNorm` over ``channels`` with ``min(num_groups, channels)`` groups.

    ``num_groups=32`` and ``eps=1e-6`` are the values of the VSCC autoencoder
    (seed000 §3). Narrow layers (``channels < num_groups``, e.g. a reduced
    model with base width 16) get one channel per group.

    :param channels: Number of channels ``C``; must be divisible by the group count.
    :param num_groups: Requested number of groups.
    :param eps: Variance floor.

    :output norm: `nn.GroupNorm` acting on [B, C, ...].

    .. rubric:: Examples

    >>> group_norm(192)    # GroupNorm(32, 192, eps=1e-06, affine=True)
    """
    groups = min(num_groups, channels)
    if channels % groups:
        raise ValueError(f"{channels} channels cannot be split into {groups} groups")
    return nn.GroupNorm(groups, channels, eps=eps)
