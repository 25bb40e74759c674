"""Scheme: seed004's JPEG + 5G LDPC baseline, payload only, with an error-free header.

Each evaluation image is JPEG-coded (Pillow / libjpeg, grayscale for MNIST, 4:2:0 by default for
CIFAR-10) at a fixed ``quality`` (Pillow's scale; 0 is libjpeg's 1): the seed004 table pairs
qualities with compression ratios (MNIST 60 / 18 / 0 for Cr 4 / 8 / 20, CIFAR-10 98 / 90 / 60 for
3 / 6 / 12). The file is split (:func:`~linksim.link.image_codec.jpeg_split`) into its header (up
to the end of SOS), which the receiver gets error-free, and the entropy-coded payload, which is sent
over the link as one segment per image (whole codewords, one fade on slow fading); the receiver
knows the payload length.

**Receiver.** The header + the received payload + EOI are decoded by Pillow with truncated-image
loading (corrupted data decodes to block noise); if decoding still fails, or gives the wrong size,
the receiver shows uniform random noise (``decode_failures`` counts those images).

**Accounting.** Cr = raw bytes / mean payload bytes over the evaluation images (header excluded, as
in the paper; fact ``compression_ratio``); channel uses per image = the mean over the evaluation
images of their codewords x n / bits per symbol.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageFile
from pydantic import Field

from linksim.channels.base import Channel
from linksim.link.image_codec import jpeg_join, jpeg_split
from linksim.registry import register_scheme
from linksim.schemes.aesci.base import (
    SemanticImageParams,
    SemanticImageScheme,
    segment_symbols,
    send_segments,
)
from linksim.schemes.base import Rate, SchemeContext

__all__ = ["AesciJpegParams", "AesciJpegScheme", "jpeg_decode", "jpeg_encode"]


class AesciJpegParams(SemanticImageParams):
    """JPEG at one quality, payload over the link (see the module docstring).

    :param quality: Pillow quality 0..100.
    :param subsampling: chroma subsampling of colour images.
    """

    quality: int = Field(..., ge=0, le=100)
    subsampling: Literal["4:2:0", "4:4:4"] = "4:2:0"


def jpeg_encode(image: np.ndarray, quality: int, subsampling: str = "4:2:0") -> bytes:
    """uint8 ``[C, H, W]`` (C = 1 or 3) -> a baseline JPEG file (standard Huffman tables)."""
    mode = "L" if image.shape[0] == 1 else "RGB"
    buf = io.BytesIO()
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    Image.fromarray(np.ascontiguousarray(pixels), mode).save(
        buf, format="JPEG", quality=quality, subsampling=2 if subsampling == "4:2:0" else 0)
    return buf.getvalue()


def jpeg_decode(data: bytes, shape: tuple[int, int, int]) -> np.ndarray | None:
    """A (possibly corrupted) JPEG file -> uint8 ``[C, H, W]``, or ``None`` when it does not decode to
    ``shape`` (truncated or damaged scans are decoded as far as libjpeg gets)."""
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data)) as im:
            out = np.asarray(im.convert("L" if shape[0] == 1 else "RGB"))
    except (OSError, ValueError, SyntaxError):
        return None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    out = out[None] if out.ndim == 2 else out.transpose(2, 0, 1)
    return out if out.shape == tuple(shape) else None


@register_scheme("aesci_jpeg", AesciJpegParams)
class AesciJpegScheme(SemanticImageScheme):
    """JPEG payload + 5G LDPC, header error-free (see :mod:`linksim.schemes.aesci.jpeg`)."""

    def __init__(self, params: AesciJpegParams):
        super().__init__(params)
        self.rates["decode_failure_rate"] = Rate("decode_failures", "samples")

    def prepare(self, context: SchemeContext) -> None:
        super().prepare(context)
        p = self.params
        images = self._images.cpu().numpy()
        self._headers, self._payloads, decoded = [], [], []
        for image in images:
            header, payload = jpeg_split(jpeg_encode(image, p.quality, p.subsampling))
            self._headers.append(header)
            self._payloads.append(torch.from_numpy(np.unpackbits(np.frombuffer(payload, np.uint8)).astype(np.float32)))
            decoded.append(jpeg_decode(jpeg_join(header, payload), images.shape[1:]))
        self._clean = torch.from_numpy(np.stack(decoded)).to(self._images.device)
        payload_bits = np.array([len(b) for b in self._payloads])
        self._symbols = float(np.mean([segment_symbols(int(b), p.link) for b in payload_bits]))
        self.facts.update({"quality": p.quality, "mean_payload_bytes": float(payload_bits.mean() / 8),
                           "header_bytes": float(np.mean([len(h) for h in self._headers])),
                           "compression_ratio": float(images[0].size / (payload_bits.mean() / 8))})

    def channel_uses(self, channel: Channel) -> float:
        if not hasattr(self, "_symbols"):
            raise RuntimeError("aesci_jpeg: prepare() first (the channel uses follow from the coded images)")
        return channel.channel_uses(self._symbols)  # linear in the symbols on every channel

    @torch.no_grad()
    def transmit(self, idx: np.ndarray, no: torch.Tensor, channel: Channel) -> tuple[torch.Tensor, dict]:
        sent = [self._payloads[i] for i in idx.tolist()]
        received, errors = send_segments(self.link, sent, channel, torch.as_tensor(no).expand(len(idx)))
        shown = self._clean[torch.from_numpy(idx).to(self._clean.device)].clone()
        shape = tuple(shown.shape[1:])
        failures = 0
        bit_errors = 0
        for row, (i, s, r) in enumerate(zip(idx.tolist(), sent, received, strict=True)):
            wrong = int((r != s).sum())
            if not wrong:
                continue
            bit_errors += wrong
            data = np.packbits(r.cpu().numpy().astype(np.uint8)).tobytes()
            image = jpeg_decode(jpeg_join(self._headers[i], data), shape)
            if image is None:
                failures += 1
                image = torch.randint(0, 256, shape, dtype=torch.uint8).numpy()
            shown[row] = torch.from_numpy(np.array(image))
        k = self.params.link.payload_bits
        return shown, {"bits": sum(len(s) for s in sent), "bit_errors": bit_errors,
                       "codewords": sum(-(-len(s) // k) for s in sent), "codeword_errors": int(errors.sum()),
                       "decode_failures": failures}
