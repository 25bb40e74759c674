"""Scheme: Split DeepJSCC (Tung, Esfahanizadeh, Du, Viswanathan 2024, seed002), a learned binary source
codec and a learned channel codec that meet at a multi-level reliability interface.

**The interface.** The source mapper emits ``M`` bits (10,000) in ``N`` contiguous levels (10 of 1,000
bits), level ``i`` declared to flip a bit with probability ``eps_i``, geometric from 0.4 (level 1, the
least reliable) to 0.001 (level N) (seed002 eq. 17; :class:`~linksim.channels.binary.MultiLevelBSC`).

**Stage 1** (the application side, one model for every K and SNR): the source mapper / demapper
(:class:`~linksim.models.split_jscc.SourceCodec`) trained over that multi-level BSC medium with VIMCO
(:func:`~linksim.estimators.vimco_surrogate`, ``source_train.samples`` = J samples per image): for the
Bernoulli means ``f(x)`` the received bits are drawn from the smeared probabilities
``f (1 - 2 eps_i) + eps_i`` (Lemma 1, :func:`~linksim.channels.binary.bsc_output_probs`), their log
probability is the score term, ``log w_j = -lambda ||x - g(u^j)||^2`` (x in [0, 1]) the likelihood. Its
weights are cached under a key without K, the SNR or the channel, so every Split DeepJSCC scheme of a
run (and of later runs) trains it once and reuses it.

**Stage 2** (the network side, one model per (K, training SNR)): the source codec frozen and made
deterministic by rounding, ``u = round(f(x))`` (threshold 0.5); the channel mapper / demapper
(:class:`~linksim.models.split_jscc.ChannelCodec`) trained through the training channel (AWGN at
``train.snr_db``; a fresh noise draw per sample) with VIMCO on the distortion at the frozen source
demapper: ``v^j ~ Bernoulli(q(h(u) + n^j))``, a pure score-function term (seed002 eq. 15).

**Channel uses.** ``bandwidth_ratio`` rho = K / (H W C), K complex channel uses per image (CIFAR-10:
rho = 1/24 -> K = 128, 1/48 -> K = 64). The mapper's 2K reals are normalised per codeword to
``sum |z_i|^2 = K`` (seed002 eq. 13, P = 1) and packed in pairs into unit-energy complex symbols: Es/N0
is the paper's SNR = P / sigma^2, sigma^2 the complex noise variance per symbol.

**Evaluation.** The rounded code and the channel symbols of every evaluation image are computed once
in :meth:`~SplitJSCCScheme.prepare`; a point runs the channel, the channel demapper, the decision
``v = round(q(y))`` (``decision: hard``, the paper; ``soft`` passes ``q(y)`` to the source demapper, an
ablation of seed002 §9.15) and the source demapper. Any registered channel works (``rayleigh``, ``tdl``:
the demapper sees the equalised symbols).

**Metrics.** The reconstruction rounded to 8 bits against the original: per-image PSNR (peak 255,
clamped, primary), SSIM, MSE with Student-t intervals, the PSNR of the mean MSE
(:func:`~linksim.metrics.image_quality_counters`); the empirical BER of every level between the rounded
source code ``u`` and the decided bits ``v`` (``ber_l1`` .. ``ber_lN``, counters ``bit_errors_l<i>`` /
``bits_l<i>``, binomial intervals; ``ber`` over all M bits; seed002 Fig. 9), next to the nominal
``eps_l<i>`` (a theory column; Fig. 6). The manifest's ``interface_psnr_db`` is the PSNR the same
images get when their code crosses the multi-level BSC medium as declared (what stage 1 was trained
for): the gap to ``psnr_db`` is what the channel codec falls short of the interface; ``source_polarised`` the
fraction of the source mapper's Bernoulli means on those images below 0.1 or above 0.9 (stage 1 logs it
per epoch as ``polarised``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator

from linksim.channels.base import Channel
from linksim.channels.binary import MultiLevelBSCParams, bsc_output_probs, level_index
from linksim.estimators import bernoulli_log_prob, bernoulli_sample, vimco_surrogate
from linksim.layers import inference_chunk, preferred_memory_format
from linksim.link.packing import (
    ImageBandwidthParams,
    channel_uses_per_image,
    complex_to_real,
    real_to_complex,
    real_uses_budget,
    reals_through,
)
from linksim.metrics import image_quality_counters, image_quality_rates, psnr, psnr_of_mse
from linksim.models import count_parameters
from linksim.models.split_jscc import DOWNSAMPLING, ChannelCodec, SourceCodec
from linksim.registry import register_scheme
from linksim.schemes.base import EvalCursor, Rate, Scheme, SchemeContext, Statistic
from linksim.snr import LinkBudget
from linksim.training import (
    EarlyStopping,
    PlateauSchedule,
    Schedule,
    TrainParams,
    fit_or_load,
    training_no,
)

__all__ = ["ChannelTrainParams", "SourceTrainParams", "SplitJSCCParams", "SplitJSCCScheme", "level_error_counters",
           "medium_samples", "polarised", "varying_bits"]


#: below this fraction of code bits varying over the evaluation images, a source codec has collapsed
_COLLAPSED = 0.01


class SourceTrainParams(TrainParams):
    """Stage 1's recipe (seed002 §4): :class:`~linksim.training.TrainParams` with Adam 1e-5, batch 32,
    a 6,000-image validation split, the rate x 0.8 after 2 epochs without a better validation loss
    (``patience: 1`` in torch's count), early stopping after 4, at most 200 epochs, and ``samples``
    J = 100 VIMCO samples per image. Trained over the multi-level BSC medium: no SNR, no channel, no
    warm start."""

    epochs: PositiveInt = 200
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 1e-5
    validation: float = Field(6000, ge=0)
    schedule: Schedule = PlateauSchedule(factor=0.8, patience=1)
    early_stopping: EarlyStopping | None = EarlyStopping(patience=4)
    samples: int = Field(100, ge=2)

    @field_validator("snr_db", "channel", "warm_start")
    @classmethod
    def _medium_only(cls, value):
        if value is not None:
            raise ValueError("stage 1 trains over the multi-level BSC medium (remove the key)")
        return value


class ChannelTrainParams(SourceTrainParams):
    """Stage 2's recipe: stage 1's, through the training channel at ``snr_db`` (Es/N0 in dB, 20 by
    default: the paper's headline mappers), optionally warm-started from another Split DeepJSCC scheme's
    channel codec (``warm_start``)."""

    snr_db: float | tuple[float, float] | None = 20.0

    @field_validator("snr_db", "channel", "warm_start")
    @classmethod
    def _medium_only(cls, value, info: ValidationInfo):
        if info.field_name == "snr_db" and value is None:
            raise ValueError("the channel codec trains through a noisy channel (give an Es/N0 in dB)")
        return value


class SplitJSCCParams(ImageBandwidthParams):
    """One Split DeepJSCC channel codec and the source codec it serves (see the module docstring).

    :param data: the image set (CIFAR-10 by default) and the evaluation sample.
    :param bandwidth_ratio: rho, complex channel uses per source value (``"1/24"`` -> K = 128).
    :param interface: the multi-level reliability interface: ``bits`` M, ``levels`` N, the geometric
        schedule ``eps_first`` -> ``eps_last`` or explicit ``eps``
        (:class:`~linksim.channels.binary.MultiLevelBSCParams`; seed002: 10,000 bits, 10 levels, 0.4 -> 0.001).
    :param width: conv channels C of the source codec (the spec's 256).
    :param channel_width: conv channels of the channel codec.
    :param likelihood_scale: lambda of ``log w = -lambda ||x - x_hat||^2`` (x in [0, 1]; seed002 §9.4).
    :param decision: ``hard`` (``v = round(q(y))``, the paper) or ``soft`` (``q(y)`` to the source demapper).
    :param source_train: stage 1's recipe (:class:`SourceTrainParams`).
    :param train: stage 2's recipe (:class:`ChannelTrainParams`); ``train.snr_db`` is the mapper's training SNR.
    """

    interface: MultiLevelBSCParams = MultiLevelBSCParams(bits=10_000)
    width: PositiveInt = 256
    channel_width: PositiveInt = 256
    likelihood_scale: PositiveFloat = 1.0
    decision: Literal["hard", "soft"] = "hard"
    source_train: SourceTrainParams = SourceTrainParams()
    train: ChannelTrainParams = ChannelTrainParams()

    # field validators (not one model validator), so that an error names the key at fault
    @field_validator("bandwidth_ratio")
    @classmethod
    def _whole_symbol_channels(cls, value: float, info: ValidationInfo) -> float:
        if "data" in info.data:
            shape = info.data["data"].image_shape
            cells = _cells(shape)
            k = channel_uses_per_image(value, shape)
            if cells and (2 * k) % cells:
                raise ValueError(f"{value:g} gives {k} complex channel uses per image, not whole channels of the "
                                 f"map at 1/{DOWNSAMPLING} of the image side (2K must be a multiple of {cells})")
        return value

    @field_validator("interface")
    @classmethod
    def _whole_bit_channels(cls, value: MultiLevelBSCParams, info: ValidationInfo) -> MultiLevelBSCParams:
        if "data" in info.data:
            cells = _cells(info.data["data"].image_shape)
            if value.bits % cells:
                raise ValueError(f"bits: {value.bits} bits are not whole channels of the map at 1/{DOWNSAMPLING} "
                                 f"of the image side (use a multiple of {cells})")
        return value


def _cells(image_shape: tuple[int, int, int]) -> int:
    """Positions of the source codec's bit map (``H W / 256``); a ValueError for sides that are not
    multiples of 16."""
    _, h, w = image_shape
    if h % DOWNSAMPLING or w % DOWNSAMPLING:
        raise ValueError(f"Split DeepJSCC needs images whose sides are multiples of {DOWNSAMPLING} (found {h} x {w})")
    return (h // DOWNSAMPLING) * (w // DOWNSAMPLING)


def level_error_counters(sent: torch.Tensor, received: torch.Tensor, level: torch.Tensor,
                         levels: int) -> dict[str, int]:
    """Bit errors per interface level between two bit arrays, as additive counters.

    :input sent: [B, M], bool or float in {0, 1}. The rounded source code ``u``.
    :input received: [B, M], bool or float in {0, 1}. The decided bits ``v``.
    :input level: [M], int64 in ``[0, levels)``. The level of each position (:func:`level_index`).
    :param levels: N.
    :output: ``bit_errors_l<i>`` and ``bits_l<i>`` for ``i = 1 .. N`` (1-based, as the paper numbers
        the levels), ``bit_errors`` and ``bits`` over all positions; ints. Counters of two batches add
        up to those of the batches together.
    """
    errors = (sent.bool() != received.bool()).sum(0).to(torch.int64)  # [M]
    per_level = torch.zeros(levels, dtype=torch.int64, device=errors.device).index_add_(0, level, errors).tolist()
    sizes = (torch.bincount(level, minlength=levels) * sent.shape[0]).tolist()
    out = {f"bit_errors_l{i + 1}": per_level[i] for i in range(levels)}
    out.update({f"bits_l{i + 1}": sizes[i] for i in range(levels)})
    out.update({"bit_errors": sum(per_level), "bits": sum(sizes)})
    return out


def medium_samples(probs: torch.Tensor, flip_prob: torch.Tensor, samples: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """J draws of what a multi-level BSC medium delivers for bits that are 1 with probability ``probs``,
    and their log probability (seed002 Lemma 1): each received bit is Bernoulli with the smeared
    probability ``probs (1 - 2 eps) + eps``, which is a Bernoulli(``probs``) bit flipped with
    probability ``eps``; the log probability is the score term of VIMCO's stage-1 estimate.

    :param samples: J.
    :param generator: ``torch.Generator`` on ``probs.device``, or ``None`` for Sionna's generator.
    :input probs: [B, M], float in [0, 1]. The source mapper's Bernoulli means ``f(x)``.
    :input flip_prob: [M] or [B, M], float in [0, 1]. The crossover probability of each bit's level.
    :output received: [J, B, M], float in {0, 1}, detached.
    :output log_probs: [J, B], float. ``log p(received | x)``, differentiable in ``probs``.
    """
    smeared = bsc_output_probs(probs, flip_prob)
    received = bernoulli_sample(smeared.expand(samples, *smeared.shape), generator)
    return received, bernoulli_log_prob(received, smeared)


def polarised(probs: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Fraction of Bernoulli means within ``margin`` of 0 or 1, per row.

    :input probs: [B, M], float in [0, 1].
    :output: [B], float32 in [0, 1].
    """
    return ((probs < margin) | (probs > 1.0 - margin)).float().mean(-1)


def varying_bits(bits: torch.Tensor) -> torch.Tensor:
    """Fraction of bit positions that are not the same in every row: 0 for a code that carries nothing
    about the image (the collapse of a source mapper whose Bernoulli means all saturated alike).

    :input bits: [B, M], float in {0, 1} (B >= 2).
    :output: [], float32 in [0, 1].
    """
    return (bits.amax(0) != bits.amin(0)).float().mean()


def _quality_log(images: torch.Tensor, sse: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image training metrics from the squared errors ``sse`` [J, B] of J reconstructions."""
    mse = sse.detach() / images[0].numel()
    return {"mse": mse.mean(0), "psnr_db": psnr_of_mse(mse).mean(0)}


@register_scheme("split_jscc", SplitJSCCParams)
class SplitJSCCScheme(Scheme):
    """Split DeepJSCC over the scenario's channel; an item is one test image.

    Counters and rates: :func:`~linksim.metrics.image_quality_counters` of the 8-bit reconstructions
    (``psnr_db`` primary, ``ssim``, ``mse``, ``psnr_of_mean_mse_db``) and
    :func:`level_error_counters` (``ber``, ``ber_l1`` .. ``ber_lN``).
    Channel uses per image: ``K = rho * C * H * W`` complex.
    """

    primary = "psnr_db"

    def __init__(self, params: SplitJSCCParams):
        super().__init__()
        self.params = p = params
        c, h, w = p.image_shape
        bits, levels = p.interface.bits, p.interface.num_levels
        self.source = SourceCodec(bits, in_channels=c, image_size=(h, w), width=p.width)
        self.model = ChannelCodec(bits, p.channel_uses, self.source.grid, width=p.channel_width)
        self.register_buffer("eps", p.interface.level_eps().to(torch.float32), persistent=False)
        self.register_buffer("level", level_index(bits, levels), persistent=False)
        self.rates: dict[str, Statistic] = {**image_quality_rates(), "ber": Rate("bit_errors", "bits")}
        self.rates.update({f"ber_l{i}": Rate(f"bit_errors_l{i}", f"bits_l{i}") for i in range(1, levels + 1)})
        self.facts = {"source_parameters": count_parameters(self.source), "parameters": count_parameters(self.model),
                      "channel_uses_per_image": p.channel_uses, "interface_bits": bits, "levels": levels,
                      "level_eps": [round(float(e), 6) for e in self.eps]}
        self._eval = EvalCursor()

    # ------------------------------------------------------------------ channel glue
    def budget(self, channel: Channel) -> LinkBudget:
        return real_uses_budget(channel, 1, 2 * self.params.channel_uses)

    def theory(self, channel: Channel, esno_db: float) -> dict[str, float]:
        """``eps_l<i>``: the nominal crossover probability of each level (what stage 1 trained for)."""
        return {f"eps_l{i + 1}": float(e) for i, e in enumerate(self.eps)}

    # ------------------------------------------------------------------ training
    def _vimco(self, images: torch.Tensor, bits: torch.Tensor, log_probs: torch.Tensor):
        """VIMCO loss and metrics of J received bit samples ``bits`` [J, B, M] of ``images`` [B, C, H, W]."""
        sse = (self.source.decode(bits) - images).square().flatten(2).sum(-1)  # [J, B]
        # loss = -mean_b L_hat: the training log's loss is minus the VIMCO bound
        return vimco_surrogate(-self.params.likelihood_scale * sse, log_probs).loss, _quality_log(images, sse)

    def source_step(self, images: torch.Tensor, _labels: torch.Tensor, rng: torch.Generator):
        """Stage 1: J draws from the multi-level BSC medium of the source mapper's Bernoulli bits. Logs
        ``polarised``, the fraction of Bernoulli means below 0.1 or above 0.9 per image: rounding (stage 2,
        deployment) keeps what stage 1 trained the decoder for only once most bits are polarised; and
        ``varying``, the fraction of rounded code bits that differ within the batch (:func:`varying_bits`):
        polarised with nothing varying is a collapsed, constant code."""
        probs = self.source.encode(images)
        received, log_probs = medium_samples(probs, self.eps[self.level], self.params.source_train.samples, rng)
        loss, metrics = self._vimco(images, received, log_probs)
        probs = probs.detach()
        return loss, {**metrics, "polarised": polarised(probs), "varying": varying_bits(self.source.decide(probs))}

    def channel_step(self, images: torch.Tensor, rng: torch.Generator, channel: Channel):
        """Stage 2: J channel draws of the rounded source code, decided by Bernoulli samples of ``q(y)``."""
        j, b = self.params.train.samples, len(images)
        with torch.no_grad():
            sent = self.source.quantize(images)  # [B, M], deterministic
        z = self.model.map(sent).repeat(j, 1)  # [J B, 2K], row j B + b: sample j of image b
        no = training_no(self.params.train.snr_db, j * b, rng, images.device)
        logits = self.model.demap(reals_through(z, channel, no)).reshape(j, b, -1)
        received = bernoulli_sample(torch.sigmoid(logits), rng)
        loss, metrics = self._vimco(images, received, bernoulli_log_prob(received, logits=logits))
        return loss, {**metrics, "ber": (received != sent).float().mean(-1).mean(0)}

    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        self.to(device, memory_format=preferred_memory_format(device))
        name = self.name or "split_jscc"
        data_facts = {"dataset": p.data.name, "dataset_path": p.data.path, "bits": p.interface.bits,
                      "level_eps": [float(e) for e in p.interface.level_eps()]}

        def data():
            train = p.data.training_set(context)
            return train.images.to(device), train.labels.to(device)

        source = fit_or_load(context, self.source, name=f"{name}.source", params=p.source_train,
                             step=self.source_step, data=data,
                             description={"scheme": "split_jscc.source/1", **data_facts, "width": p.width,
                                          "likelihood_scale": p.likelihood_scale})
        self.source.eval().requires_grad_(False)
        test = p.data.evaluation_set(context)
        self._images = test.images.to(device)
        self._sent, polarised_share = self._encode_source(self._images)
        varying = self._check_source_code(name, source.key)
        channel = context.train_channel_for(p.train.channel)
        weights = fit_or_load(context, self.model, name=name, params=p.train, data=data,
                              step=lambda images, _labels, rng: self.channel_step(images, rng, channel),
                              description={"scheme": "split_jscc.channel/1", **data_facts,
                                           "source_weights": source.key, "channel_uses": p.channel_uses,
                                           "channel_width": p.channel_width, "likelihood_scale": p.likelihood_scale})
        self.model.eval()
        self._symbols = self._channel_symbols(self._sent)
        self.facts.update({"interface_psnr_db": round(self.interface_psnr_db(context.seed), 3),
                           "source_polarised": round(polarised_share, 4), "source_varying_bits": round(varying, 4)})
        self.facts.update({**weights.facts(), **{f"source_{k}": v for k, v in source.facts().items()},
                           "dataset_source": test.source, "test_images": len(test),
                           "final_train_loss": weights.history[-1]["loss"] if weights.history else None})

    @torch.no_grad()
    def _encode_source(self, images: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The rounded source code ``[N, M]`` (bool) of every evaluation image (uint8 ``[N, C, H, W]``),
        computed once, and the fraction of :func:`polarised` Bernoulli means."""
        step = inference_chunk(images.device) or 1000
        probs = torch.cat([self.source.encode(images[i : i + step].float() / 255.0)
                           for i in range(0, len(images), step)])
        return self.source.decide(probs).bool(), float(polarised(probs).mean())

    def _check_source_code(self, name: str, key: str) -> float:
        """The fraction of code bits that vary over the evaluation images; a ``RuntimeError`` before
        stage 2 trains on it when the stage-1 codec sends a constant code."""
        if len(self._sent) < 2:
            return 1.0
        varying = float(varying_bits(self._sent.float()))
        if varying < _COLLAPSED:
            raise RuntimeError(
                f"{name}: the stage-1 source codec (weights {key}) collapsed to a constant code ({varying:.2%} of its "
                f"{self._sent.shape[1]} bits differ across {len(self._sent)} evaluation images); retrain it with a "
                "lower source_train.lr (its training log shows 'varying' per epoch)")
        return varying

    @torch.no_grad()
    def _channel_symbols(self, sent: torch.Tensor) -> torch.Tensor:
        """The channel symbols ``[N, K]`` (complex64) of the rounded codes ``sent`` ``[N, M]``, computed once."""
        step = inference_chunk(sent.device) or 1000
        z = torch.cat([self.model.map(sent[i : i + step].float()) for i in range(0, len(sent), step)])
        return real_to_complex(z.reshape(len(z), 1, -1))

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def originals(self, idx: torch.Tensor) -> torch.Tensor:
        return self._images[idx.to(self._images.device)]

    @torch.no_grad()
    def _receive(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel) -> tuple[torch.Tensor, torch.Tensor]:
        """The decided bits ``[B, M]`` (bool) and the 8-bit reconstructions of evaluation images ``idx``."""
        idx = idx.to(self._symbols.device)
        y, _ = channel(self._symbols[idx], no)
        logits = self.model.demap(complex_to_real(y, (1, 2 * self.params.channel_uses)).flatten(1))
        decided = logits > 0
        return decided, self._show(decided.float() if self.params.decision == "hard" else torch.sigmoid(logits))

    def _show(self, bits: torch.Tensor) -> torch.Tensor:
        """8-bit reconstructions ``[B, C, H, W]`` from received bits (or bit probabilities) ``[B, M]``."""
        step = inference_chunk(bits.device) or len(bits)
        shown = torch.cat([self.source.decode(bits[i : i + step]) for i in range(0, len(bits), step)])
        return (shown * 255.0).round().clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def interface_psnr_db(self, seed: int) -> float:
        """Mean per-image PSNR (dB, 8-bit) of the evaluation images when their rounded code crosses the
        multi-level BSC medium as declared (one draw of flips with ``seed``): what the interface promises
        the application, the reference for what the channel codec delivers (``interface_psnr_db`` in
        the manifest)."""
        sent = self._sent.float()
        generator = torch.Generator(device=sent.device).manual_seed(seed)
        flips = bernoulli_sample(self.eps[self.level].expand(sent.shape), generator)
        return float(psnr(self._images, self._show((sent + flips) % 2), layout="NCHW").double().mean())

    def reconstruct(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        return self._receive(idx, no, channel)[1]

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._images))).to(self._images.device)
        decided, shown = self._receive(idx, no, channel)
        return {"samples": batch_size, **image_quality_counters(self._images[idx], shown, layout="NCHW"),
                **level_error_counters(self._sent[idx], decided, self.level, len(self.eps))}
