"""Gradient estimators for samples: straight-through, Gumbel-softmax, REINFORCE, VIMCO, and the Gaussian
reparameterisation."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from sionna.phy.utils import normal, rand

__all__ = [
    "quantize_ste",
    "straight_through",
    "sample_gumbel",
    "gumbel_softmax_st",
    "bernoulli_sample",
    "bernoulli_log_prob",
    "reinforce_surrogate",
    "vimco_surrogate",
    "VimcoOutput",
    "vimco_loo_surrogate",
    "gaussian_reparameterize",
]

# Randomness: every sampler here draws through ``sionna.phy.utils.rand``. With ``generator=None`` that is
# Sionna's generator for the tensor's device (``sionna.phy.config.torch_rng``), which the engine seeds per
# work unit (``seed_everything``); an explicit ``torch.Generator`` (on the same device) makes a draw
# reproducible on its own, e.g. for evaluation. Under ``torch.compile`` Sionna switches to the global RNG.


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """The value of ``hard`` with the gradient of ``soft`` (same shape, or broadcastable).

    Computed as ``hard + (soft - soft.detach())``, so the value is exactly ``hard`` (no rounding error from
    adding and subtracting ``soft``); where ``soft`` is not finite (``inf - inf``) the correction is set to 0,
    so the value stays ``hard`` and no gradient flows there. ``hard`` itself passes no gradient.

    :input hard: [...], float. The forward value (a hard decision, a quantised value).
    :input soft: [...], float. The differentiable surrogate whose gradient flows back.
    :output y: [...], float. Equal to ``hard``; ``dy/dsoft = 1``.

    .. rubric:: Example

    >>> s = torch.tensor([0.3, 0.8], requires_grad=True)
    >>> y = straight_through((s > 0.5).float(), s)
    >>> y.tolist()
    [0.0, 1.0]
    """
    return hard.detach() + torch.nan_to_num(soft - soft.detach(), nan=0.0, posinf=0.0, neginf=0.0)


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer with a straight-through (identity) gradient.

    The value is ``torch.round(x)`` (half to even), the gradient 1: the estimator ``(round(x) - x).detach() + x``,
    written as :func:`straight_through` so the value is exactly an integer.

    :input x: [...], float.
    :output y: [...], float (same dtype). ``round(x)``, ``dy/dx = 1``.

    .. rubric:: Example

    >>> x = torch.tensor([0.4, 1.6], requires_grad=True)
    >>> quantize_ste(x).sum().backward(); x.grad.tolist()
    [1.0, 1.0]
    """
    return straight_through(torch.round(x), x)


