"""Scheme: DeepJSCC (Bourtsoulatze, Kurka, Gunduz 2019), pixels straight to complex channel symbols.

One model per (bandwidth ratio, training SNR, training channel): :class:`~linksim.models.DeepJSCC`
trained on MSE through the training channel at a fixed Es/N0 (``train.snr_db``), then evaluated at
every SNR point of the scenario, so a curve shows what happens away from the training SNR (the paper
reports no cliff: PSNR degrades smoothly below it and saturates above it).

**Channel uses.** ``bandwidth_ratio`` rho = k / n, k complex channel uses per image of n source
values (CIFAR-10: n = 3072; rho = 1/12 -> k = 256, rho = 1/6 -> k = 512). The encoder's 2k reals,
normalised per image to unit average power, are packed in pairs into k unit-energy complex symbols
(:func:`~linksim.link.packing.real_to_complex`): Es/N0 is then the paper's SNR (average power P = 1
per complex symbol over noise variance sigma^2 per complex symbol). A learned curve and a digital
baseline with the same rho spend the same k channel uses per image.

**Receiver.** The decoder sees the channel output only, no CSI: use ``awgn``, or ``rayleigh-nocsi``
for the paper's slow Rayleigh fading (one fade per image, no pilots, no equalisation; train through
it with ``train.channel: rayleigh-nocsi``). On ``rayleigh`` (perfect-CSI zero forcing) the decoder
gets equalised symbols with noise enhanced by 1 / |h|^2.

**Encode once, evaluate many.** The encoder does not depend on the SNR or the channel: its symbols
are computed once per evaluation image in :meth:`~DeepJSCCScheme.prepare`; a point runs only the
channel and the decoder.

**Metrics.** The reconstruction is rounded to 8 bits (what a receiver displays) and compared with
the original 8-bit image: per-image PSNR (max 255) averaged over images (the papers' convention,
primary, with its interval), SSIM, MSE, and the PSNR of the mean MSE (the other convention; by
Jensen's inequality never above the first, about 0.4-0.5 dB below it here: compare like with like).
"""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt, model_validator

from linksim.accel import compiled
from linksim.channels.base import Channel
from linksim.layers import inference_chunk, preferred_memory_format
from linksim.link.packing import (
    ImageBandwidthParams,
    complex_to_real,
    real_to_complex,
    real_uses_budget,
    reals_through,
)
from linksim.metrics import image_quality_counters, image_quality_rates, psnr_of_mse
from linksim.models import DeepJSCC, count_parameters
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Scheme, SchemeContext
from linksim.snr import LinkBudget
from linksim.training import TrainParams, fit_or_load, training_no

__all__ = ["DeepJSCCParams", "DeepJSCCScheme", "DeepJSCCTrainParams"]


class DeepJSCCTrainParams(TrainParams):
    """:class:`~linksim.training.TrainParams` with DeepJSCC's defaults: Adam, lr 1e-3, batch 64,
    training Es/N0 fixed at 10 dB (set it per model)."""

    epochs: PositiveInt = 100
    batch_size: PositiveInt = 64
    lr: float = 1e-3
    snr_db: float | tuple[float, float] | None = 10.0


