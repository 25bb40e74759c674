"""Closed-form references drawn on top of simulated curves."""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.special import erfc

__all__ = ["gray_pam_ber", "uncoded_ber_awgn", "uncoded_ber_rayleigh", "shannon_esno_db"]


def _q(x: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(x / math.sqrt(2.0))


def gray_pam_ber(levels: int, snr_dim: float) -> float:
    """Exact bit error rate of Gray-labelled ``levels``-PAM with symbol energy / noise variance
    ``snr_dim`` (both per real dimension), ML (nearest-level) detection."""
    i = np.arange(levels)
    amp = 2 * i - levels + 1
    amp = amp / math.sqrt(np.mean(amp**2.0))  # unit energy per dimension
    sigma = math.sqrt(1.0 / snr_dim)
    edges = np.concatenate(([-np.inf], (amp[:-1] + amp[1:]) / 2, [np.inf]))
    gray = i ^ (i >> 1)
    hamming = np.array([[bin(int(a ^ b)).count("1") for b in gray] for a in gray])
    # P(decide j | sent i) = Q((lo_j - a_i)/sigma) - Q((hi_j - a_i)/sigma)
    upper = _q((edges[None, :-1] - amp[:, None]) / sigma)
    lower = _q((edges[None, 1:] - amp[:, None]) / sigma)
    p = upper - lower
    return float((hamming * p).sum() / (levels * math.log2(levels)))


def uncoded_ber_awgn(modulation: str, bits_per_symbol: int, esno_db: float) -> float:
    """Exact BER of uncoded Gray QAM (square) or PAM with unit-energy complex symbols over AWGN.

    :param esno_db: Es/N0 per complex symbol in dB (noise ``no/2`` per real dimension).
    """
    esno = 10.0 ** (esno_db / 10.0)
    if modulation == "qam":  # two independent Gray PAMs, Es/2 per dimension, noise no/2
        return gray_pam_ber(2 ** (bits_per_symbol // 2), esno)
    return gray_pam_ber(2**bits_per_symbol, 2.0 * esno)  # all energy on the real axis


def uncoded_ber_rayleigh(modulation: str, bits_per_symbol: int, esno_db: float) -> float:
    """BER averaged over Rayleigh fading (|h|^2 ~ Exp(1)) with perfect CSI: the integral of
    :func:`uncoded_ber_awgn` against the exponential density; independent of the coherence length."""

    def integrand(t: float) -> float:  # t = ln |h|^2, so the fade spans many decades evenly
        g = math.exp(t)
        return g * math.exp(-g) * uncoded_ber_awgn(modulation, bits_per_symbol, esno_db + 10 * math.log10(g))

    return float(quad(integrand, -40.0, 5.0, limit=200)[0])


def shannon_esno_db(bits_per_channel_use: float) -> float:
    """Smallest Es/N0 in dB at which the AWGN capacity ``log2(1 + Es/N0)`` reaches the rate."""
    return 10.0 * math.log10(2.0**bits_per_channel_use - 1.0)
