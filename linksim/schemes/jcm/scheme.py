"""Scheme: JCM (Bo et al., TCOM 2024) and its baselines Analog, Uniform and NN, one curve per scheme.

**Models.** The paper trains one model per (method, modulation, SNR, n) and tests it at its training SNR.
A scheme here is one curve: one :class:`~linksim.models.JCM` per entry of ``snr_db`` (trained at that
SNR), and a point at SNR ``s`` is simulated with the model trained nearest to ``s`` (column
``train_snr_db``): give the scheme ``snr: {values: <its snr_db>}`` for the paper's matched curves. Loss
``CE + lambda MSE`` (element mean on images in [-1, 1]), lambda from the paper's Table II by (BPSK or QAM,
SNR) unless ``mse_weight`` is set. ``train.warm_start`` names an ``analog`` scheme of the scenario with
the same channel uses and 1D / 2D layout: each model starts from its model of the same SNR (every
parameter with the same name and shape: encoder and decoders; JCM's head starts fresh). For ``nn`` the
quantiser is first fitted (noise-free MSE) to the warm-started encoder's outputs on the training images,
then frozen, and the encoder and decoders are fine-tuned through it.

**Channel uses.** ``bandwidth_ratio`` rho gives ``n = rho * 3072`` channel uses per image (1/24 -> 128):
``n`` complex QAM symbols (``d = 2 n`` reals) or ``n`` real BPSK symbols (``d = n``, the real-channel
convention of :mod:`linksim.schemes.jcm.chain`: the SNR axis of BPSK schemes is P / sigma^2 per real
symbol). Every method sends at unit average power per real value.

**Encode once, sample per point.** The encoders are deterministic in evaluation: their outputs (logits for
``jcm``) are computed once per evaluation image in :meth:`~JCMScheme.prepare`; a point draws the symbols
(JCM samples at test time too), runs the channel and both decoders. With ``power_norm: batch`` the power
is normalised over groups of ``train.batch_size`` images, as the authors' code does at test time.

**Metrics.** ``accuracy`` (binomial interval); ``psnr_paper_db``: the paper's PSNR (per colour channel of
the unclipped reconstruction in [0, 1], averaged over channels, then over images; Student-t interval);
the 8-bit statistics of :func:`~linksim.metrics.image_quality_counters` (``psnr_db`` primary, ``ssim``,
...: comparable with the digital baselines); counters ``occupancy_<i>`` of the constellation points sent
(``facts["constellation"]`` gives point ``i``) and their entropy ``occupancy_entropy_bits``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from torch import nn

from linksim.channels.base import Channel
from linksim.layers import inference_chunk
from linksim.link.packing import ImageBandwidthParams
from linksim.metrics import (
    image_quality_counters,
    image_quality_rates,
    occupancy_counters,
    occupancy_entropy_bits,
    psnr_per_channel,
)
from linksim.models import JCM, jcm_complexity
from linksim.registry import register_scheme
from linksim.schemes.base import (
    Derived,
    EvalCursor,
    Mean,
    Rate,
    Scheme,
    SchemeContext,
    Statistic,
)
from linksim.schemes.jcm.chain import MODULATIONS, Modulation, PowerScope, SymbolChain
from linksim.snr import LinkBudget
from linksim.training import (
    CosineSchedule,
    Schedule,
    TrainParams,
    fit_or_load,
    load_matching,
    training_no,
)

__all__ = ["TABLE_II", "JCMParams", "JCMScheme", "JCMTrainParams", "QuantizerFit", "mse_weight"]

#: lambda of the paper's Table II (n = 128), by "bpsk" / "qam" and SNR in dB
TABLE_II: dict[str, dict[float, float]] = {
    "bpsk": {-18: 70, -12: 70, -6: 70, 0: 30, 6: 20, 12: 2, 18: 0.5},
    "qam": {-18: 270, -12: 250, -6: 250, 0: 30, 6: 20, 12: 2, 18: 0.5},
}


def mse_weight(modulation: Modulation, snr_db: float) -> float:
    """Table II's lambda for ``modulation`` at ``snr_db`` (a KeyError off the table's SNRs)."""
    return TABLE_II["bpsk" if modulation == "bpsk" else "qam"][snr_db]


class JCMTrainParams(TrainParams):
    """:class:`~linksim.training.TrainParams` with the paper's recipe: Adam, batch 32, 300 epochs, cosine
    from 5e-4 to 1e-6 per epoch, half the rate on the probability head, horizontal flips. ``snr_db`` is not
    set here: the scheme's ``snr_db`` gives each model its training SNR."""

    epochs: PositiveInt = 300
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 5e-4
    schedule: Schedule = CosineSchedule(floor=1e-6)
    lr_scale: dict[str, PositiveFloat] = Field(default_factory=lambda: {"head.": 0.5})
    hflip: bool = True

    @field_validator("snr_db")
    @classmethod
    def _set_by_scheme(cls, value):
        if value is not None:
            raise ValueError("set the scheme's snr_db (one model per training SNR) instead")
        return value


