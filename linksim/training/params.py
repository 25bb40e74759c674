"""How a learned model is trained: optimizer, learning-rate schedule, validation, early stopping, training SNR."""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from linksim.accel import Precision

__all__ = [
    "PiecewiseSchedule",
    "CosineSchedule",
    "PlateauSchedule",
    "Schedule",
    "EarlyStopping",
    "TrainParams",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PiecewiseSchedule(_Strict):
    """``lr * decay ** (number of milestones <= epoch)``: the rate drops after each listed epoch."""

    type: Literal["piecewise"] = "piecewise"
    milestones: list[PositiveInt] = []
    decay: PositiveFloat = 0.1


class CosineSchedule(_Strict):
    """Per-epoch cosine from ``lr`` (first epoch) down to ``floor`` (last epoch)."""

    type: Literal["cosine"] = "cosine"
    floor: NonNegativeFloat = 0.0


class PlateauSchedule(_Strict):
    """Multiply the rate by ``factor`` (not below ``min_lr``) once more than ``patience`` epochs in a
    row did not improve the logged ``metric`` by more than the relative ``threshold``; the counter
    restarts after every drop. This is torch's ``ReduceLROnPlateau`` (``threshold_mode="rel"``,
    no cooldown; Keras drops one epoch earlier, after ``patience`` such epochs), replayed from the
    log so it resumes exactly."""

    type: Literal["plateau"] = "plateau"
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    factor: float = Field(0.1, gt=0, lt=1)
    patience: NonNegativeInt = 10
    threshold: NonNegativeFloat = 1e-4
    min_lr: NonNegativeFloat = 0.0


def _piecewise_by_default(value):
    """A schedule given without ``type`` is piecewise (``schedule: {milestones: [30]}``)."""
    if isinstance(value, dict) and "type" not in value:
        return {"type": "piecewise", **value}
    return value


Schedule = Annotated[Union[PiecewiseSchedule, CosineSchedule, PlateauSchedule], Field(discriminator="type"),
                     BeforeValidator(_piecewise_by_default)]


class EarlyStopping(_Strict):
    """Stop once the logged ``metric`` has not improved (relative ``threshold``) for ``patience``
    epochs; ``restore_best`` puts back the weights of the best epoch."""

    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: PositiveInt = 10
    threshold: NonNegativeFloat = 0.0
    restore_best: bool = True


class TrainParams(_Strict):
    """How a learned model is trained (every field enters the weight-cache key).

    ``optimizer``: ``sgd`` (with ``momentum``), ``adam`` or ``adamw``; ``weight_decay`` is torch's
    (coupled L2 for sgd/adam, decoupled for adamw). ``lr_scale``: parameter-name prefix -> factor on
    the learning rate (e.g. ``{"head.": 0.5}``); the first matching prefix wins. ``conv_l2`` adds
    ``conv_l2 * sum(w**2)`` over the tensors the scheme names (Keras ``l2`` on conv kernels).
    ``grad_clip``: clip the global gradient norm to this value.
    ``validation``: training examples held out as a validation split (a count, or a fraction in
    (0, 1)), drawn with a seed from the training set, never the test set; every epoch then also
    logs ``val_<metric>`` for each metric the step returns. ``subset``: train on a seeded sample of
    the training set (quick profiles), taken before the validation split.
    ``snr_db``: training Es/N0 in dB per complex channel use: a number (fixed), ``[low, high]``
    (uniform in dB, one draw per example) or ``None`` (noise-free).
    ``channel``: a channel preset to train through instead of the scenario's ``train_channel``.
    ``hflip``: random horizontal flips of training images (augmentation).
    ``warm_start``: the name of another scheme of the scenario whose trained weights initialise this
    model (every parameter with the same name and shape); its weight key enters this cache key.
    ``precision``: the training forward passes (the step and the validation) under bf16 autocast
    (``bfloat16``, :func:`~linksim.accel.autocast`) or in ``float32``; ``None``: the scenario's ``train_precision``. Weights, gradients,
    optimizer state and losses stay float32, and evaluation always runs in float32. bf16 pays on CPUs
    with AVX512-BF16 / AMX and on GPUs (``bench/training_precision.py`` measures it); ``bfloat16`` enters
    the cache key, ``float32`` leaves it as it was before the option existed.
    """

    epochs: PositiveInt = 20
    batch_size: PositiveInt = 64
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: PositiveFloat = 1e-3
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: NonNegativeFloat = 0.0
    lr_scale: dict[str, PositiveFloat] = {}
    validation: NonNegativeFloat = 0  # before schedule and early_stopping: their checks read it
    schedule: Schedule = PiecewiseSchedule()
    conv_l2: NonNegativeFloat = 0.0
    grad_clip: PositiveFloat | None = None
    early_stopping: EarlyStopping | None = None
    subset: PositiveInt | None = None
    snr_db: float | tuple[float, float] | None = None
    channel: str | None = None
    hflip: bool = False
    warm_start: str | None = None
    precision: Precision | None = None

    @field_validator("snr_db")
    @classmethod
    def _finite_snr(cls, value):
        values = value if isinstance(value, tuple) else (value,) if value is not None else ()
        if any(not math.isfinite(v) or abs(v) > 100 for v in values):
            raise ValueError(f"expected finite Es/N0 values in [-100, 100] dB, found {value}")
        if isinstance(value, tuple) and value[1] < value[0]:
            raise ValueError(f"expected [low, high] with low <= high, found {list(value)}")
        return value

    @field_validator("validation")
    @classmethod
    def _count_or_fraction(cls, value):
        if value >= 1 and value != int(value):
            raise ValueError(f"expected a count or a fraction in (0, 1), found {value}")
        return value

    # field validators (not one model validator), so that an error names the key at fault
    @field_validator("schedule", "early_stopping")
    @classmethod
    def _validation_for_val_metrics(cls, value, info: ValidationInfo):
        metric = getattr(value, "metric", None)
        if metric and metric.startswith("val_") and info.data.get("validation", 1) == 0:
            raise ValueError(f"metric {metric} needs a validation split (set validation: a count or a fraction)")
        return value

    @model_validator(mode="after")
    def _defaults_consistent(self):
        """The check above for defaults (a subclass's default schedule), which field validators skip."""
        for key in ("schedule", "early_stopping"):
            metric = getattr(getattr(self, key), "metric", None)
            if metric and metric.startswith("val_") and not self.validation:
                raise ValueError(f"{key}: metric {metric} needs a validation split (set validation: a count or a "
                                 "fraction)")
        return self

    def validation_count(self, n: int) -> int:
        """Examples held out of ``n`` training examples."""
        count = round(self.validation * n) if self.validation < 1 else int(self.validation)
        if count < 1 and self.validation:  # else no val_ metric would be logged, and nothing said
            raise ValueError(f"validation {self.validation} holds out no example of {n}")
        if count >= n:
            raise ValueError(f"validation {self.validation} leaves no training examples of {n}")
        return count
