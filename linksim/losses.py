"""Training losses shared by learned schemes: Gaussian KL terms (VAE, VSCC) and the Gaussian likelihood."""

from __future__ import annotations

import torch

__all__ = ["gaussian_kl", "vae_kl", "vscc_kl", "gaussian_nll"]


def gaussian_kl(mean: torch.Tensor, var: torch.Tensor, prior_var: torch.Tensor | float) -> torch.Tensor:
    r"""``KL(N(mean, var) || N(0, prior_var))`` per element, summed over every axis but the first:
    :math:`\tfrac12 \sum_j (\log(p / v_j) + (\mu_j^2 + v_j) / p - 1)`, in nats.

    :input mean: [B, ...], float32.
    :input var: [B, ...] (broadcastable), float32, > 0.
    :input prior_var: scalar or [B] (one per example), float32, > 0: the prior's variance ``p``.
    :output: [B], float32.
    """
    p = torch.as_tensor(prior_var, dtype=mean.dtype, device=mean.device)
    if p.ndim:
        p = p.reshape(-1, *([1] * (mean.ndim - 1)))
    var = var.expand_as(mean)
    return 0.5 * (torch.log(p / var) + (mean.square() + var) / p - 1.0).flatten(1).sum(dim=1)


def vae_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r"""The VAE's KL term (seed000 Eq. 11): ``KL(N(mu, sigma^2) || N(0, 1))`` summed per example, ``[B]``.

    :input mean, log_var: [B, ...], float32; ``log_var`` the natural log of sigma^2.
    """
    return gaussian_kl(mean, log_var.exp(), 1.0)


def vscc_kl(mean: torch.Tensor, log_var: torch.Tensor, noise_var: torch.Tensor | float,
            matching: float) -> torch.Tensor:
    r"""VSCC's channel-matched KL (seed000 Eq. 10), ``KL(N(mu_1, sigma_1^2 + sigma_2^2) || N(0, sigma_2^2 + d))``
    summed per example, ``[B]``: the channel output ``z = mu_1 + n`` (with the encoder's own spread
    ``sigma_1``) matched to a prior whose variance is the noise variance plus the channel-matching
    constant ``d``. With ``noise_var = 0`` and ``d = 1`` it is :func:`vae_kl`; it vanishes at
    ``mu_1 = 0``, ``sigma_1^2 = d``.

    :input mean, log_var: [B, ...], float32 (encoder outputs mu_1, log sigma_1^2).
    :input noise_var: scalar or [B], float32: sigma_2^2 per real channel value (linear).
    :param matching: ``d > 0``.
    """
    s2 = torch.as_tensor(noise_var, dtype=mean.dtype, device=mean.device)
    s2 = s2.reshape(-1, *([1] * (mean.ndim - 1))) if s2.ndim else s2
    return gaussian_kl(mean, log_var.exp() + s2, s2 + matching)


def gaussian_nll(target: torch.Tensor, prediction: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    r"""``weight * sum (target - prediction)^2`` per example, ``[B]``: the negative log-likelihood of a
    Gaussian decoder with variance ``1 / (2 weight)`` up to a constant (seed000 §4: weight 1 on images
    in [-1, 1])."""
    return weight * (target - prediction).square().flatten(1).sum(dim=1)