def sample_gumbel(
    shape: torch.Size | tuple[int, ...],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Standard Gumbel(0, 1) noise ``g = -log(-log(u))``, ``u ~ U(0, 1)`` (clamped away from 0).

    :param shape: output shape.
    :param dtype: output dtype.
    :param device: output device; ``None`` is Sionna's configured device.
    :param generator: a ``torch.Generator`` on ``device``; ``None`` is Sionna's generator for the device.
    :output g: ``shape``, ``dtype``. i.i.d. Gumbel(0, 1) samples (finite).
    """
    u = rand(tuple(shape), dtype=dtype, device=device, generator=generator)
    tiny = torch.finfo(dtype).tiny
    return -torch.log(-torch.log(u.clamp_min(tiny)))


def gumbel_softmax_st(
    logits: torch.Tensor, temperature: float = 1.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Straight-through Gumbel-softmax: a one-hot sample of ``softmax(logits)`` with a relaxed gradient.

    Forward: ``one_hot(argmax(logits + g))`` with ``g ~ Gumbel(0, 1)`` i.i.d. (the Gumbel-max trick), so the
    sample follows ``softmax(logits)`` over the last axis exactly, whatever ``temperature``. Backward: the
    gradient of the relaxation ``softmax((logits + g) / temperature)`` with the same ``g`` (Jang et al. 2017;
    JCM's symbol sampler, seed001 §2, temperature 1.5 as in its code). The function always samples, in
    training and evaluation alike; pass a seeded ``generator`` for reproducible evaluation.

    :param logits: [..., K], float. Unnormalised log-probabilities over the last axis (any finite values;
        ``log q`` of a distribution ``q`` works as well).
    :param temperature: relaxation temperature ``> 0`` of the backward pass.
    :param generator: ``torch.Generator`` on ``logits.device`` for the Gumbel noise, or ``None`` for
        Sionna's generator of that device.

    :input logits: [..., K], float32.
    :output y: [..., K], same dtype. Exactly one-hot in value; gradient of the tempered softmax.

    .. rubric:: Example

    >>> logits = torch.zeros(8, 4, requires_grad=True)
    >>> y = gumbel_softmax_st(logits, generator=torch.Generator().manual_seed(0))
    >>> y.sum(-1).tolist() == [1.0] * 8
    True
    >>> levels = torch.tensor([-3.0, -1.0, 1.0, 3.0])
    >>> (y @ levels).square().mean().backward()  # e.g. the PAM amplitude of each sample
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, found {temperature}")
    g = sample_gumbel(logits.shape, dtype=logits.dtype, device=logits.device, generator=generator)
    perturbed = logits + g
    hard = F.one_hot(perturbed.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    return straight_through(hard, torch.softmax(perturbed / temperature, dim=-1))


def bernoulli_sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard Bernoulli samples ``1[u < probs]``, ``u ~ U(0, 1)``, without a gradient.

    :param generator: ``torch.Generator`` on ``probs.device``, or ``None`` for Sionna's generator of that device.

    :input probs: [...], float in [0, 1]. Probability of a 1.
    :output bits: [...], same dtype, values in {0, 1}; detached (use :func:`bernoulli_log_prob` with a
        score-function estimator, or :func:`straight_through` for a pathwise surrogate).

    .. rubric:: Example

    >>> bits = bernoulli_sample(torch.full((2, 5), 0.5), torch.Generator().manual_seed(1))
    """
    u = rand(tuple(probs.shape), dtype=probs.dtype, device=probs.device, generator=generator)
    return (u < probs.detach()).to(probs.dtype)


def bernoulli_log_prob(
    bits: torch.Tensor,
    probs: torch.Tensor | None = None,
    *,
    logits: torch.Tensor | None = None,
    eps: float = 1e-7,
) -> torch.Tensor:
    r"""Log-likelihood of independent bits, summed over the last axis: ``sum b log p + (1 - b) log(1 - p)``.

    Give exactly one of ``probs`` (clamped to ``[eps, 1 - eps]``; e.g. the BSC-smeared probability
    ``f (1 - 2 eps_i) + eps_i`` of seed002's Lemma 1) or ``logits`` (``log p / (1 - p)``, numerically exact
    through ``binary_cross_entropy_with_logits``). ``bits`` should be hard samples (no gradient needed).

    :input bits: [..., n], float in {0, 1}.
    :input probs: [..., n] (broadcastable), float. Probability of a 1.
    :input logits: [..., n] (broadcastable), float. Logit of a 1.
    :output log_prob: [...], float. Natural log, differentiable in ``probs`` / ``logits``.

    .. rubric:: Example

    >>> bernoulli_log_prob(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
    tensor([-1.3863])
    """
    if (probs is None) == (logits is None):
        raise ValueError("give exactly one of probs and logits")
    if logits is not None:
        logits, target = torch.broadcast_tensors(logits, bits)
        return -F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none").sum(-1)
    p = probs.clamp(eps, 1.0 - eps)
    return (bits * torch.log(p) + (1.0 - bits) * torch.log1p(-p)).sum(-1)


def _with_score(value: torch.Tensor, signal: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """``value`` plus a zero-valued term whose gradient is ``signal.detach() * grad(log_prob)``."""
    return value + signal.detach() * (log_prob - log_prob.detach())


def reinforce_surrogate(
    log_prob: torch.Tensor, loss: torch.Tensor, baseline: torch.Tensor | float | None = None
) -> torch.Tensor:
    r"""Score-function (REINFORCE) surrogate for minimising ``E[loss]`` over discrete samples.

    For samples ``v ~ p_theta`` the returned scalar has the value ``mean(loss)`` and the gradient
    ``mean((loss - baseline) * grad log p_theta(v) + grad loss)``: the score term, unbiased for any
    ``baseline`` that does not depend on the sample itself, plus whatever pathwise gradient ``loss`` carries
    (e.g. to a decoder evaluated on the sample; compute ``loss`` on hard, detached samples so that no
    straight-through gradient mixes in). Minimise it with any optimiser.

    :input log_prob: [...], float. ``log p_theta(v)`` of each sample (summed over its bits/categories).
    :input loss: [...] (same shape), float. The loss of each sample.
    :input baseline: [...] (broadcastable), scalar or ``None`` (0). Detached before use.
    :output surrogate: [], float. Value ``loss.mean()``.

    .. rubric:: Example

    >>> theta = torch.zeros(3, requires_grad=True)
    >>> v = bernoulli_sample(torch.sigmoid(theta).expand(64, 3))
    >>> lp = bernoulli_log_prob(v, logits=theta)
    >>> reinforce_surrogate(lp, v.sum(-1), baseline=1.5).backward()
    """
    signal = loss if baseline is None else loss - torch.as_tensor(baseline, dtype=loss.dtype, device=loss.device)
    return _with_score(loss, signal, log_prob).mean()


class VimcoOutput(NamedTuple):
    """What :func:`vimco_surrogate` returns."""

    loss: torch.Tensor
    """[], float. ``-mean_b L_hat``; its gradient is minus the VIMCO estimate of ``grad L^J`` (minimise it)."""
    bound: torch.Tensor
    """[B], float, detached. ``L_hat = log (1/J) sum_j exp(log_weights_j)`` of each example."""


def _num_samples(first: tuple[str, torch.Tensor], second: tuple[str, torch.Tensor], needs: str) -> int:
    """J of two ``[J, B]`` tensors of per-sample terms (both that shape, J >= 2), else a ValueError."""
    (a_name, a), (b_name, b) = first, second
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"{a_name} and {b_name} must both be [J, B], found {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise ValueError(f"{needs} needs J >= 2 samples per example")
    return a.shape[0]


def vimco_surrogate(log_weights: torch.Tensor, log_probs: torch.Tensor) -> VimcoOutput:
    r"""VIMCO (Mnih & Rezende 2016): the multi-sample score-function estimator of a log-mean-exp bound.

    The objective (seed002 eq. 7 / 14) is ``L^J = E[L_hat]`` with, per example, J samples ``v^1..v^J`` from
    ``p_theta`` and ``L_hat = log (1/J) sum_j w_j``, ``w_j = exp(log_weights_j)`` (e.g.
    ``log w_j = -lambda ||x - g(v^j)||^2``). Everything is done in log space (logsumexp). The estimate is

    .. math::
        \nabla L^J \approx \sum_j \hat L_j \nabla \log p_\theta(v^j) + \sum_j c_j \nabla \log w_j,\quad
        c_j = \mathrm{softmax}_j(\log w_j),

    with the leave-one-out learning signal ``L_hat_j = L_hat - log (1/J) [sum_{i != j} w_i + m_j]``, where
    ``m_j = exp(mean_{i != j} log w_i)`` (geometric mean of the others) replaces ``w_j`` *inside* the sum;
    this is Mnih & Rezende's form, not seed002 eq. 10's misprint. The signals are stop-gradient. The second
    (pathwise) sum is whatever gradient ``log_weights`` carries: stage 1 of Split DeepJSCC, where the
    decoder is trained, gets both terms; stage 2, where the decoder is frozen (``log_weights`` without a
    gradient to the trained parameters), gets the pure score term. Unbiased for ``grad L^J``.

    :input log_weights: [J, B], float. ``log w`` of each of J samples of each of B examples (J >= 2).
    :input log_probs: [J, B], float. ``log p_theta(v^j)`` of each sample (differentiable in theta).
    :output: :class:`VimcoOutput` ``(loss, bound)``: ``loss`` [] to minimise (value ``-mean(bound)``),
        ``bound`` [B] detached.

    .. rubric:: Example

    >>> theta = torch.zeros(3, requires_grad=True)
    >>> v = bernoulli_sample(torch.sigmoid(theta).expand(8, 16, 3))       # J=8 samples, B=16 examples
    >>> out = vimco_surrogate(-(v - 1.0).square().sum(-1), bernoulli_log_prob(v, logits=theta))
    >>> out.loss.backward()
    """
    j = _num_samples(("log_weights", log_weights), ("log_probs", log_probs), "VIMCO")
    log_j = math.log(j)
    bound = torch.logsumexp(log_weights, dim=0) - log_j  # [B], pathwise gradient sum_j c_j grad log w_j
    lw = log_weights.detach()
    log_m = (lw.sum(0, keepdim=True) - lw) / (j - 1)  # [J, B] log geometric mean of the others
    loo = lw.unsqueeze(0).repeat(j, 1, 1)  # [J (left out), J, B]
    idx = torch.arange(j, device=lw.device)
    loo[idx, idx] = log_m
    signal = bound.detach().unsqueeze(0) - (torch.logsumexp(loo, dim=1) - log_j)  # [J, B]
    objective = bound + (signal * (log_probs - log_probs.detach())).sum(0)
    return VimcoOutput(-objective.mean(), bound.detach())


def vimco_loo_surrogate(log_probs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    r"""Multi-sample REINFORCE with a leave-one-out baseline for an *expected loss* ``E[l(v)]``.

    Not VIMCO's log-mean-exp bound (that is :func:`vimco_surrogate`): this is its analogue for a linear
    objective (Kool, van Hoof & Welling 2019, "Buy 4 REINFORCE samples, get a baseline for free"). With J
    samples per example, sample j's baseline is the mean of the other ``J - 1`` losses, which does not
    depend on sample j, so the estimate

    .. math::
        \nabla E[l] \approx \frac1J \sum_j \Big(l_j - \frac{1}{J-1}\sum_{i\ne j} l_i\Big)\nabla\log p_\theta(v^j)
        + \frac1J \sum_j \nabla l_j

    is unbiased; the last term is whatever pathwise gradient ``losses`` carries. Averaged over the batch.

    :input log_probs: [J, B], float. ``log p_theta(v^j)`` of each sample.
    :input losses: [J, B], float. The loss of each sample (J >= 2).
    :output surrogate: [], float. Value ``losses.mean()``; minimise it.

    .. rubric:: Example

    >>> theta = torch.zeros(3, requires_grad=True)
    >>> v = bernoulli_sample(torch.sigmoid(theta).expand(4, 16, 3))
    >>> vimco_loo_surrogate(bernoulli_log_prob(v, logits=theta), (v.sum(-1) - 2).square()).backward()
    """
    j = _num_samples(("log_probs", log_probs), ("losses", losses), "a leave-one-out baseline")
    l = losses.detach()
    baseline = (l.sum(0, keepdim=True) - l) / (j - 1)
    return _with_score(losses, l - baseline, log_probs).mean()


def gaussian_reparameterize(mean: torch.Tensor, log_var: torch.Tensor,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""A sample of :math:`\mathcal N(\mu, \sigma^2)` as ``mean + exp(log_var / 2) * eps``,
    ``eps ~ N(0, 1)`` i.i.d., differentiable in both arguments (Kingma & Welling 2014).

    :input mean: [...], float32.
    :input log_var: [...] (broadcastable to ``mean``), float32, the natural log of the variance.
    :param generator: ``torch.Generator`` on ``mean.device``, or ``None`` for Sionna's generator.
    :output: ``mean``'s shape and dtype.
    """
    eps = normal(tuple(mean.shape), dtype=mean.dtype, device=mean.device, generator=generator)
    return mean + torch.exp(0.5 * log_var) * eps
