"""JCM (Bo et al., TCOM 2024) and its Analog / Uniform / NN baselines: the symbol chain and the scheme."""

from linksim.schemes.jcm import chain, scheme

__all__ = ["chain", "scheme"]
