"""Split images into a row-major grid of equal tiles (quadrants for ``grid=2``)."""

from __future__ import annotations

import torch

__all__ = ["split_quadrants"]


def split_quadrants(x: torch.Tensor, grid: int = 2) -> torch.Tensor:
    """Tile ``[B, C, H, W]`` into ``[B, grid*grid, C, H/grid, W/grid]``.

    Tiles are in row-major order: for ``grid=2`` top-left, top-right, bottom-left,
    bottom-right. Any dtype; the result is a view of ``x`` where strides allow it
    (``grid=1`` or ``H/grid == 1``), otherwise one copy.

    Raises:
        ValueError: ``x`` is not 4-D, ``grid < 1``, or ``H``/``W`` is not divisible by ``grid``.
    """
    if x.ndim != 4:
        raise ValueError(f"split_quadrants expects [B, C, H, W], got shape {tuple(x.shape)}")
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    b, c, h, w = x.shape
    if h % grid or w % grid:
        raise ValueError(f"split_quadrants: H={h} and W={w} must both be divisible by grid={grid}")
    th, tw = h // grid, w // grid
    tiles = x.reshape(b, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(b, grid * grid, c, th, tw)
