"""linksim: link-level Monte Carlo simulation of learned semantic transceivers on Sionna."""

__version__ = "0.1.0"