class QuantizerFit(BaseModel):
    """How the ``nn`` quantiser is fitted to the frozen warm-started encoder: Adam on the noise-free MSE of
    the encoder's normalised outputs over ``images`` training images, ``steps`` steps of ``batch`` values."""

    model_config = ConfigDict(extra="forbid")
    images: PositiveInt = 5000
    steps: PositiveInt = 2000
    batch: PositiveInt = 4096
    lr: PositiveFloat = 1e-2


class JCMParams(ImageBandwidthParams):
    """One curve of the JCM family (module docstring).

    :param method: ``jcm``, ``analog``, ``uniform`` or ``nn``.
    :param modulation: ``bpsk``, ``qam4``, ``qam16``, ``qam64`` (``analog``: ``bpsk`` is 1D, any QAM 2D).
    :param snr_db: training SNRs in dB, one model each (P / sigma^2 per real value; Es/N0 for QAM).
    :param mse_weight: lambda for every model, or ``None`` for Table II by SNR.
    :param temperature: Gumbel-softmax temperature (``jcm``; the forward sample does not depend on it).
    :param power_norm: ``batch`` (the authors' code) or ``image`` (the paper's text).
    :param relu_logits: the ReLU on the head's logits (the authors' code).
    :param width: conv width multiplier (1 = the paper; a multiple of 1/16).
    :param train: the training recipe of every model; ``train.warm_start`` names the analog scheme.
    :param quantizer: how the ``nn`` quantiser is fitted.
    """

    method: Literal["jcm", "analog", "uniform", "nn"]
    modulation: Modulation = "qam16"
    snr_db: list[float] = Field(..., min_length=1)
    mse_weight: PositiveFloat | None = None
    temperature: PositiveFloat = 1.5
    power_norm: PowerScope = "batch"
    relu_logits: bool = True
    width: PositiveFloat = 1.0
    train: JCMTrainParams = JCMTrainParams()
    quantizer: QuantizerFit = QuantizerFit()

    @field_validator("width")
    @classmethod
    def _sixteenths(cls, value):
        if value * 16 != int(value * 16):
            raise ValueError(f"expected a multiple of 1/16 (the depth-to-space steps), found {value}")
        return value

    @field_validator("snr_db")
    @classmethod
    def _distinct(cls, value):
        if len(set(value)) != len(value) or any(not math.isfinite(v) or abs(v) > 100 for v in value):
            raise ValueError(f"expected distinct finite SNRs in [-100, 100] dB, found {value}")
        return value

    @model_validator(mode="after")
    def _fits(self):
        if self.image_shape != (3, 32, 32):
            raise ValueError(f"data.name: JCM needs 3 x 32 x 32 images, found {self.image_shape}")
        if self.d % 16:
            raise ValueError(f"bandwidth_ratio {self.bandwidth_ratio:g} gives {self.channel_uses} channel uses, "
                             f"{self.d} real values per image: not a multiple of 16")
        if self.mse_weight is None and (off := [s for s in self.snr_db if s not in TABLE_II["qam"]]):
            raise ValueError(f"mse_weight: Table II gives lambda at -18 .. 18 dB in 6 dB steps only; set it for "
                             f"snr_db {off}")
        return self

    @property
    def d(self) -> int:
        """Real values per image: ``n`` for BPSK, ``2 n`` for QAM."""
        return self.channel_uses * (1 if self.modulation == "bpsk" else 2)

    @property
    def levels(self) -> int:
        """PAM levels per real value: ``sqrt(M)`` (2 for BPSK)."""
        return 2 if self.modulation == "bpsk" else math.isqrt(MODULATIONS[self.modulation])


