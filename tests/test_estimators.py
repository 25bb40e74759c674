"""Gradient estimators: straight-through values and gradients, the Gumbel-softmax law, unbiased score functions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy import stats

from conftest import seeded
from linksim.estimators import (
    bernoulli_log_prob,
    bernoulli_sample,
    gumbel_softmax_st,
    quantize_ste,
    reinforce_surrogate,
    sample_gumbel,
    straight_through,
    vimco_loo_surrogate,
    vimco_surrogate,
)
from linksim.stats import binomial_interval


def test_quantize_ste_rounds_and_passes_gradient_one():
    x = torch.tensor([-1.6, -0.4, 0.2, 0.5, 1.5, 2.7], requires_grad=True)
    y = quantize_ste(x)
    assert torch.equal(y, torch.round(x.detach()))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_straight_through_value_is_exactly_hard_gradient_is_soft():
    soft = torch.rand(1000, generator=seeded(0)).requires_grad_(True)
    hard = (soft > 0.5).float()
    y = straight_through(hard, soft)
    assert torch.equal(y, hard)
    w = torch.randn(1000, generator=seeded(1))
    (w * y).sum().backward()
    assert torch.equal(soft.grad, w)


def test_gumbel_softmax_samples_follow_softmax_of_logits():
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0, -3.0])
    n = 20000
    y = gumbel_softmax_st(logits.expand(n, -1), temperature=1.5, generator=seeded(3))
    assert ((y == 0) | (y == 1)).all() and torch.equal(y.sum(-1), torch.ones(n))
    counts = y.sum(0)
    q = torch.softmax(logits, -1)
    for k in range(len(q)):
        low, high = binomial_interval(float(counts[k]), n, confidence=0.999)
        assert low <= q[k] <= high, (k, counts[k] / n, q[k].item())
    chi2 = float(((counts - n * q) ** 2 / (n * q)).sum())
    assert stats.chi2.sf(chi2, len(q) - 1) > 1e-3
    # the forward law does not depend on the temperature: the same noise gives the same samples
    assert torch.equal(gumbel_softmax_st(logits.expand(n, -1), temperature=0.3, generator=seeded(3)), y)


def test_gumbel_softmax_gradient_is_the_tempered_relaxation():
    logits = torch.randn(64, 4, generator=seeded(4)).requires_grad_(True)
    w = torch.randn(64, 4, generator=seeded(5))
    (gumbel_softmax_st(logits, temperature=1.5, generator=seeded(6)) * w).sum().backward()
    grad_st = logits.grad.clone()
    logits.grad = None
    g = sample_gumbel(logits.shape, generator=seeded(6))
    (torch.softmax((logits + g) / 1.5, -1) * w).sum().backward()
    assert grad_st.abs().sum() > 0
    torch.testing.assert_close(grad_st, logits.grad)


def test_gumbel_softmax_samples_reproducibly_from_a_generator_and_from_sionna_config():
    from sionna.phy import config as sionna_config

    logits = torch.zeros(100, 8)
    assert torch.equal(gumbel_softmax_st(logits, generator=seeded(9)), gumbel_softmax_st(logits, generator=seeded(9)))
    sionna_config.seed = 12
    a = gumbel_softmax_st(logits)
    sionna_config.seed = 12
    assert torch.equal(a, gumbel_softmax_st(logits))
    with pytest.raises(ValueError, match="temperature"):
        gumbel_softmax_st(logits, temperature=0.0)


def test_bernoulli_sample_and_log_prob():
    p = torch.tensor([0.02, 0.3, 0.9])
    n = 20000
    bits = bernoulli_sample(p.expand(n, -1), seeded(7))
    assert not bits.requires_grad and ((bits == 0) | (bits == 1)).all()
    for k in range(3):
        low, high = binomial_interval(float(bits[:, k].sum()), n, confidence=0.999)
        assert low <= p[k] <= high
    b = torch.tensor([[1.0, 0.0, 1.0]])
    expected = math.log(0.02) + math.log(0.7) + math.log(0.9)
    assert bernoulli_log_prob(b, p).item() == pytest.approx(expected, rel=1e-5)
    assert bernoulli_log_prob(b, logits=torch.logit(p)).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        bernoulli_log_prob(b)


# Unbiasedness on a toy problem: D Bernoulli(sigmoid(theta_d)) bits, R independent replicates of the estimator in one
# batch, each with its own copy of the parameters, so one backward pass gives R per-replicate gradient estimates.
THETA = torch.tensor([0.4, -0.8])


def _outcomes(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))


def _replicated(param: torch.Tensor, r: int) -> torch.Tensor:
    return param.detach().repeat(r, 1).requires_grad_(True)


def _assert_unbiased(per_replicate: torch.Tensor, exact: torch.Tensor, z: float = 4.0) -> None:
    mean = per_replicate.mean(0)
    se = per_replicate.std(0) / math.sqrt(per_replicate.shape[0])
    assert (se > 0).all() and (se < 0.05 * exact.abs().max()).all(), (se, exact)
    assert ((mean - exact).abs() <= z * se).all(), (mean, exact, se)


def _loss(b: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """A nonlinear loss of the bits with a pathwise parameter: (b0 + 2 b1 - eta)^2."""
    return (b[..., 0] + 2 * b[..., 1] - eta[..., 0]) ** 2


def test_vimco_loo_and_reinforce_are_unbiased_for_an_expected_loss():
    eta = torch.tensor([0.3])
    # exact gradient of E[l] by enumerating the 4 outcomes
    th, et = THETA.clone().requires_grad_(True), eta.clone().requires_grad_(True)
    outs = _outcomes(2)
    expected = (bernoulli_log_prob(outs, logits=th).exp() * _loss(outs, et)).sum()
    exact_theta, exact_eta = torch.autograd.grad(expected, (th, et))

    r, j = 40000, 4
    theta_r, eta_r = _replicated(THETA, r), _replicated(eta, r)
    v = bernoulli_sample(torch.sigmoid(theta_r).expand(j, r, 2), seeded(11))  # [J, R, 2]
    vimco_loo_surrogate(bernoulli_log_prob(v, logits=theta_r), _loss(v, eta_r)).backward()
    _assert_unbiased(theta_r.grad * r, exact_theta)
    _assert_unbiased(eta_r.grad * r, exact_eta)
    loo_var = (theta_r.grad * r).var(0)

    # plain REINFORCE over the same J samples (no baseline, then a constant one): unbiased too, noisier without
    for baseline in (None, 3.0):
        theta_r, eta_r = _replicated(THETA, r), _replicated(eta, r)
        lp = bernoulli_log_prob(v, logits=theta_r)
        (reinforce_surrogate(lp, _loss(v, eta_r), baseline) * r).backward()  # mean over J*R -> per-replicate mean
        _assert_unbiased(theta_r.grad, exact_theta)
        _assert_unbiased(eta_r.grad, exact_eta)
        if baseline is None:
            assert theta_r.grad.var(0).sum() > 1.2 * loo_var.sum()  # total variance


def _log_weight(b: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """log w of a sample: pathwise in eta, nonlinear in the bits."""
    return eta[..., 0] * b[..., 0] + eta[..., 1] * b[..., 1] + 1.5 * b[..., 0] * b[..., 1] - 2.0


def test_vimco_is_unbiased_for_the_multi_sample_bound_with_and_without_a_pathwise_term():
    eta, j = torch.tensor([0.7, -1.1]), 3
    # exact L^J(theta, eta) = E[log mean_j w(v^j)] by enumerating all 4^J sample tuples
    th, et = THETA.clone().requires_grad_(True), eta.clone().requires_grad_(True)
    outs = _outcomes(2)
    tuples = torch.tensor(list(itertools.product(range(4), repeat=j)))  # [64, J] outcome index per sample
    v = outs[tuples]  # [64, J, 2]
    log_p = bernoulli_log_prob(v, logits=th).sum(-1)  # [64]
    bound = torch.logsumexp(_log_weight(v, et), dim=-1) - math.log(j)
    exact_theta, exact_eta = torch.autograd.grad((log_p.exp() * bound).sum(), (th, et))

    r = 40000
    theta_r, eta_r = _replicated(THETA, r), _replicated(eta, r)
    v = bernoulli_sample(torch.sigmoid(theta_r).expand(j, r, 2), seeded(13))  # [J, R, 2]
    out = vimco_surrogate(_log_weight(v, eta_r), bernoulli_log_prob(v, logits=theta_r))
    (out.loss * r).backward()
    _assert_unbiased(-theta_r.grad, exact_theta)  # stage 1: score term + pathwise decoder term
    _assert_unbiased(-eta_r.grad, exact_eta)
    assert out.bound.shape == (r,) and not out.bound.requires_grad
    assert out.loss.item() == pytest.approx(-out.bound.mean().item(), rel=1e-6)

    # stage 2: frozen decoder (weights without a gradient) -> pure score term, still unbiased for grad theta
    theta_r = _replicated(THETA, r)
    out = vimco_surrogate(_log_weight(v, eta.expand(r, 2)), bernoulli_log_prob(v, logits=theta_r))
    (out.loss * r).backward()
    _assert_unbiased(-theta_r.grad, exact_theta)


def test_vimco_learning_signal_matches_the_mnih_rezende_formula():
    lw = torch.randn(5, 3, generator=seeded(17))
    lp = torch.zeros(5, 3, requires_grad=True)
    vimco_surrogate(lw, lp).loss.backward()
    w = lw.double().exp()
    j = w.shape[0]
    l_hat = torch.log(w.mean(0))
    for k in range(j):
        others = torch.cat([w[:k], w[k + 1:]])
        geo = torch.exp(torch.log(others).mean(0))
        signal = l_hat - torch.log((others.sum(0) + geo) / j)
        torch.testing.assert_close(-lp.grad[k].double() * 3, signal, rtol=1e-5, atol=1e-6)


def test_estimators_refuse_bad_shapes():
    with pytest.raises(ValueError, match="J >= 2"):
        vimco_surrogate(torch.zeros(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"\[J, B\]"):
        vimco_loo_surrogate(torch.zeros(3, 4), torch.zeros(3, 5))
