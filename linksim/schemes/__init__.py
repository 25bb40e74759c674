"""Schemes: one module per scheme, each registered by name (see :mod:`linksim.registry`)."""

from linksim.schemes import digital_link, sinfony
from linksim.schemes import image_digital  # noqa: F401
from linksim.schemes.base import Rate, Scheme, SchemeContext

__all__ = ["Rate", "Scheme", "SchemeContext", "digital_link", "sinfony"]
