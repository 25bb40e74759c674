"""The digital link: channel coding, mapping, interleaving (and, later, source codecs)."""

from linksim.link.digital import DecoderParams, DigitalLink, DigitalLinkParams

__all__ = ["DecoderParams", "DigitalLink", "DigitalLinkParams"]
