"""Schemes: one module per scheme, each registered by name (see :mod:`linksim.registry`)."""

from linksim.schemes import aesci, deepjscc, digital_link, image_digital, jcm, sinfony
from linksim.schemes import split_jscc, vscc
from linksim.schemes.base import Rate, Scheme, SchemeContext

__all__ = ["Rate", "Scheme", "SchemeContext", "deepjscc", "digital_link", "image_digital", "jcm", "sinfony", "split_jscc", "vscc"]
