"""The digital link: channel coding, mapping, interleaving, and the source codecs in front of it."""

from linksim.link.digital import DecoderParams, DigitalLink, DigitalLinkParams

__all__ = ["DecoderParams", "DigitalLink", "DigitalLinkParams"]
