"""Image source codecs for the separated (codec + 5G LDPC + QAM) digital baseline.

Each image gets a bit budget ``B`` (from the channel uses and the modulation and coding scheme).
:func:`encode_to_budget` picks the highest codec quality whose *whole* coded image fits in ``B``
bits; when not even the lowest quality fits, the image fails (the caller shows its fallback, e.g.
the dataset mean image). The bytes are then sent over the digital link; the receiver decodes the
image only when every codeword of that image was decoded correctly.

Two codecs:

* :class:`JpegCodec` -- baseline JPEG through Pillow (libjpeg). The whole JFIF file is charged:
  SOI, APP0/JFIF, DQT, SOF0, DHT, SOS, entropy-coded data and EOI. JPEG has no separate container;
  its headers (about 300 bytes for a 32x32 colour image, with optimised Huffman tables) are part of
  the format and a receiver needs them, so they count against the budget.
  With ``headers="abbreviated"`` only an abbreviated image stream (ITU-T T.81 Annex B.4: SOI, SOF0,
  SOS, entropy-coded data, EOI) plus one quality byte is charged: the receiver rebuilds the
  quantisation tables from the quality (libjpeg's scaling of the Annex K tables) and uses the
  standard Annex K Huffman tables (so ``optimize=False``); about 38 bytes of overhead.
* :class:`HevcIntraCodec` -- HEVC-intra (x265), the codec inside BPG; not libbpg (libbpg is not
  packaged). Two backends: ``pyav`` (default) runs x265 through PyAV on the image at its own size,
  padded to a multiple of 8 as bpgenc does, and keeps the raw Annex-B stream; ``pillow-heif``
  writes a HEIF file (ISO-BMFF boxes) through libheif, which codes a 32x32 image as 64x64 (on
  CIFAR-10 15-26 % more slice bytes at equal QP, about 1.6 dB less PSNR at equal budget:
  ``bench/hevc_backends.py``). Either way only the HEVC data plus a BPG-sized header is charged,
  not a container (a HEIF one is several hundred bytes, which would be an unfair handicap for
  32x32 images). See :meth:`HevcIntraCodec.bit_count` for the exact count.

Measured per 32x32 CIFAR-10 image on one CPU core of the development machine: JPEG one encode
~0.06 ms, decode ~0.09 ms, budget search ~0.4-0.5 ms; HEVC (either backend) one encode ~3-5 ms
(x265 set-up dominates), decode ~0.15-0.2 ms, budget search ~15-35 ms (about log2 of the number of
qualities trial encodes: 7 for JPEG, 6 for HEVC in QP mode). For whole datasets use
:func:`encode_batch_to_budget` with ``workers > 0`` on a machine with several cores.
"""

from __future__ import annotations

import io
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from PIL import Image

__all__ = [
    "BPG_FIXED_HEADER_BYTES",
    "BPG_HEVC_HEADER_BYTES",
    "START_CODE_BYTES",
    "HevcBitCount",
    "HevcIntraCodec",
    "ImageCodec",
    "JpegCodec",
    "encode_batch_to_budget",
    "encode_to_budget",
    "jpeg_join",
    "jpeg_split",
]

# --- BPG header model (see the BPG specification by F. Bellard, section 3.1) -------------------
#: file_magic (4 bytes) + pixel_format/alpha1/bit_depth (1 byte) + color_space/flags (1 byte).
#: picture_width, picture_height and picture_data_length follow as ue7 numbers (1 byte each below
#: 128, 2 bytes below 16384), which are counted exactly.
BPG_FIXED_HEADER_BYTES = 6
#: BPG replaces the HEVC VPS and SPS NAL units by a compact header: hevc_header_length (ue7, 1 byte)
#: and the SPS fields BPG keeps (ue(v) coded block/transform sizes and depth, then the SAO, PCM,
#: strong-intra-smoothing and extension flags). With the x265 settings used here (min CU 8, CTU 64,
#: TU 4..32, tu-intra-depth 2, SAO on, PCM off, no range extension) the fields take
#: 1+5+1+5+3+4 = 19 bits -> 3 bytes, so 1 + 3 = 4 bytes, matching the "typically 4 bytes" in the
#: BPG specification's design notes.
BPG_HEVC_HEADER_BYTES = 4
#: Annex-B start code charged per NAL unit after the first (BPG drops the first start code; x265
#: writes 3- or 4-byte start codes; we charge 4, i.e. at most 1 byte too much per slice NAL). This is
#: also the size of the 4-byte NAL length fields in the HEIF 'mdat' box, so the mdat content counts
#: byte-for-byte.
START_CODE_BYTES = 4

