"""Scheme: AESC-I (seed004), a learned image codec that sends its own decoder with the codes.

**Training** (noise-free, at the transmitter): :class:`~linksim.models.aesci.AESCI` of the dataset
with ``latent`` = Z, loss ``gamma * L_SE + (1 - gamma) * L_pix``: ``L_SE`` the MSE between the
classifier's penultimate features of the original and of the reconstruction (the features of the
training images are computed once: the classifier is frozen), ``L_pix`` BCE (MNIST) or MSE
(CIFAR-10). Adam; the recipe (``train``: epochs, validation split, early stopping on ``val_loss``)
is the scenario's; the log (``loss``, ``pixel``, ``semantic``, their ``val_`` values) is
``<run>/training/<name>.csv``.

**What crosses the channel.** The code, clipped to ``[0, c_max]`` (``c_max``: the 99.99th
percentile of the training codes) and quantised to ``code_bits`` (8) uniform levels; the decoder's
parameters quantised per tensor to ``parameter_bits`` (8 for MNIST, 16 for CIFAR-10)
(:class:`~linksim.link.model_bits.ParameterCodec`). ``c_max``, the per-tensor ranges and the
architecture are format information, error-free and not counted (seed004 section 9.5-9.6).

**Sessions.** The evaluation runs in sessions of ``session_images`` = N images: one transmission of
the decoder (its own segment: one fade on slow fading), then the N images' codes (one segment and
fade each). The receiver rebuilds the decoder from the bits it received and decodes every code of
the session with it, so a corrupted decoder corrupts all N images. A session is cut at the end of a
work unit (a point). ``decoder_over_channel: false`` gives the error-free-decoder ablation.

**Channel uses per image** = the code's codewords x n / bits per symbol + the decoder's, divided by
N (charged once per session), so the SNR axes normalised by channel uses count the decoder; the
compression ratio Cr = source values / code values (seed004 eq. 13, 16) does not.

**Counters** besides the shared ones (:mod:`linksim.schemes.aesci.base`): ``sessions``,
``corrupted_sessions`` (a decoder with at least one wrong bit), ``decoder_bits``,
``decoder_bit_errors``, ``decoder_codewords``, ``decoder_codeword_errors``, ``corrupted_images``
(images decoded by a corrupted decoder); rates ``decoder_ber``, ``decoder_bler``,
``session_failure_rate``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt, model_validator

from linksim.channels.base import Channel
from linksim.layers import inference_chunk
from linksim.link.model_bits import ParameterCodec
from linksim.models import count_parameters
from linksim.models.aesci import AESCI
from linksim.quantizers import UniformQuantizer
from linksim.registry import register_scheme
from linksim.schemes.aesci.base import (
    SemanticImageParams,
    SemanticImageScheme,
    segment_symbols,
    send_segments,
)
from linksim.schemes.base import Rate, SchemeContext
from linksim.training import EarlyStopping, TrainParams, fit_or_load

__all__ = ["AesciParams", "AesciScheme", "AesciTrainParams"]

#: images whose codes fit the code quantiser's range
_CLIP_IMAGES = 10000
_CLIP_QUANTILE = 0.9999


class AesciTrainParams(TrainParams):
    """:class:`~linksim.training.TrainParams` with seed004's recipe: Adam, lr 1e-3, 10 % validation,
    early stopping on ``val_loss`` with patience 10, at most 100 epochs (batch: 256 MNIST, 128 CIFAR-10
    in the scenarios)."""

    epochs: PositiveInt = 100
    batch_size: PositiveInt = 256
    validation: float = 0.1
    early_stopping: EarlyStopping | None = EarlyStopping(patience=10)


class AesciParams(SemanticImageParams):
    """One AESC-I codec (see the module docstring).

    :param latent: Z (MNIST: code values; CIFAR-10: code channels of the 6 x 6 map).
    :param gamma: weight of the semantic loss (0.5 MNIST, 0.1 CIFAR-10 in the paper).
    :param code_bits: bits per code value.
    :param parameter_bits: bits per decoder parameter (``None``: 8 for MNIST, 16 for CIFAR-10).
    :param session_images: N, images per decoder transmission.
    :param decoder_over_channel: send the decoder over the channel (``false``: error-free decoder).
    :param train: the training recipe.
    """

    latent: PositiveInt
    gamma: float = Field(0.5, ge=0.0, le=1.0)
    code_bits: int = Field(8, ge=1, le=16)
    parameter_bits: int | None = Field(None, ge=1, le=24)
    session_images: PositiveInt = 500
    decoder_over_channel: bool = True
    train: AesciTrainParams = AesciTrainParams()

    @model_validator(mode="after")
    def _bits(self):
        if self.parameter_bits is None:
            self.parameter_bits = 8 if self.data.name == "mnist" else 16
        return self


@register_scheme("aesci", AesciParams)
class AesciScheme(SemanticImageScheme):
    """AESC-I with its decoder sent once per session of N images (see :mod:`linksim.schemes.aesci.learned`)."""

    def __init__(self, params: AesciParams):
        super().__init__(params)
        p = params
        self.model = AESCI(p.data.name, p.latent)
        self.code_values = int(np.prod(self.model.code_shape))
        self.code_stream_bits = self.code_values * p.code_bits
        self.decoder_stream_bits = count_parameters(self.model.decoder) * p.parameter_bits
        self.rates.update({
            "decoder_ber": Rate("decoder_bit_errors", "decoder_bits"),
            "decoder_bler": Rate("decoder_codeword_errors", "decoder_codewords"),
            "session_failure_rate": Rate("corrupted_sessions", "sessions"),
        })
        self.facts.update({
            "encoder_parameters": count_parameters(self.model.encoder),
            "decoder_parameters": count_parameters(self.model.decoder),
            "code_values_per_image": self.code_values,
            "compression_ratio": self.compression_ratio(self.code_values),
            "code_bits_per_image": self.code_stream_bits,
            "decoder_bits": self.decoder_stream_bits,
            "session_images": p.session_images,
        })
        self._left = 0  # images left in the current session

    # ------------------------------------------------------------------ accounting
    def channel_uses(self, channel: Channel) -> float:
        p = self.params
        code = channel.channel_uses(segment_symbols(self.code_stream_bits, p.link))
        decoder = channel.channel_uses(segment_symbols(self.decoder_stream_bits, p.link))
        return code + (decoder / p.session_images if p.decoder_over_channel else 0.0)

    # ------------------------------------------------------------------ training
    def prepare(self, context: SchemeContext) -> None:
        super().prepare(context)
        p = self.params
        device = torch.device(context.device)
        self.model.to(device)
        pixel_loss = F.binary_cross_entropy if p.data.name == "mnist" else F.mse_loss

        def step(images, target_features, _rng):
            out = self.model(images)
            pixel = pixel_loss(out, images, reduction="none").flatten(1).mean(dim=1)
            semantic = (self.classifier.encode(out) - target_features).square().mean(dim=1)
            loss = p.gamma * semantic + (1.0 - p.gamma) * pixel
            return loss.mean(), {"pixel": pixel.detach(), "semantic": semantic.detach()}

        def data():
            train = p.data.training_set(context).images.to(device)
            return train, self.features(train)

        weights = fit_or_load(context, self.model, name=self.name or "aesci", params=p.train, step=step, data=data,
                              description={"scheme": "aesci/1", "dataset": p.data.name, "dataset_path": p.data.path,
                                           "latent": p.latent, "gamma": p.gamma,
                                           "classifier": self.facts["classifier_weights"]})
        self.model.eval()
        self._fit_channel_format(p.data.training_set(context).images.to(device))
        self.facts.update({**weights.facts(),
                           "final_val_loss": weights.history[-1].get("val_loss") if weights.history else None})

    @torch.no_grad()
    def _fit_channel_format(self, train_images: torch.Tensor) -> None:
        """Code quantiser (range from the training codes), decoder bits, the quantised decoder, and
        the codes and error-free reconstructions of the evaluation images."""
        p = self.params
        step = inference_chunk(train_images.device) or 1000
        sample = train_images[:_CLIP_IMAGES]
        codes = torch.cat([self.model.encode(sample[i : i + step].float() / 255.0) for i in range(0, len(sample), step)])
        c_max = float(torch.quantile(codes.flatten()[:16_000_000].float(), _CLIP_QUANTILE))
        self.code_quantizer = UniformQuantizer(p.code_bits, 0.0, c_max if c_max > 0 else 1.0)
        self.decoder_codec = ParameterCodec(self.model.decoder, p.parameter_bits)
        self.decoder_bits = self.decoder_codec.to_bits()
        self.clean_decoder = self.decoder_codec.rebuild(self.decoder_bits).eval()
        q = self.code_quantizer
        levels = torch.cat([q.quantize(self.model.encode(self._images[i : i + step].float() / 255.0))
                            for i in range(0, len(self._images), step)])
        self.code_levels = levels  # [N, *code_shape] int64
        self.clean_shown = self._decode(self.clean_decoder, levels)
        self.facts.update({"code_clip": q.high})

    def _decode(self, decoder, levels: torch.Tensor) -> torch.Tensor:
        """Code levels [B, *code_shape] -> uint8 images [B, C, H, W] through ``decoder``."""
        step = inference_chunk(levels.device) or 1000
        out = [decoder(self.code_quantizer.dequantize(levels[i : i + step]))
               for i in range(0, len(levels), step)]
        return (torch.cat(out) * 255.0).round().clamp(0, 255).to(torch.uint8)

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        super().reset()
        self._left = 0

    def _start_session(self, no: torch.Tensor, channel: Channel, counters: dict) -> None:
        """Send the decoder at noise ``no`` ([]) and keep what the receiver rebuilt from it."""
        p = self.params
        self._left = p.session_images
        counters["sessions"] += 1
        if not p.decoder_over_channel:
            self._decoder, self._corrupt = self.clean_decoder, False
            return
        (received,), errors = send_segments(self.link, [self.decoder_bits], channel, no)
        bit_errors = int((received != self.decoder_bits).sum())
        self._corrupt = bit_errors > 0
        self._decoder = self.decoder_codec.rebuild(received).eval() if self._corrupt else self.clean_decoder
        counters["corrupted_sessions"] += int(self._corrupt)
        counters["decoder_bits"] += self.decoder_codec.num_bits
        counters["decoder_bit_errors"] += bit_errors
        counters["decoder_codewords"] += -(-self.decoder_codec.num_bits // p.link.payload_bits)
        counters["decoder_codeword_errors"] += int(errors[0])

    @torch.no_grad()
    def transmit(self, idx: np.ndarray, no: torch.Tensor, channel: Channel) -> tuple[torch.Tensor, dict]:
        q = self.code_quantizer
        no = torch.as_tensor(no, dtype=torch.float32).expand(len(idx))
        keys = ("sessions", "corrupted_sessions", "decoder_bits", "decoder_bit_errors", "decoder_codewords",
                "decoder_codeword_errors", "corrupted_images", "bits", "bit_errors", "codewords", "codeword_errors")
        counters = dict.fromkeys(keys, 0)
        shown = []
        pos = 0
        while pos < len(idx):
            if self._left == 0:
                self._start_session(no[pos], channel, counters)
            take = min(self._left, len(idx) - pos)
            rows = torch.from_numpy(idx[pos : pos + take]).to(self.code_levels.device)
            levels = self.code_levels[rows]
            sent = q.to_bits(levels).reshape(take, -1)
            received, errors = send_segments(self.link, list(sent), channel, no[pos : pos + take])
            received = torch.stack(received)
            wrong = (received != sent).sum(dim=1)
            images = self.clean_shown[rows].clone()
            redo = (wrong > 0) | self._corrupt
            if bool(redo.any()):
                rx_levels = q.from_bits(received[redo].reshape(int(redo.sum()), *levels.shape[1:], q.bits))
                images[redo] = self._decode(self._decoder, rx_levels)
            shown.append(images)
            counters["corrupted_images"] += take if self._corrupt else 0
            counters["bits"] += sent.numel()
            counters["bit_errors"] += int(wrong.sum())
            counters["codewords"] += take * -(-self.code_stream_bits // self.params.link.payload_bits)
            counters["codeword_errors"] += int(errors.sum())
            self._left -= take
            pos += take
        return torch.cat(shown), counters
