"""What every SINFONY scheme shares: the params of the SINFONY model it builds on, that model's
network, training recipe and weight-cache entry, and what it transmits.

The classifier (``sinfony``) evaluates one :class:`SinfonyReference`; the Fig. 7 baselines
(``sinfony_digital``, ``sinfony_analog_ae``) build on the perfect-comm. (or central) one. With the
same ``data``, ``power_norm`` and ``train`` values, shared through ``scheme_defaults``, all of them
train or load the very same cached weights.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from linksim.accel import compiled
from linksim.channels.base import Channel
from linksim.data import DataParams
from linksim.data.base import sample_indices
from linksim.layers import preferred_memory_format
from linksim.link.packing import complex_to_real, real_to_complex
from linksim.models import CentralClassifier, Sinfony, conv_kernels
from linksim.schemes.base import SchemeContext
from linksim.training import PiecewiseSchedule, Schedule, StepFn, TrainedWeights, TrainParams, fit_or_load, training_no

__all__ = [
    "SinfonyTrainParams",
    "SinfonyModelParams",
    "SinfonyParams",
    "SinfonyReference",
    "Variant",
    "training_images",
]

#: Table I: (residual units per stage, base width) of the ResNet per dataset (ResNet14 / ResNet20)
_ARCH = {"mnist": (2, 14), "cifar10": (3, 16)}

Variant = Literal["central", "perfect", "awgn", "awgn_trained", "txrx"]


class SinfonyTrainParams(TrainParams):
    """:class:`~linksim.training.TrainParams` with the paper's SINFONY recipe: SGD with momentum 0.9,
    lr 0.1 divided by 10 after epochs 3 and 6, batch 64, 20 epochs, L2 1e-4 on the conv kernels,
    training Es/N0 uniform in [-4, 6] dB per image (the variants trained noise-free ignore it)."""

    epochs: PositiveInt = 20
    batch_size: PositiveInt = 64
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: PositiveFloat = 0.1
    momentum: float = Field(0.9, ge=0, lt=1)
    schedule: Schedule = PiecewiseSchedule(milestones=[3, 6], decay=0.1)
    conv_l2: NonNegativeFloat = 1e-4
    snr_db: float | tuple[float, float] | None = (-4.0, 6.0)


class SinfonyModelParams(BaseModel):
    """The SINFONY model a scheme builds on, besides its variant: what the classifier and the Fig. 7
    baselines share, so that one ``scheme_defaults`` entry serves all of them.

    :param data: the image set (MNIST or CIFAR-10) and the evaluation sample (``data.eval_subset``:
        the same seeded test images for every scheme).
    :param power_norm: ``vector`` (per transmitted vector, the paper's) or ``batch`` (per element over
        the batch; running statistics in evaluation).
    :param train: the training recipe.
    """

    model_config = ConfigDict(extra="forbid")
    data: DataParams = DataParams(name="mnist")
    power_norm: Literal["vector", "batch"] = "vector"
    train: SinfonyTrainParams = SinfonyTrainParams()

    @model_validator(mode="after")
    def _known_dataset(self):
        if self.data.name not in _ARCH:
            raise ValueError(f"data.name: SINFONY is set up for {', '.join(_ARCH)} (found {self.data.name!r})")
        return self

    def reference_params(self, variant: Literal["perfect", "central"]) -> SinfonyParams:
        """The :class:`SinfonyParams` of the model with these values and ``variant``."""
        return SinfonyParams(variant=variant, data=self.data, power_norm=self.power_norm, train=self.train)


class SinfonyParams(SinfonyModelParams):
    """One SINFONY design variant (paper Sec. IV, Figs. 4-6).

    ``variant``:
      * ``central``: one ResNet on the whole image, no communication (reference line);
      * ``perfect``: four agents, features power-normalised and delivered error-free;
      * ``awgn``: the ``perfect`` model (same cached weights) evaluated over the channel;
      * ``awgn_trained``: the same architecture trained through the training channel;
      * ``txrx``: per-agent Tx (``n_tx`` real channel uses) and shared Rx (width ``n_rx``, default
        ``N_Feat``), trained through the channel.
    """

    variant: Variant = "txrx"
    n_tx: PositiveInt | None = None
    n_rx: PositiveInt | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.variant == "txrx" and self.n_tx is None:
            raise ValueError("variant txrx needs n_tx (real channel uses per agent)")
        if self.variant != "txrx" and (self.n_tx is not None or self.n_rx is not None):
            raise ValueError(f"n_tx/n_rx only apply to variant txrx, not {self.variant}")
        return self

    @property
    def trains_through_channel(self) -> bool:
        return self.variant in ("awgn_trained", "txrx")

    @property
    def uses_channel(self) -> bool:
        return self.variant not in ("central", "perfect")


def training_images(images: torch.Tensor, n: int | None) -> torch.Tensor:
    """The ``n`` training images a model with ``TrainParams.subset = n`` was trained on (the seeded
    sample :func:`~linksim.training.train` takes), or all of them for ``None``.

    :input images: [N, C, H, W], torch.uint8.
    :output: [min(n, N), C, H, W], torch.uint8.
    """
    if n is None or n >= len(images):
        return images
    return images[sample_indices(len(images), n)]


class SinfonyReference:
    """One SINFONY variant's network with its training and weight-cache entry.

    ``model`` is :class:`~linksim.models.Sinfony` (four agents; Table I sizes for ``data.name``,
    inputs of ``data.image_shape``) or, for ``central``, :class:`~linksim.models.CentralClassifier`.
    An image costs ``agents * n_tx`` real channel uses (``N_Tx = N_Feat`` without Tx layers; the
    central classifier is charged like ``perfect``).

    The transmitter does not depend on the SNR or the channel: ``encode`` (images ``[B, C, H, W]``
    float32 in [0, 1] -> Tx symbols ``[B, agents, n_tx]`` float32, or the central features
    ``[B, N_Feat]``) runs once per evaluation image (:meth:`transmitted_features`); :meth:`through`
    and ``decode`` (-> logits ``[B, classes]`` float32) run per SNR point.
    """

    def __init__(self, params: SinfonyParams):
        self.params = p = params
        in_ch, size, _ = p.data.image_shape
        units, width = _ARCH[p.data.name]
        if p.variant == "central":
            self.model = CentralClassifier(in_channels=in_ch, units_per_stage=units, base_width=width)
            self.agents, self.n_tx = 4, self.model.n_feat
            self.encode, self.decode = self.model.features, self.model.classifier
        else:
            self.model = Sinfony(in_channels=in_ch, image_size=size, units_per_stage=units, base_width=width,
                                 n_tx=p.n_tx, n_rx=p.n_rx, power_norm=p.power_norm)
            self.agents, self.n_tx = self.model.num_agents, self.model.n_tx
            self.encode, self.decode = self.model.encode, self.model.decode
        self._forward = self.model  # the training forward pass; through torch.compile when the run asks

    @property
    def trained_variant(self) -> Variant:
        """The variant whose weights this one uses (``awgn`` evaluates the ``perfect`` model)."""
        return "perfect" if self.params.variant == "awgn" else self.params.variant

    @property
    def train_params(self) -> TrainParams:
        """The recipe as trained: ``central`` and ``perfect`` train noise-free (no SNR, no channel)."""
        if self.params.trains_through_channel:
            return self.params.train
        return self.params.train.model_copy(update={"snr_db": None, "channel": None})

    def description(self) -> dict:
        """What determines the weights besides the recipe, the training channel and the seed
        (:func:`~linksim.training.fit_or_load` adds those)."""
        p = self.params
        return {"scheme": "sinfony/3",  # bump when the training semantics change: old weights must not be reused
                "dataset": p.data.name, "dataset_path": p.data.path, "variant": self.trained_variant,
                "n_tx": p.n_tx, "n_rx": p.n_rx, "power_norm": p.power_norm}

    def through(self, x: torch.Tensor, channel: Channel, no: torch.Tensor) -> torch.Tensor:
        """Transmit symbols through ``channel``: ``x [B, agents, n_tx]`` real, each image's agents
        packed into one row of unit-energy complex symbols (:func:`~linksim.link.packing.real_to_complex`),
        at noise variance ``no`` ([] or [B], linear) -> received reals of the same shape."""
        y, _ = channel(real_to_complex(x), no)
        return complex_to_real(y, (self.agents, self.n_tx))

    def step(self, params: TrainParams, channel: Channel | None) -> StepFn:
        """The training step: cross-entropy of the logits, through ``channel`` at an Es/N0 drawn per
        image (:func:`~linksim.training.training_no`), noise-free when ``params.snr_db`` is ``None``;
        metric ``accuracy`` (bool per image)."""

        def step(images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator):
            no = training_no(params.snr_db, len(labels), rng, images.device)
            if no is None:
                logits = self._forward(images)
            else:
                logits = self._forward(images, lambda x: self.through(x, channel, no))
            return F.cross_entropy(logits, labels), {"accuracy": logits.argmax(-1) == labels}

        return step

    def prepare(self, context: SchemeContext, name: str) -> TrainedWeights:
        """Train or load the weights (training log ``<run>/training/<name>.csv``) on the context's
        device and leave the model in eval mode."""
        p = self.params
        device = torch.device(context.device)
        self.model.to(device, memory_format=preferred_memory_format(device))
        if context.compile:
            self._forward = compiled(self.model, dynamic=False)
        params = self.train_params

        def data():
            train = p.data.training_set(context)
            return train.images.to(device), train.labels.to(device)

        weights = fit_or_load(context, self.model, name=name, description=self.description(), params=params,
                              step=self.step(params, context.train_channel_for(params.channel)), data=data,
                              l2_tensors=conv_kernels(self.model))
        self.model.eval()
        return weights

    @torch.no_grad()
    def transmitted_features(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The transmitter's output for uint8 ``images [N, C, H, W]``, ``batch_size`` images per
        forward pass, on the model's device (call after :meth:`prepare`: eval mode, so that
        ``power_norm: batch`` uses its running statistics and every image is encoded on its own).

        :output: [N, agents, n_tx] float32, the power-normalised Tx symbols (unit average power per
            real channel use); for ``central`` the ResNet features [N, N_Feat].
        """
        device = next(self.model.parameters()).device
        out = [self.encode(images[i : i + batch_size].to(device).float() / 255.0)
               for i in range(0, len(images), batch_size)]
        return torch.cat(out)