class DeepJSCCParams(ImageBandwidthParams):
    """One DeepJSCC model (see the module docstring).

    :param data: the image set (CIFAR-10 by default) and the evaluation sample.
    :param bandwidth_ratio: rho, complex channel uses per source value (``"1/12"``, ``"1/6"``, ...).
    :param width: hidden conv channels (the paper's 32; the first layer has half).
    :param train: the training recipe; ``train.snr_db`` is the model's training SNR.
    """

    width: PositiveInt = 32
    train: DeepJSCCTrainParams = DeepJSCCTrainParams()

    @model_validator(mode="after")
    def _fits(self):
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"data.name: DeepJSCC needs images whose sides are multiples of 4 (found {h} x {w})")
        reals = 2 * self.channel_uses
        if reals % (h * w // 16):
            raise ValueError(f"bandwidth_ratio {self.bandwidth_ratio:g} gives {self.channel_uses} complex channel "
                             f"uses per image, not a whole number of {h // 4} x {w // 4} latent channels "
                             f"(2k must be a multiple of {h * w // 16})")
        return self

    @property
    def latent_channels(self) -> int:
        _, h, w = self.image_shape
        return 2 * self.channel_uses // (h * w // 16)


@register_scheme("deepjscc", DeepJSCCParams)
class DeepJSCCScheme(Scheme):
    """DeepJSCC over the scenario's channel; an item is one test image.

    Counters and rates: :func:`~linksim.metrics.image_quality_counters` of the 8-bit reconstructions
    (``psnr_db`` primary, ``ssim``, ``mse``, ``psnr_of_mean_mse_db``).
    Channel uses per image: ``k = rho * C * H * W`` complex.
    """

    rates = image_quality_rates()
    primary = "psnr_db"

    def __init__(self, params: DeepJSCCParams):
        super().__init__()
        self.params = p = params
        self.model = DeepJSCC(p.latent_channels, in_channels=p.image_shape[0], width=p.width)
        c, h, w = p.image_shape
        self._latent = (p.latent_channels, h // 4, w // 4)
        self.facts = {"parameters": count_parameters(self.model), "channel_uses_per_image": p.channel_uses,
                      "latent_channels": p.latent_channels}
        self._eval = EvalCursor()
        self._decode = self.model.decode

    # ------------------------------------------------------------------ channel glue
    def budget(self, channel: Channel) -> LinkBudget:
        return real_uses_budget(channel, 1, math.prod(self._latent))

    # ------------------------------------------------------------------ training
    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        self.model.to(device, memory_format=preferred_memory_format(device))
        channel = context.train_channel_for(p.train.channel)

        def step(images, _labels, rng):
            no = training_no(p.train.snr_db, len(images), rng, images.device)
            out = self.model(images, None if no is None else lambda z: reals_through(z, channel, no))
            mse = (out - images).square().flatten(1).mean(dim=1)
            return mse.mean(), {"psnr_db": psnr_of_mse(mse.detach()), "mse": mse.detach()}

        def data():
            train = p.data.training_set(context)
            return train.images.to(device), train.labels.to(device)

        weights = fit_or_load(context, self.model, name=self.name or "deepjscc", params=p.train, step=step, data=data,
                              description={"scheme": "deepjscc/1", "dataset": p.data.name, "dataset_path": p.data.path,
                                           **({"image_size": p.data.image_size} if p.data.image_size else {}),
                                           "latent_channels": p.latent_channels, "width": p.width})
        self.model.eval()
        if context.compile:
            self._decode = compiled(self.model.decode, dynamic=False)
        test = p.data.evaluation_set(context)
        self._images = test.images.to(device)
        self._symbols = self._encode_all(self._images)
        self.facts.update({**weights.facts(), "dataset_source": test.source, "test_images": len(test),
                           "final_train_loss": weights.history[-1]["loss"] if weights.history else None})

    @torch.no_grad()
    def _encode_all(self, images: torch.Tensor) -> torch.Tensor:
        """Channel symbols ``[N, k]`` complex64 of every evaluation image, computed once."""
        step = inference_chunk(images.device) or 1000
        z = torch.cat([self.model.encode(images[i : i + step].float() / 255.0) for i in range(0, len(images), step)])
        return real_to_complex(z.reshape(len(z), 1, -1))

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def originals(self, idx: torch.Tensor) -> torch.Tensor:
        return self._images[idx.to(self._images.device)]

    @torch.no_grad()
    def reconstruct(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        idx = idx.to(self._symbols.device)
        y, _ = channel(self._symbols[idx], no)
        z = complex_to_real(y, (1, math.prod(self._latent))).reshape(len(idx), *self._latent)
        return (self._decode(z) * 255.0).round().clamp(0, 255).to(torch.uint8)

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._images))).to(self._images.device)
        shown = self.reconstruct(idx, no, channel)
        return {"samples": batch_size, **image_quality_counters(self._images[idx], shown, layout="NCHW")}
