"""Scheme: seed004's direct transmission, the 8-bit pixels of each image over the 5G LDPC link (the upper bound).

No source coding: an image's ``C * H * W * 8`` bits (natural binary, MSB first) form one segment
(whole codewords, one fade on slow fading); a wrong bit shows as a wrong pixel value.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from linksim.channels.base import Channel
from linksim.quantizers import bits_to_int, int_to_bits
from linksim.registry import register_scheme
from linksim.schemes.aesci.base import (
    SemanticImageParams,
    SemanticImageScheme,
    segment_symbols,
    send_segments,
)

__all__ = ["AesciDirectScheme"]


@register_scheme("aesci_direct", SemanticImageParams)
class AesciDirectScheme(SemanticImageScheme):
    """8-bit pixels + 5G LDPC (see :mod:`linksim.schemes.aesci.direct`)."""

    def __init__(self, params: SemanticImageParams):
        super().__init__(params)
        self.bits_per_image = 8 * math.prod(params.image_shape)
        self.facts.update({"bits_per_image": self.bits_per_image, "compression_ratio": 1.0})

    def channel_uses(self, channel: Channel) -> float:
        return channel.channel_uses(segment_symbols(self.bits_per_image, self.params.link))

    @torch.no_grad()
    def transmit(self, idx: np.ndarray, no: torch.Tensor, channel: Channel) -> tuple[torch.Tensor, dict]:
        images = self._images[torch.from_numpy(idx).to(self._images.device)]
        sent = int_to_bits(images, 8).reshape(len(idx), -1)
        received, errors = send_segments(self.link, list(sent), channel, torch.as_tensor(no).expand(len(idx)))
        received = torch.stack(received)
        shown = bits_to_int(received.reshape(*images.shape, 8)).to(torch.uint8)
        k = self.params.link.payload_bits
        return shown, {"bits": sent.numel(), "bit_errors": int((received != sent).sum()),
                       "codewords": len(idx) * -(-self.bits_per_image // k), "codeword_errors": int(errors.sum())}
