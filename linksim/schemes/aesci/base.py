"""What the seed004 image schemes share: data, the 5G LDPC link, the semantic classifier and the metrics.

Three schemes send images as bits over the same :class:`~linksim.link.digital.DigitalLink`
(5G LDPC + BPSK / QPSK, APP demapper, BP): AESC-I (:mod:`linksim.schemes.aesci.learned`), JPEG with
an error-free header (:mod:`linksim.schemes.aesci.jpeg`) and direct 8-bit pixels
(:mod:`linksim.schemes.aesci.direct`). Every bit stream (a decoder, an image's code, a JPEG
payload, an image's pixels) is a *segment*: it fills whole codewords (the last one zero-padded,
:func:`~linksim.link.model_bits.splice`) and crosses the channel as one row, so slow Rayleigh fading
(``rayleigh``, ``coherence_symbols: null``) gives each segment its own fade, with perfect CSI.

**Classifier.** The semantic loss and the recognition rate use the SINFONY central ResNet of the
dataset (:class:`~linksim.schemes.sinfony.reference.SinfonyReference`, variant ``central``): the
same cache entry as the ``sinfony`` scheme with the same ``data`` (name, path), ``classifier_train``
recipe and scenario seed, so the weights are shared, never trained twice. Its penultimate layer is
the globally pooled ResNet features.

**Metrics** (per image, then averaged; all counters additive): PSNR / SSIM / MSE of the 8-bit
image shown (:func:`~linksim.metrics.image_quality_counters`); ``accuracy`` of the classifier on
the shown images; ``rr`` = accuracy on the shown images / accuracy on the originals (the paper's
recognition-rate ratio, a ratio of accuracies; can exceed 1); ``agreement`` (the prediction on the
shown image equals the one on the original); ``ber`` / ``bler`` of the image segments' bits and
codewords (padding excluded from the BER, included in the BLER). LPIPS is computed only with
``lpips: true`` and the ``lpips`` package with its weights on the machine (else a one-line error).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, field_validator

from linksim.channels.base import Channel
from linksim.data import DataParams
from linksim.link.digital import DigitalLink, DigitalLinkParams
from linksim.link.model_bits import splice, unsplice
from linksim.metrics import image_quality_counters, image_quality_rates
from linksim.schemes.base import EvalCursor, Mean, Rate, Scheme, SchemeContext
from linksim.schemes.sinfony.reference import (
    SinfonyParams,
    SinfonyReference,
    SinfonyTrainParams,
)
from linksim.snr import LinkBudget

__all__ = ["SemanticImageParams", "SemanticImageScheme", "segment_symbols", "send_segments"]

#: seed004 section 9.7: rate-1/2 5G LDPC, k = 512, n = 1024, BP 20 iterations, QPSK (Gray)
DEFAULT_LINK = DigitalLinkParams(k=512, n=1024, bits_per_symbol=2)


class SemanticImageParams(BaseModel):
    """What every seed004 scheme has.

    :param data: ``mnist`` or ``cifar10`` and the evaluation sample (``data.eval_subset``).
    :param link: the 5G LDPC link (a coded :class:`~linksim.link.digital.DigitalLinkParams`).
    :param classifier_train: the recipe of the SINFONY central classifier (a cache key: use the
        ``sinfony`` scenario's values to share its weights).
    :param lpips: also compute LPIPS (AlexNet; MNIST replicated to 3 channels and resized to 32 x 32);
        needs the ``lpips`` package and its weights offline.
    """

    model_config = ConfigDict(extra="forbid")
    data: DataParams = DataParams(name="mnist")
    link: DigitalLinkParams = DEFAULT_LINK
    classifier_train: SinfonyTrainParams = SinfonyTrainParams()
    lpips: bool = False

    # field validators, so that an error names the key at fault
    @field_validator("data")
    @classmethod
    def _dataset(cls, value: DataParams) -> DataParams:
        if value.name not in ("mnist", "cifar10"):
            raise ValueError(f"data.name: seed004 is set up for mnist and cifar10 (found {value.name!r})")
        return value

    @field_validator("link")
    @classmethod
    def _coded(cls, value: DigitalLinkParams) -> DigitalLinkParams:
        if value.n is None:
            raise ValueError("link.n: the seed004 schemes need an LDPC code (set n)")
        return value

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.data.image_shape


def segment_symbols(bits: int, link: DigitalLinkParams) -> int:
    """Channel symbols a segment of ``bits`` bits occupies: whole codewords of ``link``."""
    return -(-bits // link.payload_bits) * link.num_symbols


def send_segments(link: DigitalLink, segments: Sequence[torch.Tensor], channel: Channel,
                  no: torch.Tensor) -> tuple[list[torch.Tensor], np.ndarray]:
    """Send bit segments over ``link`` and ``channel``, each in whole codewords as one channel row.

    :input segments: [L_i] float32 bits each (lengths may differ).
    :input no: [] or [len(segments)], float32. Noise variance per complex symbol of each segment.
    :output received: [L_i] float32 hard decisions per segment.
    :output codeword_errors: [len(segments)] int64, codewords of each segment with a residual error.
    """
    k = link.params.payload_bits
    lengths = [len(s) for s in segments]
    blocks = splice(segments, k).reshape(-1, k)
    counts = np.array([-(-n // k) for n in lengths])
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    x = link.transmit(blocks)  # [codewords, symbols per codeword]
    no = torch.as_tensor(no, dtype=torch.float32, device=x.device)
    y, no_eff = torch.empty_like(x), torch.empty(x.shape, dtype=torch.float32, device=x.device)
    for c in np.unique(counts):  # segments of equal size share one channel call, one row (fade) each
        sel = np.flatnonzero(counts == c)
        rows = torch.from_numpy((first[sel][:, None] + np.arange(c)[None, :]).reshape(-1)).to(x.device)
        no_rows = no[torch.from_numpy(sel).to(x.device)] if no.dim() else no
        y_rows, no_rows = channel(x[rows].reshape(len(sel), -1), no_rows)
        y[rows] = y_rows.reshape(-1, x.shape[1])
        no_eff[rows] = no_rows.reshape(-1, x.shape[1]).to(torch.float32)
    bits_hat, _ = link.receive(y, no_eff)
    wrong = (bits_hat != blocks).any(dim=-1).cpu().numpy()
    errors = np.add.reduceat(wrong.astype(np.int64), first) if len(first) else np.zeros(0, np.int64)
    return unsplice(bits_hat.reshape(-1), lengths, k), errors


def _lpips_model(device: torch.device):
    try:
        import lpips
        model = lpips.LPIPS(net="alex", verbose=False)
    except Exception as exc:  # not installed, or its backbone weights cannot be loaded offline
        raise ValueError(f"lpips: LPIPS needs the lpips package and its AlexNet weights on this machine "
                         f"({type(exc).__name__}: {exc}); set lpips: false") from exc
    return model.to(device).eval()


class SemanticImageScheme(Scheme):
    """Base of the seed004 schemes; an item is one test image.

    A subclass sets ``self.link`` (a :class:`DigitalLink` of ``params.link``) and implements
    :meth:`transmit` (what the receiver shows for a batch, and its link counters) and
    :meth:`channel_uses` (complex channel uses per image).
    """

    primary = "psnr_db"

    def __init__(self, params: SemanticImageParams):
        super().__init__()
        self.params = p = params
        self.link = DigitalLink(p.link)
        self.rates = {
            **image_quality_rates(),
            "accuracy": Rate("correct", "samples"),
            "rr": Rate("correct", "correct_original", interval=False),
            "agreement": Rate("agree", "samples"),
            "ber": Rate("bit_errors", "bits"),
            "bler": Rate("codeword_errors", "codewords"),
        }
        if p.lpips:
            self.rates["lpips"] = Mean("lpips_sum", "lpips_sq_sum", "samples")
        classifier = SinfonyParams(variant="central", data=DataParams(name=p.data.name, path=p.data.path),
                                   train=p.classifier_train)
        self.classifier = SinfonyReference(classifier)
        self._eval = EvalCursor()
        self._lpips = None

    # ------------------------------------------------------------------ set-up
    def prepare(self, context: SchemeContext) -> None:
        """Load or train the classifier, load the evaluation images and the classifier's predictions on them."""
        device = torch.device(context.device)
        weights = self.classifier.prepare(context, "classifier")
        for q in self.classifier.model.parameters():
            q.requires_grad_(False)
        if context.compile:
            self.link.compile_decoder()
        test = self.params.data.evaluation_set(context)
        self._images = test.images.to(device)
        self._labels = test.labels.to(device)
        self._pred_original = self.predict(self._images)
        if self.params.lpips:
            self._lpips = _lpips_model(device)
        accuracy = float((self._pred_original == self._labels).float().mean())
        self.facts.update({"classifier_weights": weights.key, "classifier_train_precision": weights.precision,
                           "classifier_accuracy": accuracy,
                           "dataset_source": test.source, "test_images": len(test),
                           "lpips": "computed" if self.params.lpips else "not computed (lpips: false)"})

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """Penultimate classifier features ``[N, N_Feat]`` of uint8 images ``[N, C, H, W]``."""
        return torch.cat([self.classifier.encode(images[i : i + batch].float() / 255.0)
                          for i in range(0, len(images), batch)])

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Classifier decisions ``[N]`` int64 on uint8 images ``[N, C, H, W]``."""
        return self.classifier.decode(self.features(images)).argmax(-1)

    # ------------------------------------------------------------------ accounting
    def channel_uses(self, channel: Channel) -> float:
        """Complex channel uses per image on ``channel``."""
        raise NotImplementedError

    def budget(self, channel: Channel) -> LinkBudget:
        return LinkBudget(self.channel_uses(channel))

    def compression_ratio(self, values_per_image: float) -> float:
        """Source values per image / ``values_per_image`` (seed004 eq. 13, 16: values, not bits)."""
        return math.prod(self.params.image_shape) / values_per_image

    # ------------------------------------------------------------------ evaluation
    def transmit(self, idx: np.ndarray, no: torch.Tensor, channel: Channel) -> tuple[torch.Tensor, dict]:
        """Send the evaluation images ``idx`` at noise ``no`` ([] or [B]): what the receiver shows
        (uint8 [B, C, H, W]) and the counters ``bits``, ``bit_errors``, ``codewords``,
        ``codeword_errors`` (and the scheme's own)."""
        raise NotImplementedError

    def reset(self) -> None:
        self._eval.rewind()

    def originals(self, indices: torch.Tensor) -> torch.Tensor:
        return self._images[indices.to(self._images.device)]

    @torch.no_grad()
    def reconstruct(self, indices: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        return self.transmit(np.asarray(indices.cpu(), dtype=np.int64), no, channel)[0]

    @torch.no_grad()
    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = self._eval.take(batch_size, len(self._images))
        shown, counters = self.transmit(idx, no, channel)
        t = torch.from_numpy(idx).to(self._images.device)
        original = self._images[t]
        pred = self.predict(shown)
        labels, before = self._labels[t], self._pred_original[t]
        counters.update({
            "samples": batch_size,
            **image_quality_counters(original, shown, layout="NCHW"),
            "correct": int((pred == labels).sum()),
            "correct_original": int((before == labels).sum()),
            "agree": int((pred == before).sum()),
        })
        if self._lpips is not None:
            d = self._lpips_distance(original, shown)
            counters.update({"lpips_sum": float(d.sum()), "lpips_sq_sum": float(d.square().sum())})
        return counters

    def _lpips_distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS ``[B]`` of uint8 images, scaled to [-1, 1]; gray -> 3 channels, at least 32 x 32."""
        def prep(t):
            t = t.float() / 127.5 - 1.0
            t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
            return torch.nn.functional.interpolate(t, size=32, mode="bilinear") if t.shape[-1] < 32 else t
        return self._lpips(prep(x), prep(y)).flatten()
