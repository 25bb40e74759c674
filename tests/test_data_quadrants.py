"""Tests for split_quadrants."""

import pytest
import torch

from linksim.data import split_quadrants


def test_quadrant_order_and_values():
    x = torch.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6)
    q = split_quadrants(x)
    assert q.shape == (2, 4, 3, 2, 3)
    assert torch.equal(q[:, 0], x[:, :, :2, :3])  # top-left
    assert torch.equal(q[:, 1], x[:, :, :2, 3:])  # top-right
    assert torch.equal(q[:, 2], x[:, :, 2:, :3])  # bottom-left
    assert torch.equal(q[:, 3], x[:, :, 2:, 3:])  # bottom-right
    assert q[0, 1, 0, 0, 0].item() == 3 and q[0, 2, 0, 0, 0].item() == 12


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bool, torch.complex64])
def test_general_grid_any_dtype(dtype):
    x = (torch.arange(1 * 2 * 6 * 9) % 7).reshape(1, 2, 6, 9).to(dtype)
    q = split_quadrants(x, grid=3)
    assert q.shape == (1, 9, 2, 2, 3) and q.dtype == dtype
    for r in range(3):
        for c in range(3):
            assert torch.equal(q[:, 3 * r + c], x[:, :, 2 * r:2 * r + 2, 3 * c:3 * c + 3])


def test_grid_one_is_a_view():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    q = split_quadrants(x, grid=1)
    assert q.shape == (1, 1, 1, 4, 4) and q.data_ptr() == x.data_ptr()


@pytest.mark.parametrize("shape, grid", [((1, 1, 5, 4), 2), ((1, 1, 4, 7), 2), ((2, 3, 6, 6), 4)])
def test_indivisible_sizes_raise(shape, grid):
    with pytest.raises(ValueError, match=f"divisible by grid={grid}"):
        split_quadrants(torch.zeros(shape), grid)


def test_bad_rank_or_grid_raise():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        split_quadrants(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="grid must be >= 1"):
        split_quadrants(torch.zeros(1, 1, 4, 4), 0)
