"""Scheme: VSCC, the VAE and the AE of seed000 (Feng et al., "Variational source-channel coding for
semantic communication"), analog real values over the channel, decoded with resampled latents.

One model per (``method``, training SNR, channel-matching constant ``d``): the same ResNet + attention
autoencoder (:class:`~linksim.models.VSCCAutoencoder`) trained three ways,

- ``vscc``: Gaussian reconstruction + the channel-matched KL against ``N(0, sigma_2^2 + d)`` (Eq. 10),
- ``vae``: Gaussian reconstruction + the KL against ``N(0, 1)`` (Eq. 11),
- ``ae``: mean squared error (Eq. 12), no variance, no resampling,

then evaluated at every test SNR in one of three test modes (``test_mode``; not part of the weights,
so a TV and an FV curve of one model share its training):

- ``fv`` (fixed variance): only mu crosses the channel; the receiver resamples around it with the
  knowledge-base variance sigma_KB^2 stored with the weights (the encoder variance averaged over the
  training images, per latent element);
- ``tv`` (transmission variance): mu and the variance cross (twice the channel uses, counted);
- ``ae``: the received values are decoded as they are.

**Channel and SNR.** Real values are packed in pairs into complex symbols
(:func:`~linksim.link.packing.real_to_complex`), so the noise variance per real value is the noise
variance ``no`` per complex symbol, sigma_2^2 = 10^(-SNR/10) at the scenario's Es/N0 = SNR per real
value (nominal transmit power 1 per value; seed000 §2, §9-A). The paper normalises nothing
(``power: none``): the measured transmit power per real value is in the manifest
(``tx_power_per_value``, the effective SNR is the nominal one plus ``10 log10`` of it);
``power: image`` normalises every image to unit average power per value (the "fair" variant).
Channel uses per image: k h w reals, i.e. k h w / 2 complex (TV: twice that); the paper's bandwidth
ratio k/n counts reals (``bandwidth_ratio_real`` in the manifest).

**Draws.** A test image is decoded ``draws`` times, each with fresh channel noise and a fresh
resample (Algorithm 2). Columns: ``psnr_db`` / ``ssim`` (averaged over draws and images, with
intervals over images); ``*_lo`` / ``*_hi``: Algorithm 2's band, the minimum / maximum over draws of
the mean over a group of ``draw_group`` consecutive test images (64 in the paper), averaged over the
groups weighted by their images (the intervals of the band columns treat the images as independent,
which a group's images are not: read the band, not its interval); ``*_image_lo`` / ``*_image_hi``: per image minimum / maximum over draws, averaged over images
(wider: it is not smoothed by the group mean).

**Metrics.** Reconstructions de-normalised to 8 bits (``(x + 1) 127.5``, rounded, clamped) against
the original 8-bit images: PSNR (peak 255) and SSIM (Wang et al., 11 x 11 Gaussian window, per RGB
channel), as :func:`~linksim.metrics.image_quality_counters`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from linksim.channels.base import Channel
from linksim.data import DataParams
from linksim.estimators import gaussian_reparameterize
from linksim.layers import PowerNormalization, inference_chunk, preferred_memory_format
from linksim.link.packing import real_uses_budget, reals_through
from linksim.losses import gaussian_nll, vae_kl, vscc_kl
from linksim.metrics import image_quality_rates, psnr, psnr_of_mse, quality_counters, ssim
from linksim.models import VSCCAutoencoder, count_parameters
from linksim.models.vscc import TestMode, TrainMode, TVVariance
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Mean, Scheme, SchemeContext
from linksim.snr import LinkBudget
from linksim.training import TrainParams, fit_or_load, training_no

__all__ = ["VSCCParams", "VSCCScheme", "VSCCTrainParams"]

Method = Literal["vscc", "vae", "ae"]
_BANDS = ("lo", "hi", "image_lo", "image_hi")


class VSCCTrainParams(TrainParams):
    """:class:`~linksim.training.TrainParams` with seed000's recipe: Adam, lr 1e-4 constant, batch 64,
    200 epochs, a fixed training SNR (5 dB by default; the paper trains at -5, 5 and 15 dB)."""

    epochs: PositiveInt = 200
    batch_size: PositiveInt = 64
    lr: float = 1e-4
    snr_db: float | tuple[float, float] | None = 5.0


class VSCCParams(BaseModel):
    """One VSCC / VAE / AE model and how it is tested (see the module docstring).

    :param data: the image set and the evaluation sample (the paper: Mini-ImageNet at 256 x 256).
    :param method: ``vscc``, ``vae`` or ``ae`` (the training loss).
    :param matching: VSCC's channel-matching constant d > 0 (ignored, and refused, for the others).
    :param test_mode: ``fv``, ``tv`` (VSCC, VAE) or ``ae`` (the AE; default: ``fv`` for the
        variational models, ``ae`` for the AE).
    :param draws: decodes per test image (the paper: 100; 1 for the AE).
    :param draw_group: images per group of Algorithm 2's band (the paper's test batch, 64).
    :param tv_variance: what the TV mode sends as the variance and how the receiver reads it
        (:meth:`~linksim.models.VSCCAutoencoder.receive`; ``log``: log sigma^2).
    :param train_mode: ``t1`` (only mu crosses the channel, then ``+ sigma_1 eps``; the default) or ``t2``
        (mu and log sigma^2 both cross it, then a resample from the noisy moments).
    :param power: ``none`` (the paper) or ``image`` (unit average power per value, per image).
    :param kl_weight: weight of the KL term against the Gaussian reconstruction term (1: seed000 §4).
    :param rec_weight: lambda of the Gaussian reconstruction term ``lambda * SSE`` on images in [-1, 1].
    :param latent_channels: k (16 in the paper).
    :param base_width, stage_widths, attention, num_groups: the architecture
        (:class:`~linksim.models.VSCCAutoencoder`; the paper: 32, ``[32, 64, 128, 192]``, on, 32).
    :param train: the training recipe; ``train.snr_db`` is the model's training SNR.
    """

    model_config = ConfigDict(extra="forbid")
    data: DataParams = DataParams(name="cifar10")
    method: Method = "vscc"
    matching: PositiveFloat | None = None
    test_mode: TestMode | None = None
    draws: PositiveInt = 100
    draw_group: PositiveInt = 64
    tv_variance: TVVariance = "log"
    train_mode: TrainMode = "t1"
    power: Literal["none", "image"] = "none"
    kl_weight: float = Field(1.0, ge=0.0)
    rec_weight: PositiveFloat = 1.0
    latent_channels: PositiveInt = 16
    base_width: PositiveInt = 32
    stage_widths: list[PositiveInt] = Field([32, 64, 128, 192], min_length=1)
    attention: bool = True
    num_groups: PositiveInt = 32
    train: VSCCTrainParams = VSCCTrainParams()

    @model_validator(mode="after")
    def _consistent(self):
        if self.method == "vscc" and self.matching is None:
            raise ValueError("matching: VSCC needs its channel-matching constant d (e.g. 5)")
        if self.method != "vscc" and self.matching is not None:
            raise ValueError(f"matching: only VSCC has a channel-matching constant (method is {self.method!r})")
        if self.test_mode is None:
            self.test_mode = "ae" if self.method == "ae" else "fv"
        if (self.method == "ae") != (self.test_mode == "ae"):
            raise ValueError(f"test_mode: {self.test_mode!r} does not fit method {self.method!r} (the AE is "
                             "tested as 'ae', VSCC and the VAE as 'fv' or 'tv')")
        if self.method == "ae" and self.train_mode == "t2":
            raise ValueError("train_mode: 't2' sends a variance; the AE has none (use 't1')")
        _, h, w = self.data.image_shape
        side = 2 ** len(self.stage_widths)
        if h != w or h % side:
            raise ValueError(f"stage_widths: {len(self.stage_widths)} down-sampling stages need square images "
                             f"whose side is a multiple of {side} (found {h} x {w})")
        for key, width in (("base_width", self.base_width), *(("stage_widths", v) for v in self.stage_widths)):
            if width % min(self.num_groups, width):
                raise ValueError(f"{key}: {width} channels cannot be split into {self.num_groups} GroupNorm groups")
        return self

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(k, h, w)`` of the latent."""
        _, h, w = self.data.image_shape
        side = 2 ** len(self.stage_widths)
        return (self.latent_channels, h // side, w // side)

    @property
    def values_per_image(self) -> int:
        """Real values sent per image: k h w (TV: 2 k h w)."""
        return math.prod(self.latent_shape) * (2 if self.test_mode == "tv" else 1)


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 255] float images -> float32 in [-1, 1] (seed000 §9-C)."""
    return images.float() / 127.5 - 1.0


def _to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Decoder output in (-1, 1) -> uint8 images."""
    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def draw_counters(originals: torch.Tensor, shown: torch.Tensor, group: int) -> dict[str, float]:
    """The counters of ``draws`` decodes of ``B`` images.

    :input originals: [B, C, H, W] uint8.
    :input shown: [L, B, C, H, W] uint8, L draws of each image.
    :param group: images per group of Algorithm 2's band.
    :output: :func:`~linksim.metrics.quality_counters` of the per-image means over draws
        (``psnr_sum`` ..., ``images``) and ``{psnr,ssim}_{band}_sum`` / ``_sq_sum`` for the bands
        ``lo`` / ``hi`` (min / max over draws of each group's mean, weighted by the group's images, so
        that the band's average brackets the mean also when the last group is short) and
        ``image_lo`` / ``image_hi`` (min / max over draws per image), all summed over images.
    """
    draws, b = shown.shape[:2]
    ref = originals.unsqueeze(0).expand_as(shown).flatten(0, 1)
    flat = shown.flatten(0, 1)
    values = {"psnr": psnr(ref, flat, layout="NCHW").reshape(draws, b).double(),
              "ssim": ssim(ref, flat, layout="NCHW").reshape(draws, b).double()}
    mse = (ref.double() - flat.double()).square().flatten(1).mean(1).reshape(draws, b)
    out = quality_counters(values["psnr"].mean(0), values["ssim"].mean(0), mse.mean(0))
    starts = range(0, b, group)
    sizes = torch.tensor([min(group, b - s) for s in starts], dtype=torch.float64)
    for key, v in values.items():
        group_means = torch.stack([v[:, s : s + group].mean(1) for s in starts], dim=1)  # [L, groups]
        for band, series, weight in (("lo", group_means.amin(0), sizes), ("hi", group_means.amax(0), sizes),
                                     ("image_lo", v.amin(0), None), ("image_hi", v.amax(0), None)):
            w = torch.ones_like(series) if weight is None else weight  # a group counts as its images
            out[f"{key}_{band}_sum"] = float((w * series).sum())
            out[f"{key}_{band}_sq_sum"] = float((w * series.square()).sum())
    return out


