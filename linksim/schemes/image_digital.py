"""Scheme: separated digital image transmission, image codec (JPEG or HEVC-intra) + 5G LDPC + QAM.

The classical reference for learned image JSCC (DeepJSCC and its relatives): every test image is
compressed to fit the bits one image may carry, the file is protected by a 5G LDPC code, mapped to
Gray QAM and sent through the scenario's channel. One scheme instance evaluates a whole grid of
modulation and coding schemes (MCS) on the same images and reports each of them, their upper
envelope ("best digital") and, optionally, the "codec + capacity" ideal.

**Channel uses.** ``bandwidth_ratio`` rho fixes the complex channel uses per image,
``K = round(rho * H * W * C)`` (CIFAR-10, 3072 source values: rho = 1/6 -> K = 512, rho = 1/12 ->
K = 256). ``K`` is what :meth:`~ImageDigitalScheme.budget` reports, whatever part of it an MCS uses.
On a channel with overhead (OFDM pilots) the data symbols per image are the most ``S`` with
``channel.channel_uses(S) <= K``; on AWGN and Rayleigh ``S = K``.

**Bit budget of an MCS** ``(k, n, modulation, bits_per_symbol m)`` (a :class:`McsParams`, the
:class:`~linksim.link.digital.DigitalLinkParams` of one 5G LDPC link):
``codewords per image c = floor(S * m / n)`` and ``budget = c * (k - CRC bits)`` bits; the ``S - c*n/m``
leftover channel uses stay empty (counted, not used). The codec picks the highest quality whose whole
counted file fits (:func:`~linksim.link.image_codec.encode_to_budget`; JPEG: the whole JFIF file;
HEVC: BPG-style accounting, see :class:`~linksim.link.image_codec.HevcIntraCodec`). The file's wire
bytes, as bits, fill ``ceil(file bits / k)`` codewords; the last one is padded with zeros. Each image's
``c`` codewords go through the channel as one row (``c * n / m`` symbols), so Rayleigh block fading
(``coherence_symbols: null``) has one fade per image; codewords beyond the file carry zeros and are
ignored. The encoding does not depend on the SNR: it is done once per (image, budget) and cached.

**Failure and fallback.** Errors are detected by a genie (decoded bits compared with the sent bits; a
CRC, if an MCS sets one, is charged but not needed): if any codeword of the file has a residual
error the image fails and the receiver shows the fallback image (``fallback: mean_image``, the
per-pixel mean of the training set, rounded to uint8, computed in :meth:`~ImageDigitalScheme.prepare`;
or ``channel_mean``, the per-channel training-set mean). An image whose file does not fit the budget
even at the lowest quality fails too (nothing is sent; counted separately as ``unfit``). PSNR and
SSIM (:mod:`linksim.metrics`, 8-bit, per image, then averaged) are those of what the receiver shows:
the codec's decoding of the file when every codeword arrived intact (the received bits then equal the
sent ones), the fallback otherwise.

**Codec + capacity** (``capacity: true``): an error-free link at AWGN capacity,
``budget = floor(K * log2(1 + Es/N0))`` bits per image (Es/N0 linear, that of the SNR point, the same
on every channel: on a fading channel an optimistic reference above the ergodic capacity); images
whose file does not fit at the lowest quality show the fallback. Encoded per SNR point, cached per
budget.

**Counters** (all additive; ``<o>`` is an MCS name or ``capacity``): ``samples`` (images), the
quality sums of :func:`~linksim.metrics.quality_counters` (``psnr_sum_<o>``, ``psnr_sq_sum_<o>``,
``ssim_sum_<o>``, ``ssim_sq_sum_<o>``, ``mse_sum_<o>``, ``mse_sq_sum_<o>``, ``images_<o>``; the MSE
recovered from the cached PSNR by :func:`~linksim.metrics.mse_from_psnr`), ``failed_<o>`` (images
showing the fallback, unfit included), ``unfit_<o>`` (no file fits), ``file_bits_<o>`` (counted bits
of the files that fit); per MCS also ``codewords_<o>`` (codewords carrying file bits) and
``codeword_errors_<o>``.
**Rates:** ``psnr_db_<o>``, ``ssim_<o>``, ``mse_<o>`` (means over the images with a Student-t
interval and ``_std``, :func:`~linksim.metrics.image_quality_rates`), ``psnr_of_mean_mse_db_<o>``
(PSNR of the mean MSE), ``image_failure_rate_<o>`` (with interval), ``unfit_rate_<o>`` (plain
ratio), ``bler_<o>`` (codeword error rate, with interval). The options are the scheme's
:attr:`~linksim.schemes.base.Scheme.configs`: in ``results.csv`` each gets a row of its own after the
envelope's (``config`` = ``<o>``, the columns without the ``_<o>``: ``psnr_db``, ``bler``, ``failed``, ...).

**Headline** (``psnr_db``, ``ssim``, ``mse`` with their ``_ci_low``/``_ci_high``/``_std``,
``psnr_of_mean_mse_db``, ``image_failure_rate`` and the ``errors``/``error_rate``/``ci_*`` columns):
the envelope over the MCS grid, i.e. the MCS with the highest mean PSNR over all the images of the
point (ties: the first in the grid), named in ``best_mcs``; without an MCS grid, the capacity curve.
It is derived from the point's final counters in :meth:`~ImageDigitalScheme.summarize`. The primary
rate that drives ``target_errors`` is the first option's image failure rate; a point of this scheme
is meant to stop at ``max_samples`` (one pass over the evaluation images). The primary stays this
rate rather than the PSNR mean, so that ``errors``/``error_rate`` keep their meaning in the
committed results.

Time: JPEG budget search ~0.5 ms per image and budget, HEVC ~15-25 ms (one CPU core); ``workers``
spreads the encoding over processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, NonNegativeInt, model_validator
from torch import nn

from linksim.channels.base import Channel
from linksim.link.digital import DigitalLink, DigitalLinkParams
from linksim.link.image_codec import (
    HevcIntraCodec,
    ImageCodec,
    JpegCodec,
    encode_batch_to_budget,
)
from linksim.link.packing import ImageBandwidthParams
from linksim.metrics import (
    image_quality_rates,
    mse_from_psnr,
    psnr,
    quality_counters,
    ssim,
)
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext, Statistic
from linksim.snr import LinkBudget, esno_db_to_no

__all__ = ["Delivery", "HevcParams", "ImageDigitalParams", "ImageDigitalScheme", "JpegParams", "McsParams", "capacity_bits"]

CAPACITY = "capacity"


class McsParams(DigitalLinkParams):
    """One MCS of the grid: a coded :class:`~linksim.link.digital.DigitalLinkParams` (``n`` required)
    and an optional ``name`` (default ``<modulation>-k<k>-n<n>``, e.g. ``16qam-k768-n1024``)."""

    name: str | None = None

    @model_validator(mode="after")
    def _coded(self):
        if self.n is None:
            raise ValueError("an MCS of image_digital needs an LDPC code (n)")
        if self.name is not None and not self.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"MCS name {self.name!r}: use letters, digits, '-', '_', '.' only")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        m = self.bits_per_symbol
        mod = {1: "bpsk", 2: "qpsk"}.get(m, f"{2**m}qam") if self.modulation == "qam" or m == 1 else f"{2**m}pam"
        return f"{mod}-k{self.k}-n{self.n}"


class JpegParams(BaseModel):
    """:class:`~linksim.link.image_codec.JpegCodec` options. ``headers``: ``full`` charges the whole
    JFIF file (about 300 bytes of headers at 32x32: it fits no MCS of the presets),
    ``abbreviated`` an abbreviated stream with standard tables + a quality byte (about 38 bytes of
    overhead). ``optimize`` (per-image Huffman tables) defaults to true with full headers and must be
    false with abbreviated ones."""

    model_config = ConfigDict(extra="forbid")
    subsampling: Literal["4:2:0", "4:4:4"] = "4:2:0"
    headers: Literal["full", "abbreviated"] = "full"
    optimize: bool | None = None

    @model_validator(mode="after")
    def _tables(self):
        if self.headers == "abbreviated" and self.optimize:
            raise ValueError("abbreviated JPEG headers need optimize: false (standard Huffman tables)")
        return self


class HevcParams(BaseModel):
    """:class:`~linksim.link.image_codec.HevcIntraCodec` options. ``backend``: ``pyav`` (x265
    through PyAV on the image at its own size, padded to a multiple of 8 as bpgenc does) or
    ``pillow-heif`` (libheif, which codes a 32x32 image as 64x64: on CIFAR-10 15-26 % more slice
    bytes at equal QP and about 1.6 dB less PSNR at equal budget); both are counted the same
    BPG-style way."""

    model_config = ConfigDict(extra="forbid")
    chroma: Literal["420", "444"] = "420"
    rate_control: Literal["qp", "crf"] = "qp"
    preset: str = "veryslow"
    param_sets: Literal["bpg", "full"] = "bpg"
    backend: Literal["pyav", "pillow-heif"] = "pyav"


class ImageDigitalParams(ImageBandwidthParams):
    """Image codec + 5G LDPC + QAM over the scenario channel (see the module docstring).

    ``bandwidth_ratio``: complex channel uses per image / source values (a number or a fraction
    string such as ``"1/6"``). ``codec``: ``jpeg`` or ``hevc`` (HEVC-intra via x265, the codec
    inside BPG, not libbpg), options under ``jpeg`` / ``hevc``. ``mcs``: the MCS grid (may be empty
    when ``capacity``). ``capacity``: add the codec + capacity ideal. ``fallback``: what a failed
    image shows. ``data``: the image set and the evaluation sample (the same images as every other
    scheme with the same ``data.eval_subset``). ``workers``: processes for the codec's budget search
    (0: in process).
    """

    codec: Literal["jpeg", "hevc"] = "hevc"
    jpeg: JpegParams = JpegParams()
    hevc: HevcParams = HevcParams()
    mcs: list[McsParams] = []
    capacity: bool = False
    fallback: Literal["mean_image", "channel_mean"] = "mean_image"
    workers: NonNegativeInt = 0

    @model_validator(mode="after")
    def _consistent(self):
        if self.image_shape[0] != 3:
            raise ValueError(f"data.name: image_digital codes colour images (found {self.data.name!r}, "
                             f"{self.image_shape[0]} channel)")
        if self.channel_uses < 1:
            raise ValueError(f"bandwidth_ratio {self.bandwidth_ratio} leaves no channel use per image")
        if not self.mcs and not self.capacity:
            raise ValueError("give an mcs grid, capacity: true, or both")
        names = [m.label for m in self.mcs] + ([CAPACITY] if self.capacity else [])
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"MCS names must be unique (and not 'capacity'), found {', '.join(dup)} twice")
        return self

    def make_codec(self) -> ImageCodec:
        if self.codec == "jpeg":
            j = self.jpeg
            optimize = (j.headers == "full") if j.optimize is None else j.optimize
            return JpegCodec(subsampling=j.subsampling, optimize=optimize, headers=j.headers)
        return HevcIntraCodec(**self.hevc.model_dump())


def capacity_bits(channel_uses: float, no: torch.Tensor) -> np.ndarray:
    """``floor(channel_uses * log2(1 + 1/no))`` bits per image, one per entry of ``no`` (float64 math)."""
    snr = 1.0 / np.asarray(torch.as_tensor(no).detach().cpu().double().numpy(), dtype=np.float64)
    return np.floor(channel_uses * np.log2(1.0 + snr) + 1e-9).astype(np.int64)


@dataclass
class _Coded:
    """The test images coded at one bit budget (filled lazily, image by image)."""

    status: np.ndarray  # int8 [N]: 0 not coded yet, 1 file fits, 2 no file fits
    file_bits: np.ndarray  # int64 [N]: counted bits of the file (0 when it does not fit)
    psnr: np.ndarray  # float64 [N]: PSNR of the codec's decoding (of the fallback when it does not fit)
    ssim: np.ndarray  # float64 [N]
    data: dict[int, bytes] = field(default_factory=dict)  # the codec's file per image
    wire: dict[int, np.ndarray] = field(default_factory=dict)  # transmitted bits (uint8 0/1) per image


@dataclass(frozen=True)
class Delivery:
    """What happened to a batch of images under one option (an MCS or ``capacity``).

    ``ok``: the receiver shows the codec's decoding; ``unfit``: no file fits the budget;
    ``codewords`` / ``codeword_errors``: codewords carrying file bits and those with residual errors.
    """

    indices: np.ndarray
    ok: np.ndarray
    unfit: np.ndarray
    codewords: np.ndarray
    codeword_errors: np.ndarray


@register_scheme("image_digital", ImageDigitalParams)
class ImageDigitalScheme(Scheme):
    """Image codec (JPEG / HEVC-intra) + 5G LDPC + QAM per MCS, their envelope and codec + capacity;
    an item is one test image (see :mod:`linksim.schemes.image_digital`)."""

    def __init__(self, params: ImageDigitalParams):
        super().__init__()
        self.params = p = params
        self.codec = p.make_codec()
        self.mcs_names = [m.label for m in p.mcs]
        self.options = self.mcs_names + ([CAPACITY] if p.capacity else [])
        self.configs = tuple(self.options)  # a results row per option, after the envelope's
        self.links = nn.ModuleList(DigitalLink(DigitalLinkParams(**m.model_dump(exclude={"name"}))) for m in p.mcs)
        self._headline_options = self.mcs_names or [CAPACITY]
        self.rates: dict[str, Statistic] = {}
        for o in self.options:
            self.rates.update(image_quality_rates(suffix=f"_{o}"))  # psnr_db_<o>, ssim_<o>, mse_<o> (means), ...
            self.rates.update({
                f"image_failure_rate_{o}": Rate(f"failed_{o}", "samples"),
                f"unfit_rate_{o}": Rate(f"unfit_{o}", "samples", interval=False),
            })
            if o != CAPACITY:
                self.rates[f"bler_{o}"] = Rate(f"codeword_errors_{o}", f"codewords_{o}")
        self.primary = f"image_failure_rate_{self._headline_options[0]}"
        self._cache: dict[int, _Coded] = {}
        self._eval = EvalCursor()
        self._images: np.ndarray | None = None
        self.facts = {"codec": getattr(self.codec, "label", self.codec.name),
                             "channel_uses_per_image": p.channel_uses,
                             "bandwidth_ratio": p.bandwidth_ratio}

    # ------------------------------------------------------------------ accounting
    def data_symbols(self, channel: Channel) -> int:
        """Data symbols per image: the most ``S`` with ``channel.channel_uses(S) <= K``."""
        k = self.params.channel_uses
        s = k
        while s > 0 and channel.channel_uses(s) > k * (1 + 1e-12):
            s -= 1
        return s

    def codewords_per_image(self, i: int, channel: Channel) -> int:
        """``floor(S * bits_per_symbol / n)`` codewords of MCS ``i`` per image."""
        m = self.params.mcs[i]
        return self.data_symbols(channel) * m.bits_per_symbol // m.n

    def mcs_budget_bits(self, i: int, channel: Channel) -> int:
        """Codec bit budget of MCS ``i``: codewords per image x information bits per codeword."""
        return self.codewords_per_image(i, channel) * self.params.mcs[i].payload_bits

    def budget(self, channel: Channel) -> LinkBudget:
        return LinkBudget(float(self.params.channel_uses))

    # ------------------------------------------------------------------ data
    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        if context.compile:
            for link in self.links:
                link.compile_decoder()
        test = p.data.evaluation_set(context)
        train = p.data.training_set(context)
        if tuple(test.images.shape[1:]) != p.image_shape:
            raise ValueError(f"{p.data.name}: expected images of {p.image_shape}, found {tuple(test.images.shape[1:])}")
        images = test.images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        mean = train.images.cpu().numpy().mean(axis=0, dtype=np.float64).transpose(1, 2, 0)  # [H, W, C]
        if p.fallback == "channel_mean":
            mean = np.broadcast_to(mean.mean(axis=(0, 1), keepdims=True), mean.shape)
        self.set_images(images, np.clip(np.round(mean), 0, 255).astype(np.uint8))
        self.facts.update({"dataset_source": test.source, "test_images": len(images),
                            "fallback_psnr_db": float(self._fallback_psnr.mean()),
                            "fallback_ssim": float(self._fallback_ssim.mean())})

    def set_images(self, images: np.ndarray, fallback: np.ndarray) -> None:
        """Evaluation images uint8 [N, H, W, 3] and the fallback image uint8 [H, W, 3] (what
        :meth:`prepare` sets from the dataset); clears the coding cache."""
        self._images = np.ascontiguousarray(images, dtype=np.uint8)
        self._fallback = np.ascontiguousarray(np.broadcast_to(fallback, self._images.shape[1:]), dtype=np.uint8)
        shown = np.broadcast_to(self._fallback, self._images.shape)
        self._fallback_psnr = np.asarray(psnr(self._images, shown))
        self._fallback_ssim = np.asarray(ssim(self._images, shown))
        self._cache.clear()

    def describe(self) -> dict:
        p = self.params
        # the MCS budgets on a channel without overhead (AWGN, Rayleigh)
        plain = Channel()
        mcs = {name: {"codewords_per_image": self.codewords_per_image(i, plain),
                      "budget_bits": self.mcs_budget_bits(i, plain),
                      "bits_per_channel_use": self.mcs_budget_bits(i, plain) / p.channel_uses}
               for i, name in enumerate(self.mcs_names)}
        return {**self.facts, "mcs": mcs}

    def coded(self, budget_bits: int, indices: np.ndarray) -> _Coded:
        """The coding of the images ``indices`` at ``budget_bits`` (encoded now if not cached)."""
        budget_bits = int(budget_bits)
        n = len(self._images)
        entry = self._cache.get(budget_bits)
        if entry is None:
            entry = self._cache[budget_bits] = _Coded(np.zeros(n, np.int8), np.zeros(n, np.int64),
                                                      np.zeros(n), np.zeros(n))
        todo = np.unique(indices[entry.status[indices] == 0])
        if len(todo):
            datas, _ = encode_batch_to_budget(self.codec, self._images[todo], max(budget_bits, 0),
                                              workers=self.params.workers)
            decoded = []
            for j, data in zip(todo.tolist(), datas, strict=True):
                if data is None:
                    entry.status[j] = 2
                    entry.psnr[j], entry.ssim[j] = self._fallback_psnr[j], self._fallback_ssim[j]
                    continue
                entry.status[j] = 1
                entry.file_bits[j] = self.codec.counted_bits(data)
                entry.data[j] = data
                entry.wire[j] = np.unpackbits(np.frombuffer(self.codec.wire_bytes(data), np.uint8))
                assert entry.file_bits[j] == len(entry.wire[j]) <= budget_bits
                decoded.append((j, self.codec.decode(data)))
            if decoded:
                idx = np.array([j for j, _ in decoded])
                imgs = np.stack([d for _, d in decoded])
                entry.psnr[idx] = psnr(self._images[idx], imgs)
                entry.ssim[idx] = ssim(self._images[idx], imgs)
        return entry

    # ------------------------------------------------------------------ transmission
    def deliver(self, option: str, indices: np.ndarray, no: torch.Tensor, channel: Channel) -> Delivery:
        """Send the images ``indices`` under ``option`` (an MCS name or ``capacity``) at noise ``no``
        ([] or [len(indices)]); returns what arrived."""
        indices = np.asarray(indices, dtype=np.int64)
        b = len(indices)
        no = torch.as_tensor(no, dtype=torch.float32)
        if option == CAPACITY:
            budgets = np.broadcast_to(capacity_bits(self.params.channel_uses, no), (b,))
            unfit = np.zeros(b, bool)
            for value in np.unique(budgets):
                sel = budgets == value
                with self.stage_times("codec"):
                    unfit[sel] = self.coded(value, indices[sel]).status[indices[sel]] == 2
            zeros = np.zeros(b, np.int64)
            return Delivery(indices, ~unfit, unfit, zeros, zeros)
        i = self.mcs_names.index(option)
        link, mp = self.links[i], self.params.mcs[i]
        c = self.codewords_per_image(i, channel)
        with self.stage_times("codec"):
            entry = self.coded(self.mcs_budget_bits(i, channel), indices)
        unfit = entry.status[indices] == 2
        k = mp.payload_bits
        used = np.where(unfit, 0, -(-entry.file_bits[indices] // k))  # codewords carrying file bits
        errors = np.zeros(b, np.int64)
        send = np.flatnonzero(~unfit)
        if len(send):
            with self.stage_times("link"):
                bits = np.zeros((len(send), c * k), np.float32)  # zero padding after each file
                for row, j in enumerate(indices[send]):
                    bits[row, : len(entry.wire[j])] = entry.wire[j]
                device = no.device
                bits_t = torch.from_numpy(bits).to(device).reshape(len(send) * c, k)
                x = link.transmit(bits_t).reshape(len(send), -1)  # one row per image: c * n / m symbols
                no_rows = no[torch.from_numpy(send).to(device)] if no.dim() == 1 else no
                y, no_eff = channel(x, no_rows)
                bits_hat, _ = link.receive(y.reshape(len(send) * c, -1), no_eff.reshape(len(send) * c, -1))
                wrong = (bits_hat != bits_t).any(dim=-1).reshape(len(send), c).cpu().numpy()
                in_file = np.arange(c)[None, :] < used[send][:, None]
                errors[send] = (wrong & in_file).sum(axis=1)
        ok = ~unfit & (errors == 0)
        return Delivery(indices, ok, unfit, used, errors)

    def received_images(self, option: str, delivery: Delivery, channel: Channel | None = None,
                        no: torch.Tensor | None = None) -> np.ndarray:
        """What the receiver shows for a :class:`Delivery`: uint8 [B, H, W, 3]."""
        if option == CAPACITY:
            budgets = np.broadcast_to(capacity_bits(self.params.channel_uses, torch.as_tensor(no)),
                                      delivery.indices.shape)
        else:
            i = self.mcs_names.index(option)
            budgets = np.full(delivery.indices.shape, self.mcs_budget_bits(i, channel))
        out = np.broadcast_to(self._fallback, (len(delivery.indices), *self._fallback.shape)).copy()
        for row, (j, good) in enumerate(zip(delivery.indices.tolist(), delivery.ok.tolist(), strict=True)):
            if good:
                out[row] = self.codec.decode(self._cache[int(budgets[row])].data[j])
        return out

    def originals(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._images[np.asarray(indices.cpu())]).permute(0, 3, 1, 2)

    def reconstruct(self, indices: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        """What the receiver shows under the option (MCS or capacity) with the highest mean PSNR on
        these images at this noise (the envelope over just these images): uint8 [B, 3, H, W]."""
        idx = np.asarray(indices.cpu(), dtype=np.int64)
        no = torch.as_tensor(no, dtype=torch.float32)
        deliveries = {o: self.deliver(o, idx, no, channel) for o in self.options}
        best = max(self.options, key=lambda o: self._quality(o, deliveries[o], channel, no)[0].mean())
        return torch.from_numpy(self.received_images(best, deliveries[best], channel, no)).permute(0, 3, 1, 2)

    def _quality(self, option: str, delivery: Delivery, channel: Channel, no: torch.Tensor):
        """Per-image PSNR and SSIM of what the receiver shows (from the cache), and the file bits."""
        idx = delivery.indices
        if option == CAPACITY:
            budgets = np.broadcast_to(capacity_bits(self.params.channel_uses, no), idx.shape)
        else:
            budgets = np.full(idx.shape, self.mcs_budget_bits(self.mcs_names.index(option), channel))
        ps, ss, fb = np.empty(len(idx)), np.empty(len(idx)), np.zeros(len(idx), np.int64)
        for value in np.unique(budgets):
            sel = budgets == value
            entry = self._cache[int(value)]
            ps[sel], ss[sel], fb[sel] = entry.psnr[idx[sel]], entry.ssim[idx[sel]], entry.file_bits[idx[sel]]
        ps = np.where(delivery.ok, ps, self._fallback_psnr[idx])
        ss = np.where(delivery.ok, ss, self._fallback_ssim[idx])
        return ps, ss, fb

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        if self._images is None:
            raise RuntimeError("image_digital: prepare() (or set_images()) first")
        idx = self._eval.take(batch_size, len(self._images))
        counters: dict[str, float] = {"samples": batch_size}
        for o in self.options:
            d = self.deliver(o, idx, no, channel)
            ps, ss, fb = self._quality(o, d, channel, no)
            # the cache keeps per-image PSNR and SSIM, not the images: the MSE follows from the PSNR
            counters.update(quality_counters(ps, ss, mse_from_psnr(ps), suffix=f"_{o}"))
            counters.update({
                f"failed_{o}": int((~d.ok).sum()),
                f"unfit_{o}": int(d.unfit.sum()),
                f"file_bits_{o}": int(fb[~d.unfit].sum()),
            })
            if o != CAPACITY:
                counters[f"codewords_{o}"] = int(d.codewords.sum())
                counters[f"codeword_errors_{o}"] = int(d.codeword_errors.sum())
        return counters

    def summarize(self, row: dict) -> dict:
        """The envelope: the option with the highest mean PSNR at this point, and its columns (the
        quality means with their intervals and ``_std``; the intervals are those of the chosen
        option, not corrected for the choice)."""
        best = self._headline_options[int(np.argmax([row[f"psnr_db_{o}"] for o in self._headline_options]))]
        rate = f"image_failure_rate_{best}"
        quality = {f"{m}{part}": row[f"{m}_{best}{part}"]
                   for m in ("psnr_db", "ssim", "mse") for part in ("", "_ci_low", "_ci_high", "_std")}
        return {
            "best_mcs": best,
            **quality,
            "psnr_of_mean_mse_db": row[f"psnr_of_mean_mse_db_{best}"],
            "image_failure_rate": row[rate],
            "errors": row[f"failed_{best}"],
            "error_rate": row[rate],
            "ci_low": row[f"{rate}_ci_low"],
            "ci_high": row[f"{rate}_ci_high"],
        }

    def theory(self, channel: Channel, esno_db: float) -> dict[str, float]:
        """``capacity_bits``: the codec + capacity budget at this Es/N0 (with ``capacity``)."""
        if not self.params.capacity:
            return {}
        no = esno_db_to_no(torch.tensor(esno_db, dtype=torch.float32))  # as the engine computes it
        return {"capacity_bits": int(capacity_bits(self.params.channel_uses, no))}