def _to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float images -> float32 in [-1, 1]."""
    x = images.float() / 255.0 if not images.is_floating_point() else images
    return 2.0 * x - 1.0


@register_scheme("jcm", JCMParams)
class JCMScheme(Scheme):
    """A JCM-family curve over the scenario's channel; an item is one test image (module docstring)."""

    rates: ClassVar[dict[str, Statistic]] = {
        "accuracy": Rate("correct", "images"),
        "psnr_paper_db": Mean("psnr_paper_sum", "psnr_paper_sq_sum", "images"),
        **image_quality_rates(),
        "occupancy_entropy_bits": Derived(occupancy_entropy_bits, "entropy of the points sent, bits per symbol"),
    }
    primary = "psnr_db"

    def __init__(self, params: JCMParams):
        super().__init__()
        self.params = p = params
        bits = int(math.log2(p.levels))
        self.models = nn.ModuleList(JCM(p.method, p.d, p.levels, p.width, p.relu_logits, bits) for _ in p.snr_db)
        self.chain = SymbolChain(p.method, p.modulation, p.power_norm, p.temperature)
        self.facts = {**jcm_complexity(self.models[0]), "channel_uses_per_image": p.channel_uses,
                      "real_values_per_image": p.d, "snr_db": p.snr_db}
        if p.method != "analog":
            self.facts["constellation"] = [[round(float(c.real), 6), round(float(c.imag), 6)]
                                           for c in self.chain.points]
        self._eval = EvalCursor()

    # ------------------------------------------------------------------ models and channel glue
    def model_for(self, esno_db: float) -> tuple[int, JCM]:
        """The index and model trained nearest to ``esno_db``."""
        i = min(range(len(self.params.snr_db)), key=lambda j: abs(self.params.snr_db[j] - esno_db))
        return i, self.models[i]

    def budget(self, channel: Channel) -> LinkBudget:
        return LinkBudget(channel.channel_uses(self.params.channel_uses))

    def summarize(self, row: dict) -> dict:
        return {"train_snr_db": self.params.snr_db[self.model_for(float(row["esno_db"]))[0]]}

    def _lambda(self, snr: float) -> float:
        p = self.params
        return p.mse_weight if p.mse_weight is not None else mse_weight(p.modulation, snr)

    def _quantizer(self, model: JCM):
        return model.quantizer if self.params.method == "nn" else None

    # ------------------------------------------------------------------ training
    def prepare(self, context: SchemeContext) -> None:
        p = self.params
        device = torch.device(context.device)
        self.models.to(device)
        self.chain.to(device)  # its buffers; the Sionna blocks are built on Sionna's configured device
        channel = context.train_channel_for(p.train.channel)
        source = None
        if p.train.warm_start is not None:
            source = context.prepared_scheme(p.train.warm_start)
            if not isinstance(source, JCMScheme) or source.params.method != "analog":
                raise ValueError(f"train.warm_start: {p.train.warm_start!r} is not an analog jcm scheme")
            if missing := [s for s in p.snr_db if s not in source.params.snr_db]:
                raise ValueError(f"train.warm_start: {p.train.warm_start!r} has no model trained at {missing} dB")
        test = p.data.evaluation_set(context)
        self._images, self._labels = test.images.to(device), test.labels.to(device)
        self._features = []
        models = {}
        for snr, model in zip(p.snr_db, self.models, strict=True):
            weights = self._fit(context, model, snr, channel, source)
            models[f"{snr:g}"] = {**weights.facts(), "mse_weight": self._lambda(snr),
                                  "final_train_loss": weights.history[-1]["loss"] if weights.history else None}
            model.eval()
            self._features.append(self._encode_all(model))
        self.facts.update({"models": models, "dataset_source": test.source, "test_images": len(test)})

    def _fit(self, context: SchemeContext, model: JCM, snr: float, channel: Channel, source):
        p = self.params
        lam = self._lambda(snr)
        quantizer = self._quantizer(model)
        warm = None
        if source is not None:
            j = source.params.snr_db.index(snr)
            warm = source.facts["models"][f"{snr:g}"]["weights"]
            load_matching(model, source.models[j].state_dict())  # a cached or resumed model overwrites it

        def step(images, labels, rng):
            x = _to_signed(images)
            no = training_no(snr, len(x), rng, x.device)
            y, _ = self.chain(model.encode(x), channel, no, quantizer, generator=rng)
            logits, recon = model.decode(y)
            ce = F.cross_entropy(logits, labels, reduction="none")
            mse = (recon - x).square().flatten(1).mean(dim=1)
            loss = ce.mean() + lam * mse.mean()
            return loss, {"ce": ce.detach(), "accuracy": (logits.argmax(1) == labels).float(),
                          "psnr_db": psnr_per_channel((x + 1) / 2, (recon.detach() + 1) / 2, layout="NCHW")}

        def data():
            train = p.data.training_set(context)
            images, labels = train.images.to(self._images.device), train.labels.to(self._images.device)
            if quantizer is not None:
                self._fit_quantizer(model, images, context.seed)
            return images, labels

        described = p.model_dump(mode="json", include={"method", "temperature", "power_norm", "relu_logits",
                                                       "width"})
        if p.method == "analog":
            del described["temperature"], described["relu_logits"]
        layout = "1d" if p.modulation == "bpsk" else "2d"
        weights = fit_or_load(
            context, model, name=f"{self.name or 'jcm'}-snr{snr:g}",
            params=p.train.model_copy(update={"warm_start": None}),
            step=step, data=data,
            description={"scheme": "jcm/1", "dataset": p.data.name, "dataset_path": p.data.path, **described,
                         "modulation": layout if p.method == "analog" else p.modulation, "channel_uses": p.channel_uses,
                         "snr_db": snr, "mse_weight": lam, "warm_start": warm,
                         **({"quantizer": p.quantizer.model_dump()} if quantizer is not None else {})})
        return replace(weights, warm_start=warm)

    def _fit_quantizer(self, model: JCM, images: torch.Tensor, seed: int) -> None:
        """Fit ``model.quantizer`` to the normalised outputs of the (warm-started) encoder, then freeze it."""
        q = self.params.quantizer
        model.eval()
        with torch.no_grad():
            z = torch.cat([model.encode(_to_signed(images[i : i + 256])) for i in range(0, min(q.images, len(images)),
                                                                                         256)])
            values = (z / z.square().mean().sqrt()).flatten()
        rng = torch.Generator(device=values.device).manual_seed(seed)
        opt = torch.optim.Adam(model.quantizer.parameters(), lr=q.lr)
        for _ in range(q.steps):
            batch = values[torch.randint(len(values), (q.batch,), generator=rng, device=values.device)]
            loss = (model.quantizer(batch) - batch).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.quantizer.requires_grad_(False)

    @torch.no_grad()
    def _encode_all(self, model: JCM) -> torch.Tensor:
        """The encoder outputs of every evaluation image, computed once: [N, d, K] or [N, d]."""
        step = inference_chunk(self._images.device) or 500
        return torch.cat([model.encode(_to_signed(self._images[i : i + step])) for i in range(0, len(self._images),
                                                                                             step)])

    # ------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        self._eval.rewind()

    def originals(self, idx: torch.Tensor) -> torch.Tensor:
        return self._images[idx.to(self._images.device)]

    @torch.no_grad()
    def _receive(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel):
        """(class logits, reconstructions in about [-1, 1], point indices or ``None``) of images ``idx``."""
        i, model = self.model_for(-10.0 * math.log10(float(no.reshape(-1)[0])))
        no = no.expand(len(idx)) if no.dim() == 0 else no
        group = len(idx) if self.params.power_norm == "image" else self.params.train.batch_size
        outs = []
        for s in range(0, len(idx), group):  # "batch" normalisation over groups of the training batch size
            y, points = self.chain(self._features[i][idx[s : s + group]], channel, no[s : s + group],
                                   self._quantizer(model))
            outs.append((*model.decode(y), points))
        logits, recon, points = zip(*outs, strict=True)
        return torch.cat(logits), torch.cat(recon), None if points[0] is None else torch.cat(points)

    def reconstruct(self, idx: torch.Tensor, no: torch.Tensor, channel: Channel) -> torch.Tensor:
        _, recon, _ = self._receive(idx.to(self._images.device), no, channel)
        return ((recon + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

    def simulate(self, batch_size: int, no: torch.Tensor, channel: Channel) -> dict[str, float]:
        idx = torch.from_numpy(self._eval.take(batch_size, len(self._images))).to(self._images.device)
        logits, recon, points = self._receive(idx, no, channel)
        images = self._images[idx]
        labels = self._labels[idx]
        paper = psnr_per_channel(images.double() / 255.0, (recon.double() + 1) / 2, layout="NCHW")
        shown = ((recon + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        out = {"samples": batch_size, "correct": int((logits.argmax(1) == labels).sum()),
               "psnr_paper_sum": float(paper.sum()), "psnr_paper_sq_sum": float(paper.square().sum()),
               **image_quality_counters(images, shown, layout="NCHW")}
        if points is not None:
            out.update(occupancy_counters(points, len(self.chain.points)))
        return out