def _band_rates() -> dict[str, Mean]:
    out = {}
    for key, column in (("psnr", "psnr_db"), ("ssim", "ssim")):
        for band in _BANDS:
            out[f"{column}_{band}"] = Mean(f"{key}_{band}_sum", f"{key}_{band}_sq_sum", "images")
    return out


@register_scheme("vscc", VSCCParams)
class VSCCScheme(Scheme):
    """VSCC / VAE / AE over the scenario's channel; an item is one test image (decoded ``draws`` times).

    Counters: :func:`draw_counters`. Rates: :func:`~linksim.metrics.image_quality_rates` (``psnr_db``
    primary, ``ssim``, ``mse``, ``psnr_of_mean_mse_db``) and the draw bands ``psnr_db_lo`` ...
    ``ssim_image_hi``. Channel uses per image: ``values_per_image / 2`` complex.
    """

    rates = {**image_quality_rates(), **_band_rates()}
    primary = "psnr_db"

    def __init__(self, params: VSCCParams):
        super().__init__()
        self.params = p = params
        c, h, _ = p.data.image_shape
        self.model = VSCCAutoencoder(p.latent_channels, variational=p.method != "ae", in_channels=c,
                                     base_width=p.base_width, stage_widths=p.stage_widths, num_groups=p.num_groups,
                                     attention=p.attention, image_size=h)
        self._power = PowerNormalization("vector") if p.power == "image" else None
        self.facts = {"parameters": count_parameters(self.model), "latent_shape": list(p.latent_shape),
                      "real_values_per_image": p.values_per_image,
                      "channel_uses_per_image": p.values_per_image / 2,
                      "bandwidth_ratio_real": p.values_per_image / (c * h * h)}
        self._eval = EvalCursor()

    # ------------------------------------------------------------------ channel glue
    def budget(self, channel: Channel) -> LinkBudget:
        return real_uses_budget(channel, 1, self.params.values_per_image)

    def _transmit(self, values: torch.Tensor) -> torch.Tensor:
        """What the transmitter sends, ``[B, c, h, w]`` real: the values, or each image at unit power."""
        if self._power is None:
            return values
        return self._power(values.flatten(1)).reshape(values.shape)

    # ------------------------------------------------------------------ training
    def _loss(self, x: torch.Tensor, channel: Channel, no: torch.Tensor | None):
        """Per-example loss ``[B]`` and the reconstruction in [-1, 1] of a training batch ``x`` in [-1, 1]
        sent at noise variance ``no`` ``[B]`` per real value (``None``: noise-free)."""
        p, m = self.params, self.model
        mu, logvar = m.encode(x)
        noise_var = torch.zeros(len(x), device=x.device) if no is None else no

        def channel_fn(v):
            return v if no is None else reals_through(v, channel, no)

        if p.method == "ae":
            out = m.decode(channel_fn(self._transmit(mu)))
            return (out - x).square().flatten(1).mean(1), out
        sent = self._transmit(mu)
        if p.train_mode == "t1":
            latent = gaussian_reparameterize(channel_fn(sent), logvar)
        else:
            latent = m.receive(channel_fn(torch.cat([sent, logvar], dim=1)), "tv", noise_var, "log")
        out = m.decode(latent)
        kl = vscc_kl(sent, logvar, noise_var, p.matching) if p.method == "vscc" else vae_kl(sent, logvar)
        return gaussian_nll(x, out, p.rec_weight) + p.kl_weight * kl, out

    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        self.model.to(device, memory_format=preferred_memory_format(device))
        channel = context.train_channel_for(p.train.channel)

        def step(images, _labels, rng):
            no = training_no(p.train.snr_db, len(images), rng, images.device)
            x = images * 2.0 - 1.0  # the loop hands over images in [0, 1]
            loss, out = self._loss(x, channel, no)
            mse01 = ((out.detach() - x) / 2).square().flatten(1).mean(1)
            return loss.mean(), {"psnr_db": psnr_of_mse(mse01)}

        def data():
            train = p.data.training_set(context)
            return train.images.to(device), train.labels.to(device)

        def finish():  # sigma_KB^2 over the training images, stored with the weights
            if self.model.variational:
                images = p.data.training_set(context).images  # the run's dataset cache: loaded once
                chunk = inference_chunk(device) or 500
                self.model.eval()
                self.model.set_kb_variance(_to_unit(images[i : i + chunk].to(device))
                                           for i in range(0, len(images), chunk))

        arch = {k: getattr(p, k) for k in ("method", "matching", "train_mode", "power", "kl_weight", "rec_weight",
                                           "latent_channels", "base_width", "stage_widths", "attention",
                                           "num_groups")}
        weights = fit_or_load(context, self.model, name=self.name or f"vscc-{p.method}", params=p.train, step=step,
                              data=data, finish=finish,
                              description={"scheme": "vscc/1", "dataset": p.data.name, "dataset_path": p.data.path,
                                           **({"image_size": p.data.image_size} if p.data.image_size else {}),
                                           **arch})
        self.model.eval()
        if p.test_mode == "fv":
            self.model.check_kb_variance()
        test = p.data.evaluation_set(context)
        self._images = test.images.to(device)
        self._sent, stats = self._encode_all(self._images)
        self.facts.update({**weights.facts(), **stats, "dataset_source": test.source, "test_images": len(test),
                           "final_train_loss": weights.history[-1]["loss"] if weights.history else None})

    @torch.no_grad()
    def _encode_all(self, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """What every evaluation image sends, ``[N, values]`` real (computed once), and diagnostics:
        the measured transmit power per value and the spread of the encoder variance."""
        step = inference_chunk(images.device) or 500
        sent, variances = [], []
        for i in range(0, len(images), step):
            mu, logvar = self.model.encode(_to_unit(images[i : i + step]))
            mu = self._transmit(mu)
            if self.params.test_mode == "tv":
                mu = torch.cat([mu, logvar if self.params.tv_variance == "log" else logvar.exp()], dim=1)
            sent.append(mu.flatten(1))
            if logvar is not None:
                variances.append(logvar.exp().flatten())
        sent = torch.cat(sent)
        power = float(sent.square().mean())
        stats = {"tx_power_per_value": power, "effective_snr_offset_db": 10 * math.log10(power) if power > 0 else None}
        if variances:
            var = torch.cat(variances).double()
            q = torch.quantile(var[torch.randperm(len(var), generator=torch.Generator().manual_seed(0))[:1_000_000]
                                   .to(var.device)], torch.tensor([0.05, 0.5, 0.95], dtype=var.dtype, device=var.device))
            stats["encoder_variance"] = {"mean": float(var.mean()), "p05": float(q[0]), "median": float(q[1]),
                                         "p95": float(q[2]), "kb_mean": float(self.model.kb_variance.mean())}
        return sent, stats

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def originals(self, idx: torch.Tensor) -> torch.Tensor:
        return self._images[idx.to(self._images.device)]

    @torch.no_grad()
    def _decode_draws(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel, draws: int) -> torch.Tensor:
        """``draws`` decodes of images ``idx``: uint8 ``[draws, B, C, H, W]``, fresh noise and resample each."""
        p = self.params
        idx = idx.to(self._sent.device)
        _, h, w = p.latent_shape
        sent = self._sent[idx].reshape(len(idx), -1, h, w)
        no = torch.as_tensor(no, device=sent.device)
        no_rows = no.expand(len(idx)) if no.ndim == 0 else no
        chunk = max(1, (inference_chunk(sent.device) or 512) // max(1, len(idx)))
        shown = []
        for start in range(0, draws, chunk):
            n = min(chunk, draws - start)
            tiled, tiled_no = sent.repeat(n, 1, 1, 1), no_rows.repeat(n)
            received = reals_through(tiled, channel, tiled_no)
            latent = self.model.receive(received, p.test_mode, tiled_no, p.tv_variance)
            shown.append(_to_pixels(self.model.decode(latent)).reshape(n, len(idx), *self._images.shape[1:]))
        return torch.cat(shown)

    def reconstruct(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        return self._decode_draws(idx, no, channel, 1)[0]

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._images))).to(self._images.device)
        shown = self._decode_draws(idx, no, channel, self.params.draws)
        return {"samples": batch_size, **draw_counters(self._images[idx], shown, self.params.draw_group)}
