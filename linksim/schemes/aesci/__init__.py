"""AESC-I (seed004) and its baselines over the 5G LDPC link, one module per scheme."""

from linksim.schemes.aesci import direct, jpeg, learned

__all__ = ["direct", "jpeg", "learned"]