_NAL_VPS, _NAL_SPS, _NAL_PPS = 32, 33, 34


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 image [H, W, 3], found {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _ue7_len(value: int) -> int:
    """Bytes of a BPG ue7 number (7 payload bits per byte)."""
    n = 1
    while value >= 1 << (7 * n):
        n += 1
    return n


def _ue7(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


class ImageCodec(ABC):
    """A lossy image codec with an integer quality knob (larger = better, more bits).

    ``encode`` returns the codec's own byte string (what the receiver decodes from);
    ``counted_bits`` is what that string is charged against the bit budget; ``wire_bytes`` is a
    byte string of exactly ``counted_bits / 8`` bytes standing for what is transmitted.
    """

    name: str = "codec"

    @property
    @abstractmethod
    def quality_range(self) -> tuple[int, int]:
        """(lowest, highest) valid quality, both inclusive."""

    @abstractmethod
    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """Encode a uint8 image [H, W, 3] at ``quality``."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode bytes from :meth:`encode` to a uint8 image [H, W, 3]."""

    def counted_bits(self, data: bytes) -> int:
        """Bits charged against the budget (default: the whole byte string)."""
        return 8 * len(data)

    def wire_bytes(self, data: bytes) -> bytes:
        """Bytes to transmit; ``8 * len(wire_bytes(d)) == counted_bits(d)``."""
        return bytes(data)

    def _check_quality(self, quality: int) -> int:
        lo, hi = self.quality_range
        q = int(quality)
        if not lo <= q <= hi:
            raise ValueError(f"{self.name}: quality {quality} outside [{lo}, {hi}]")
        return q


@dataclass(frozen=True)
class JpegCodec(ImageCodec):
    """Baseline JPEG (Pillow/libjpeg), quality 1..95.

    ``subsampling``: chroma subsampling, 4:2:0 (libjpeg default) or 4:4:4. ``optimize``: optimised
    (per-image) Huffman tables, which shrinks the DHT segments and the entropy-coded data of small
    images. The whole JFIF file is counted (headers are part of JPEG, a receiver needs them).
    """

    subsampling: Literal["4:2:0", "4:4:4"] = "4:2:0"
    optimize: bool = True
    headers: Literal["full", "abbreviated"] = "full"

    def __post_init__(self):
        if self.headers == "abbreviated" and self.optimize:
            raise ValueError("an abbreviated JPEG stream needs optimize=False (the receiver knows only the "
                             "standard Huffman tables)")

    @property
    def label(self) -> str:
        if self.headers == "abbreviated":
            return "JPEG (Pillow/libjpeg), abbreviated stream + quality byte counted (standard tables)"
        return "JPEG (Pillow/libjpeg), whole JFIF file counted"

    @property
    def name(self) -> str:  # type: ignore[override]
        base = "jpeg" if self.subsampling == "4:2:0" else "jpeg444"
        return base if self.headers == "full" else base + "-abbr"

    @property
    def quality_range(self) -> tuple[int, int]:
        return (1, 95)

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        q = self._check_quality(quality)
        buf = io.BytesIO()
        Image.fromarray(_check_image(image), "RGB").save(
            buf,
            format="JPEG",
            quality=q,
            optimize=self.optimize,
            subsampling=2 if self.subsampling == "4:2:0" else 0,
        )
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    def counted_bits(self, data: bytes) -> int:
        """The whole file, or (``headers="abbreviated"``) the abbreviated stream + 1 quality byte."""
        if self.headers == "full":
            return 8 * len(data)
        return 8 * (1 + len(_jpeg_abbreviated(data)))

    def wire_bytes(self, data: bytes) -> bytes:
        """The file, or one quality byte (placeholder 0: the receiver here decodes from the full
        file) followed by the abbreviated stream (the file without APP, COM, DQT and DHT segments)."""
        if self.headers == "full":
            return bytes(data)
        return b"\x00" + _jpeg_abbreviated(data)


def _jpeg_abbreviated(data: bytes) -> bytes:
    """The JPEG file without its table (DQT, DHT) and application/comment (APPn, COM) segments."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no SOI)")
    out, off = [data[:2]], 2
    while off + 4 <= len(data):
        if data[off] != 0xFF:
            raise ValueError(f"malformed JPEG: no marker at offset {off}")
        marker = data[off + 1]
        length = int.from_bytes(data[off + 2 : off + 4], "big")
        segment = data[off : off + 2 + length]
        if marker == 0xDA:  # SOS: header, then entropy-coded data up to and including EOI
            out.append(data[off:])
            return b"".join(out)
        if not (marker in (0xDB, 0xC4, 0xFE) or 0xE0 <= marker <= 0xEF):
            out.append(segment)
        off += 2 + length
    raise ValueError("malformed JPEG: no SOS segment")


def jpeg_split(data: bytes) -> tuple[bytes, bytes]:
    """A baseline JPEG file -> ``(header, payload)``: the header is everything up to the end of the
    (first) SOS segment, the payload the entropy-coded data between it and the final EOI marker
    (``FF D9``, dropped). Seed004 sends only the payload and gives the receiver the header
    error-free; :func:`jpeg_join` puts the file back together."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        raise ValueError("not a complete JPEG file (no SOI or no final EOI)")
    off = 2
    while off + 4 <= len(data):
        if data[off] != 0xFF:
            raise ValueError(f"malformed JPEG: no marker at offset {off}")
        end = off + 2 + int.from_bytes(data[off + 2 : off + 4], "big")
        if data[off + 1] == 0xDA:
            return data[:end], data[end:-2]
        off = end
    raise ValueError("malformed JPEG: no SOS segment")


def jpeg_join(header: bytes, payload: bytes) -> bytes:
    """The inverse of :func:`jpeg_split`: ``header + payload + EOI``."""
    return bytes(header) + bytes(payload) + b"\xff\xd9"


@dataclass(frozen=True)
class HevcBitCount:
    """What :meth:`HevcIntraCodec.counted_bits` charges, in bytes."""

    bpg_header: int  # BPG file header (fixed part + ue7 width, height, picture_data_length)
    hevc_header: int  # BPG compact SPS header (0 when VPS/SPS NAL units are counted instead)
    parameter_sets: int  # PPS (+ VPS, SPS when param_sets="full") NAL units with start codes
    slice_data: int  # slice NAL units, each with a 4-byte start code (or HEIF length field)
    encoded: int  # the codec's whole byte string (HEIF file or raw stream), for reference only

    @property
    def total(self) -> int:
        return self.bpg_header + self.hevc_header + self.parameter_sets + self.slice_data


@dataclass(frozen=True)
class _HevcParts:
    """The HEVC data of one coded image, whichever backend wrote it."""

    width: int  # the image's own (displayed) size, as a BPG header gives it
    height: int
    param_sets: tuple[tuple[int, bytes], ...]  # (NAL type, NAL unit): VPS, SPS, PPS
    nals: tuple[bytes, ...]  # the other NAL units (slices), in order


_CONTAINER_BOXES = {b"iprp", b"ipco", b"dinf", b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _walk_boxes(data: bytes, start: int, end: int, found: dict[bytes, bytes]) -> None:
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack_from(">I4s", data, off)
        hdr = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, off + 8)
            hdr = 16
        elif size == 0:
            size = end - off
        if size < hdr or off + size > end:
            raise ValueError(f"malformed HEIF box {typ!r} at offset {off}")
        if typ == b"meta":  # FullBox: 4 bytes of version and flags before the children
            _walk_boxes(data, off + hdr + 4, off + size, found)
        elif typ in _CONTAINER_BOXES:
            _walk_boxes(data, off + hdr, off + size, found)
        elif typ not in found:
            found[typ] = data[off + hdr : off + size]
        off += size


def _parse_heif(data: bytes) -> _HevcParts:
    found: dict[bytes, bytes] = {}
    _walk_boxes(data, 0, len(data), found)
    for need in (b"hvcC", b"mdat", b"ispe"):
        if need not in found:
            raise ValueError(f"not a single-image HEVC HEIF file: no {need.decode()} box")
    hvcc = found[b"hvcC"]
    length_size = (hvcc[21] & 0x03) + 1
    param_sets = []
    off, n_arrays = 23, hvcc[22]
    for _ in range(n_arrays):
        nal_type = hvcc[off] & 0x3F
        (count,) = struct.unpack_from(">H", hvcc, off + 1)
        off += 3
        for _ in range(count):
            (n,) = struct.unpack_from(">H", hvcc, off)
            param_sets.append((nal_type, hvcc[off + 2 : off + 2 + n]))
            off += 2 + n
    mdat, nals, off = found[b"mdat"], [], 0
    while off < len(mdat):
        if off + length_size > len(mdat):
            raise ValueError("truncated NAL length in mdat")
        n = int.from_bytes(mdat[off : off + length_size], "big")
        if n == 0 or off + length_size + n > len(mdat):
            raise ValueError("mdat does not hold length-prefixed HEVC NAL units only")
        nals.append(mdat[off + length_size : off + length_size + n])
        off += length_size + n
    ispe = found[b"ispe"]
    width, height = struct.unpack_from(">II", ispe, 4)  # FullBox header, then width, height
    if b"clap" in found:  # clean aperture: the displayed (cropped) size is N/D
        wn, wd, hn, hd = struct.unpack_from(">IIII", found[b"clap"], 0)
        width, height = wn // max(wd, 1), hn // max(hd, 1)
    nals = [n for n in nals if _nal_type(n) not in (_NAL_VPS, _NAL_SPS, _NAL_PPS)]  # none written
    return _HevcParts(width, height, tuple(param_sets), tuple(nals))


def _nal_type(nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F


# --- raw HEVC stream through PyAV (FFmpeg's libx265 wrapper and HEVC decoder) --------------------
#: bpgenc pads a picture to a multiple of the minimum coding block (8) and the BPG header's
#: picture_width/height crop it again; x265 also refuses pictures below 16 luma samples on a side.
_PAD_MULTIPLE, _MIN_CODED_SIZE = 8, 16
#: the ``pyav`` backend's byte string: the image's own width and height, then the Annex-B stream
_RAW_SIZE = struct.Struct(">HH")


def _coded_size(n: int) -> int:
    """Luma samples x265 codes for ``n`` image samples (bpgenc's padding, at least 16)."""
    return max(_MIN_CODED_SIZE, -(-n // _PAD_MULTIPLE) * _PAD_MULTIPLE)


def _rgb_to_ycbcr(rgb: np.ndarray, chroma: Literal["420", "444"]) -> list[np.ndarray]:
    """Full-range BT.601 YCbCr planes (uint8) of a uint8 RGB image [H, W, 3] (H, W even for 4:2:0).

    The conversion libheif applies for pillow-heif (its 'colr' box reads nclx matrix 6, full range:
    JFIF's YCbCr, also BPG's default colour space); 4:2:0 chroma is the mean of each 2x2 block,
    libheif's default downsampling. Checked against libheif's planes at QP 0 (mean difference
    0.25 for Y, 0.28 for Cb/Cr, i.e. quantisation only).
    """
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 + (b - y) / 1.772
    cr = 128.0 + (r - y) / 1.402
    if chroma == "420":
        h, w = y.shape
        cb, cr = (c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) for c in (cb, cr))
    return [np.clip(np.round(p), 0, 255).astype(np.uint8) for p in (y, cb, cr)]


def _ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] from full-range BT.601 planes (uint8); half-size chroma (4:2:0) is
    upsampled by repetition, libheif's default (nearest neighbour), so that both backends show the
    same decoder (the mean pixel difference to pillow-heif's own conversion is 0.03)."""
    if cb.shape != y.shape:
        cb, cr = (c.repeat(2, axis=0).repeat(2, axis=1) for c in (cb, cr))
    y, cb, cr = (p.astype(np.float64) for p in (y, cb, cr))
    cb, cr = cb - 128.0, cr - 128.0
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _split_annexb(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte stream (start codes and trailing zero bytes removed)."""
    starts, off = [], stream.find(b"\x00\x00\x01")
    if off < 0 or stream[:off].strip(b"\x00"):
        raise ValueError("not an Annex-B HEVC stream (no leading start code)")
    while off >= 0:
        starts.append(off + 3)
        off = stream.find(b"\x00\x00\x01", off + 3)
    ends = [s - 3 for s in starts[1:]] + [len(stream)]
    nals = [stream[s:e].rstrip(b"\x00") for s, e in zip(starts, ends, strict=True)]
    if not all(nals):
        raise ValueError("empty NAL unit in the HEVC stream")
    return nals


def _parse_raw(data: bytes) -> _HevcParts:
    """Split the ``pyav`` backend's byte string (see :meth:`HevcIntraCodec.encode`)."""
    if len(data) < _RAW_SIZE.size + 4:
        raise ValueError("too short for a raw HEVC image")
    width, height = _RAW_SIZE.unpack_from(data)
    nals = _split_annexb(data[_RAW_SIZE.size :])
    param_sets = tuple((_nal_type(n), n) for n in nals if _nal_type(n) in (_NAL_VPS, _NAL_SPS, _NAL_PPS))
    others = tuple(n for n in nals if _nal_type(n) not in (_NAL_VPS, _NAL_SPS, _NAL_PPS))
    if not (width and height and {t for t, _ in param_sets} == {_NAL_VPS, _NAL_SPS, _NAL_PPS} and others):
        raise ValueError("not a raw single-image HEVC stream (size, VPS, SPS, PPS and slices expected)")
    return _HevcParts(width, height, param_sets, others)


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("HevcIntraCodec(backend='pyav') needs the 'av' package (PyAV)") from exc
    return av


@dataclass(frozen=True)
class HevcIntraCodec(ImageCodec):
    """HEVC-intra (x265), the codec inside BPG; not libbpg (which is not packaged).

    ``backend="pyav"`` (default) runs x265 through PyAV (FFmpeg's libx265 wrapper) on the image at
    its own size as bpgenc does: padded by edge replication to a multiple of 8 (at least 16, x265's
    minimum) and cropped again on decoding, the size travelling in the BPG header; the stream is
    decoded by FFmpeg's HEVC decoder. ``backend="pillow-heif"`` writes a HEIF file through libheif,
    which pads images smaller than 64x64 to 64x64 (cropped through the HEIF 'clap' box): on
    CIFAR-10 this costs 15-26 % more slice bytes at equal QP (QP 18-38) and about 1.6 dB PSNR at
    equal budget (``bench/hevc_backends.py``).

    ``rate_control="qp"`` (default, as BPG): constant QP, ``quality = 51 - QP`` in 0..51 (BPG's
    default ``-q 28`` is quality 23). ``rate_control="crf"``: libheif's quality 0..100
    (x265 CRF = (100 - quality) / 2, on both backends).

    x265 settings follow libbpg's front-end where libheif allows, the same on both backends:
    ``preset="veryslow"`` (BPG's default compression level 8), tune ssim as libheif sets it,
    psycho-visual RD off (``psy-rd=0, psy-rdoq=0``, which is what tune ssim sets and libheif
    overrides), single-threaded (no thread pool: faster for tiny images and safe in worker
    processes); ``pyav`` adds ``keyint=1`` (intra) and ``info=0`` (no x265 version SEI, as bpgenc).
    x265 itself lowers the CTU size to fit small pictures (32 at 32x32, 64 for libheif's 64x64).
    The colour conversion is libheif's on both: full-range BT.601 YCbCr (BPG's default), 4:2:0
    chroma averaged over 2x2 blocks and repeated on decoding (see :func:`_rgb_to_ycbcr`,
    :func:`_ycbcr_to_rgb`).

    ``param_sets="bpg"`` (default) counts what a BPG file holds; ``"full"`` counts a standard HEVC
    stream's VPS + SPS + PPS instead of BPG's compact header (about 60 bytes more). The same
    accounting applies to both backends' NAL units (:meth:`bit_count`).
    """

    chroma: Literal["420", "444"] = "420"
    rate_control: Literal["qp", "crf"] = "qp"
    preset: str = "veryslow"
    param_sets: Literal["bpg", "full"] = "bpg"
    backend: Literal["pyav", "pillow-heif"] = "pyav"

    def __post_init__(self):
        if self.backend not in ("pyav", "pillow-heif"):
            raise ValueError(f"HevcIntraCodec: unknown backend {self.backend!r} (pyav or pillow-heif)")

    @property
    def name(self) -> str:  # type: ignore[override]
        return "hevc" if self.chroma == "420" else "hevc444"

    @property
    def label(self) -> str:
        if self.backend == "pyav":
            return "HEVC-intra (x265 via PyAV) at the image's own size, the codec inside BPG; not libbpg"
        return "HEVC-intra (x265) via pillow-heif, the codec inside BPG; not libbpg"

    @property
    def quality_range(self) -> tuple[int, int]:
        return (0, 51) if self.rate_control == "qp" else (0, 100)

    @staticmethod
    def _heif():
        try:
            import pillow_heif
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("HevcIntraCodec(backend='pillow-heif') needs the 'pillow-heif' package") from exc
        return pillow_heif

    def _x265_params(self, quality: int) -> dict[str, str]:
        """x265 parameters of both backends (rate control from ``quality``)."""
        params = {"pools": "none", "frame-threads": "1", "psy-rd": "0", "psy-rdoq": "0"}
        if self.rate_control == "qp":
            params["qp"] = str(51 - quality)  # sets constant-QP rate control in x265
        elif self.backend == "pyav":
            params["crf"] = f"{(100 - quality) / 2:g}"  # libheif's mapping of its quality
        return params

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """Encode a uint8 image [H, W, 3]: a HEIF file (``pillow-heif``) or (``pyav``) the image's
        width and height (2 bytes each, big-endian) followed by the Annex-B HEVC stream (VPS, SPS,
        PPS, slice NAL units) of the padded picture."""
        q = self._check_quality(quality)
        image = _check_image(image)
        if self.backend == "pillow-heif":
            ph = self._heif()
            enc_params = {"preset": self.preset, **{f"x265:{k}": v for k, v in self._x265_params(q).items()}}
            heif_quality = q if self.rate_control == "crf" else 50  # in QP mode the CQP setting overrides it
            heif = ph.from_pillow(Image.fromarray(image, "RGB"))
            buf = io.BytesIO()
            heif.save(buf, quality=heif_quality, chroma=self.chroma, enc_params=enc_params)
            return buf.getvalue()
        return _RAW_SIZE.pack(image.shape[1], image.shape[0]) + self._encode_stream(image, q)

    def _encode_stream(self, image: np.ndarray, quality: int) -> bytes:
        av = _av()
        h, w = image.shape[:2]
        ch, cw = _coded_size(h), _coded_size(w)
        padded = np.pad(image, ((0, ch - h), (0, cw - w), (0, 0)), mode="edge")
        y, cb, cr = _rgb_to_ycbcr(padded, self.chroma)
        if self.chroma == "420":
            pix_fmt, array = "yuv420p", np.concatenate([y.ravel(), cb.ravel(), cr.ravel()]).reshape(-1, cw)
        else:
            pix_fmt, array = "yuv444p", np.stack([y, cb, cr])
        params = {**self._x265_params(quality), "keyint": "1", "info": "0", "log-level": "none"}
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = cw, ch, pix_fmt
        ctx.time_base = Fraction(1, 1)
        # VUI: full-range BT.601, so that the stream alone decodes to the right colours
        ctx.color_range, ctx.colorspace = 2, 6  # AVCOL_RANGE_JPEG, AVCOL_SPC_SMPTE170M
        ctx.options = {"preset": self.preset, "tune": "ssim",
                       "x265-params": ":".join(f"{k}={v}" for k, v in params.items())}
        frame = av.VideoFrame.from_ndarray(array, format=pix_fmt)
        frame.color_range, frame.colorspace = 2, 6
        return b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))

    def decode(self, data: bytes) -> np.ndarray:
        """Decode bytes from :meth:`encode` to a uint8 image [H, W, 3]; ``ValueError`` when they are
        not a coded image (a stream whose slices are damaged may still decode, concealed)."""
        if self.backend == "pillow-heif":
            heif = self._heif().open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            return np.asarray(heif.to_pillow().convert("RGB"))
        av = _av()
        parts = _parse_raw(data)
        ctx = av.CodecContext.create("hevc", "r")
        ctx.thread_count = 1
        try:
            frames = ctx.decode(av.Packet(data[_RAW_SIZE.size :])) + ctx.decode(None)
        except av.error.FFmpegError as exc:
            raise ValueError(f"HEVC stream does not decode: {exc}") from exc
        if not frames:
            raise ValueError("HEVC stream decodes to no picture")
        frame = frames[0]
        planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes]
        if len(planes) != 3 or frame.height < parts.height or frame.width < parts.width:
            raise ValueError(f"HEVC stream decodes to a {frame.width}x{frame.height} {frame.format.name} picture, "
                             f"not a {parts.width}x{parts.height} one")
        return np.ascontiguousarray(_ycbcr_to_rgb(*planes)[: parts.height, : parts.width])

    def _parts(self, data: bytes) -> _HevcParts:
        return _parse_heif(data) if self.backend == "pillow-heif" else _parse_raw(data)

    def _counted_nals(self, parts: _HevcParts) -> tuple[list[bytes], list[bytes]]:
        """(parameter-set NAL units charged, slice NAL units) in stream order."""
        keep = (_NAL_PPS,) if self.param_sets == "bpg" else (_NAL_VPS, _NAL_SPS, _NAL_PPS)
        kept = [n for t, n in sorted(parts.param_sets, key=lambda tn: tn[0]) if t in keep]
        return kept, list(parts.nals)

    def bit_count(self, data: bytes) -> HevcBitCount:
        """Byte breakdown of :meth:`counted_bits`, the same rule on both backends.

        The slice NAL units, each with a 4-byte start code (in a HEIF file: the 'mdat' box content,
        each NAL behind a 4-byte length field) and the PPS NAL unit (BPG keeps the PPS as the first
        NAL of its hevc_data, without a start code; in a HEIF file it sits in the 'hvcC' box in
        meta/iprp/ipco). VPS and SPS are replaced by BPG's compact header
        (:data:`BPG_HEVC_HEADER_BYTES`). Added: the BPG file header, :data:`BPG_FIXED_HEADER_BYTES`
        plus the ue7 width, height (the image's own size) and picture_data_length. Not charged: the
        HEIF container (ftyp, meta with hdlr, iloc, iinf, pitm, iprp with hvcC framing, colr, ispe,
        clap, pixi, ipma, and the mdat box header), or the raw stream's 4-byte size prefix.
        """
        parts = self._parts(data)
        kept, slices = self._counted_nals(parts)
        hevc_header = BPG_HEVC_HEADER_BYTES if self.param_sets == "bpg" else 0
        slice_data = sum(START_CODE_BYTES + len(n) for n in slices)
        # the first NAL of hevc_data has no start code; every later one has one
        param_bytes = sum(len(n) for n in kept) + START_CODE_BYTES * max(len(kept) - 1, 0)
        if not kept:  # the first slice NAL goes without its start code
            slice_data -= START_CODE_BYTES
        picture_data_length = hevc_header + param_bytes + slice_data
        bpg_header = (
            BPG_FIXED_HEADER_BYTES
            + _ue7_len(parts.width)
            + _ue7_len(parts.height)
            + _ue7_len(picture_data_length)
        )
        return HevcBitCount(bpg_header, hevc_header, param_bytes, slice_data, len(data))

    def counted_bits(self, data: bytes) -> int:
        """8 x (BPG file header + BPG compact SPS header + PPS + slice NALs); see :meth:`bit_count`."""
        return 8 * self.bit_count(data).total

    def wire_bytes(self, data: bytes) -> bytes:
        """A BPG-like byte string of exactly ``counted_bits / 8`` bytes.

        Real BPG file-header fields and the real PPS and slice NAL units; the 3 bytes of compact
        SPS fields are zero placeholders (the receiver here decodes from :meth:`encode`'s bytes).
        """
        parts = self._parts(data)
        count = self.bit_count(data)
        kept, slices = self._counted_nals(parts)
        nals = kept + slices
        start = b"\x00" * (START_CODE_BYTES - 1) + b"\x01"
        hevc_data = nals[0] + b"".join(start + n for n in nals[1:])
        hevc_header = b""
        if count.hevc_header:
            hevc_header = _ue7(count.hevc_header - 1) + b"\x00" * (count.hevc_header - 1)
        pixel_format = 1 if self.chroma == "420" else 3
        body = hevc_header + hevc_data
        out = (
            b"\x42\x50\x47\xfb"
            + bytes([pixel_format << 5, 0])  # 8-bit, no alpha; YCbCr BT.601 full range, no flags
            + _ue7(parts.width)
            + _ue7(parts.height)
            + _ue7(len(body))
            + body
        )
        assert len(out) == count.total
        return out


def encode_to_budget(
    codec: ImageCodec, image: np.ndarray, budget_bits: int
) -> tuple[bytes | None, int | None]:
    """Highest quality whose counted bits fit ``budget_bits``: ``(data, quality)``.

    Binary search over the integer quality, assuming the size grows with the quality. Whatever is
    returned was encoded and checked to fit; if the size is not monotone the search may miss a
    higher fitting quality, but never returns one that does not fit. The returned quality ``q`` is
    either the highest quality or ``q + 1`` was tried and did not fit. Returns ``(None, None)``
    when not even the lowest quality fits.
    """
    lo, hi = codec.quality_range
    image = _check_image(image)
    fits: dict[int, bytes | None] = {}

    def try_q(q: int) -> bool:
        if q not in fits:
            data = codec.encode(image, q)
            fits[q] = data if codec.counted_bits(data) <= budget_bits else None
        return fits[q] is not None

    a, b = lo, hi  # answer in [a, b]; every q > b tried so far did not fit
    while a < b:
        mid = (a + b + 1) // 2
        if try_q(mid):
            a = mid
        else:
            b = mid - 1
    if not try_q(a):  # only possible for a == lo
        return None, None
    return fits[a], a


def _encode_chunk(
    codec: ImageCodec, images: np.ndarray, budgets: Sequence[int]
) -> list[tuple[bytes | None, int | None]]:
    return [encode_to_budget(codec, im, int(b)) for im, b in zip(images, budgets, strict=True)]


def encode_batch_to_budget(
    codec: ImageCodec,
    images: np.ndarray,
    budget_bits: int | Sequence[int] | np.ndarray,
    workers: int = 0,
    chunk_size: int | None = None,
    mp_context=None,
) -> tuple[list[bytes | None], list[int | None]]:
    """:func:`encode_to_budget` for images [N, H, W, 3] (uint8), in order.

    ``budget_bits``: one budget for all images or one per image. ``workers > 0`` spreads chunks of
    ``chunk_size`` images (default: about 4 chunks per worker) over a
    ``concurrent.futures.ProcessPoolExecutor`` (``mp_context``: a multiprocessing context, default
    the platform's); ``workers = 0`` runs in this process. Returns ``(data, quality)`` lists with
    ``None`` for the images that do not fit.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected uint8 images [N, H, W, 3], found {images.dtype} {images.shape}")
    n = images.shape[0]
    budgets = np.broadcast_to(np.asarray(budget_bits, dtype=np.int64), (n,))
    if workers <= 0 or n <= 1:
        results = _encode_chunk(codec, images, budgets)
    else:
        size = chunk_size or max(1, -(-n // (4 * workers)))
        starts = range(0, n, size)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp_context) as pool:
            futures = [
                pool.submit(_encode_chunk, codec, images[s : s + size], budgets[s : s + size].tolist())
                for s in starts
            ]
            results = [r for f in futures for r in f.result()]
    return [r[0] for r in results], [r[1] for r in results]
