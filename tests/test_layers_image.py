"""Tests of the image-autoencoder building blocks in linksim.layers (GDN, residual, attention, sub-pixel)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from linksim.layers import (
    GDN,
    IGDN,
    AttentionBlock,
    DepthToSpaceConv,
    GroupNormResBlock,
    PostActResidualUnit,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    SelfAttention2d,
    group_norm,
    subpel_conv3x3,
)
from linksim.layers.gdn import lower_bound


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _set_gdn(gdn: GDN, beta: torch.Tensor, gamma: torch.Tensor) -> None:
    """Loads effective ``beta``/``gamma`` into ``gdn`` through its reparametrisation."""
    with torch.no_grad():
        gdn.beta_param.copy_(torch.sqrt(beta + gdn.pedestal))
        gdn.gamma_param.copy_(torch.sqrt(gamma + gdn.pedestal))


def _random_gdn(channels: int, inverse: bool) -> tuple[GDN, torch.Tensor, torch.Tensor]:
    gdn = GDN(channels, inverse=inverse).double()
    beta = torch.rand(channels, dtype=torch.float64) + 0.1
    gamma = torch.rand(channels, channels, dtype=torch.float64) * 0.5
    _set_gdn(gdn, beta, gamma)
    return gdn, beta, gamma


def _gdn_norm(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    return beta.view(1, -1, 1, 1) + torch.einsum("ij,bjhw->bihw", gamma, x.square())


# --------------------------------------------------------------------------- GDN


def test_gdn_init_values():
    gdn = GDN(5, gamma_init=0.2)
    torch.testing.assert_close(gdn.beta, torch.ones(5))
    torch.testing.assert_close(gdn.gamma, 0.2 * torch.eye(5))


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_formula(inverse):
    gdn, beta, gamma = _random_gdn(6, inverse)
    torch.testing.assert_close(gdn.beta, beta)
    torch.testing.assert_close(gdn.gamma, gamma)
    x = torch.randn(3, 6, 5, 4, dtype=torch.float64) * 2
    norm = _gdn_norm(x, beta, gamma)
    expected = x * norm.sqrt() if inverse else x / norm.sqrt()
    torch.testing.assert_close(gdn(x), expected)


def test_igdn_is_gdn_inverse_mode():
    igdn = IGDN(4, beta_min=1e-5, gamma_init=0.3)
    assert igdn.inverse and igdn.beta_min == 1e-5
    gdn = GDN(4, inverse=True, beta_min=1e-5, gamma_init=0.3)
    gdn.load_state_dict(igdn.state_dict())
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(igdn(x), gdn(x))


def test_igdn_inverts_gdn_without_cross_terms():
    # gamma = 0: both are per-channel scalings by sqrt(beta), exact inverses
    gdn, beta, _ = _random_gdn(4, inverse=False)
    _set_gdn(gdn, beta, torch.zeros(4, 4, dtype=torch.float64))
    igdn = GDN(4, inverse=True).double()
    igdn.load_state_dict(gdn.state_dict())
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(igdn(gdn(x)), x)


def test_igdn_is_first_fixed_point_step_of_the_exact_inverse():
    # y = GDN(x) means x = y * sqrt(beta + gamma x^2); iterating from x_0 = y, the first step is IGDN(y)
    gdn, beta, gamma = _random_gdn(4, inverse=False)
    _set_gdn(gdn, beta + 1.0, gamma * 0.1)
    igdn = GDN(4, inverse=True).double()
    igdn.load_state_dict(gdn.state_dict())
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    y = gdn(x)
    x_k = y
    for k in range(60):
        x_k = y * _gdn_norm(x_k, gdn.beta, gdn.gamma).sqrt()
        if k == 0:
            torch.testing.assert_close(x_k, igdn(y))
    torch.testing.assert_close(x_k, x)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_gradients_flow(inverse):
    gdn = GDN(3, inverse=inverse)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    gdn(x).square().sum().backward()
    for grad in (x.grad, gdn.beta_param.grad, gdn.gamma_param.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gdn_parameters_stay_non_negative_and_can_recover():
    gdn = GDN(3, beta_min=1e-4)
    opt = torch.optim.SGD(gdn.parameters(), lr=10.0)
    for _ in range(3):  # push beta and gamma hard towards negative values
        opt.zero_grad()
        (gdn.beta.sum() + gdn.gamma.sum()).backward()
        opt.step()
    assert (gdn.beta_param < 0).all() and (gdn.gamma_param < 0).all()  # raw parameters overshot ...
    assert (gdn.beta >= 1e-4 - 1e-12).all() and (gdn.gamma >= 0).all()  # ... effective ones are bounded
    torch.testing.assert_close(gdn.beta, torch.full((3,), 1e-4))
    y = gdn(torch.randn(2, 3, 4, 4) * 1e-3)
    assert torch.isfinite(y).all()
    # a gradient pushing beta up reaches the parameter although it sits below the bound
    before = gdn.beta_param.detach().clone()
    opt.zero_grad()
    (-gdn.beta.sum()).backward()
    assert (gdn.beta_param.grad < 0).all()
    opt.step()
    assert (gdn.beta_param > before).all()


def test_lower_bound_gradient_is_identity_if_towards():
    x = torch.tensor([2.0, -1.0, -1.0], requires_grad=True)
    y = lower_bound(x, 0.5)
    assert torch.equal(y.detach(), torch.tensor([2.0, 0.5, 0.5]))
    # d loss / d y = [1, 1, -1]: descent lowers x[0] (above: passes) and x[1] (below, away: blocked), raises x[2]
    (y * torch.tensor([1.0, 1.0, -1.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 0.0, -1.0]))


def test_gdn_rejects_non_positive_beta_min():
    with pytest.raises(ValueError):
        GDN(3, beta_min=0.0)


# --------------------------------------------------------------------------- shapes


SHAPE_CASES = [
    (lambda: ResidualBlock(3, 8), (2, 3, 9, 7), (2, 8, 9, 7)),
    (lambda: ResidualBlock(8, 8), (2, 8, 9, 7), (2, 8, 9, 7)),
    (lambda: ResidualBlockWithStride(3, 8, stride=2), (2, 3, 16, 12), (2, 8, 8, 6)),
    (lambda: ResidualBlockWithStride(3, 8, stride=2), (2, 3, 15, 9), (2, 8, 8, 5)),
    (lambda: ResidualBlockWithStride(8, 8, stride=4), (2, 8, 16, 16), (2, 8, 4, 4)),
    (lambda: ResidualBlockWithStride(8, 8, stride=1), (2, 8, 5, 5), (2, 8, 5, 5)),
    (lambda: ResidualBlockUpsample(8, 3, upsample=2), (2, 8, 4, 5), (2, 3, 8, 10)),
    (lambda: ResidualBlockUpsample(8, 8, upsample=3), (2, 8, 2, 2), (2, 8, 6, 6)),
    (lambda: subpel_conv3x3(8, 4, 2), (2, 8, 3, 4), (2, 4, 6, 8)),
    (lambda: GroupNormResBlock(32, 64), (2, 32, 6, 6), (2, 64, 6, 6)),
    (lambda: GroupNormResBlock(16), (2, 16, 6, 5), (2, 16, 6, 5)),
    (lambda: GroupNormResBlock(12, 8, num_groups=4), (2, 12, 4, 4), (2, 8, 4, 4)),
    (lambda: PostActResidualUnit(8, 8), (2, 8, 8, 8), (2, 8, 8, 8)),
    (lambda: PostActResidualUnit(8, 16, stride=2), (2, 8, 7, 8), (2, 16, 4, 4)),
    (lambda: DepthToSpaceConv(64, 8, 4), (2, 64, 2, 3), (2, 8, 8, 12)),
    (lambda: DepthToSpaceConv(32, 3, 2, activation=False), (2, 32, 4, 4), (2, 3, 8, 8)),
    (lambda: AttentionBlock(8), (2, 8, 5, 4), (2, 8, 5, 4)),
    (lambda: SelfAttention2d(32), (2, 32, 4, 3), (2, 32, 4, 3)),
    (lambda: SelfAttention2d(8), (2, 8, 4, 4), (2, 8, 4, 4)),
]


SHAPE_IDS = [
    "res-3to8", "res-8", "stride2", "stride2-odd", "stride4", "stride1", "up2", "up3", "subpel",
    "gnres-32to64", "gnres-16", "gnres-4groups", "postact", "postact-stride2", "d2s-4", "d2s-2-linear",
    "attention-cheng", "selfattn-32", "selfattn-8",
]


@pytest.mark.parametrize("make, in_shape, out_shape", SHAPE_CASES, ids=SHAPE_IDS)
def test_block_shapes_finite_and_gradients(make, in_shape, out_shape):
    block = make()
    x = torch.randn(in_shape, requires_grad=True)
    y = block(x)
    assert y.shape == out_shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_skips_are_identity_only_when_shapes_match():
    assert isinstance(ResidualBlock(8, 8).skip, nn.Identity)
    assert isinstance(ResidualBlock(4, 8).skip, nn.Conv2d)
    assert isinstance(ResidualBlockWithStride(8, 8, stride=1).skip, nn.Identity)
    assert ResidualBlockWithStride(8, 8, stride=2).skip.stride == (2, 2)
    assert isinstance(GroupNormResBlock(16).skip, nn.Identity)
    assert isinstance(GroupNormResBlock(16, 32).skip, nn.Conv2d)
    assert isinstance(PostActResidualUnit(8, 8).skip, nn.Identity)
    assert isinstance(PostActResidualUnit(8, 8, stride=2).skip, nn.Sequential)
    assert isinstance(ResidualBlockUpsample(8, 8).skip[1], nn.PixelShuffle)
    assert isinstance(ResidualBlockWithStride(4, 8).gdn, GDN) and not ResidualBlockWithStride(4, 8).gdn.inverse
    assert ResidualBlockUpsample(4, 8).igdn.inverse


def test_group_norm_groups_and_errors():
    norm = group_norm(192)
    assert norm.num_groups == 32 and norm.eps == 1e-6 and norm.affine
    assert group_norm(16).num_groups == 16
    with pytest.raises(ValueError):
        group_norm(48)  # 32 groups do not divide 48 channels
    with pytest.raises(ValueError):
        DepthToSpaceConv(24, 8, 4)
    with pytest.raises(ValueError):
        AttentionBlock(1)


def test_residual_block_upsample_is_pixel_shuffle_of_a_conv():
    sub = subpel_conv3x3(4, 2, 2)
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(sub(x), F.pixel_shuffle(sub[0](x), 2))
    assert sub[0].out_channels == 8 and sub[0].kernel_size == (3, 3)


def test_attention_block_gate_is_sigmoid_of_mask():
    block = AttentionBlock(6).double()
    x = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    expected = x + block.trunk(x) * torch.sigmoid(block.mask(x))
    torch.testing.assert_close(block(x), expected)
    # the gate is in (0, 1), so the residual never exceeds the trunk's magnitude
    assert ((block(x) - x).abs() <= block.trunk(x).abs()).all()


# --------------------------------------------------------------------------- self-attention


def _self_attention_reference(block: SelfAttention2d, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    g = block.norm.num_groups
    xg = x.reshape(b, g, -1)
    mean = xg.mean(-1, keepdim=True)
    var = xg.var(-1, unbiased=False, keepdim=True)
    hn = ((xg - mean) / torch.sqrt(var + block.norm.eps)).reshape(b, c, h * w)
    hn = hn * block.norm.weight.view(1, c, 1) + block.norm.bias.view(1, c, 1)

    def proj(conv, t):  # [B, C, N] -> [B, C, N]
        return torch.einsum("oc,bcn->bon", conv.weight[:, :, 0, 0], t) + conv.bias.view(1, c, 1)

    q, k, v = proj(block.q, hn), proj(block.k, hn), proj(block.v, hn)
    scores = torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c)  # [B, N_query, N_key]
    attn = torch.softmax(scores, dim=-1)
    out = torch.einsum("bij,bcj->bci", attn, v)
    return x + proj(block.proj, out).reshape(b, c, h, w)


def test_self_attention_matches_hand_reference():
    block = SelfAttention2d(4, num_groups=2).double()
    with torch.no_grad():
        block.norm.weight.uniform_(0.5, 1.5)
        block.norm.bias.uniform_(-0.5, 0.5)
        for conv in (block.q, block.k):  # larger logits, so the softmax is far from uniform
            conv.weight.mul_(3.0)
    x = torch.randn(2, 4, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(block(x), _self_attention_reference(block, x))


def test_self_attention_mixes_all_positions():
    block = SelfAttention2d(8)
    x = torch.randn(1, 8, 4, 4, requires_grad=True)
    block(x)[0, :, 0, 0].sum().backward()
    # one output pixel depends on every input pixel
    assert (x.grad.abs().sum(dim=1) > 0).all()
