"""Which data a scheme uses: one params model shared by every scheme, with one evaluation-sampling rule."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    PositiveInt,
    field_validator,
    model_validator,
)

from linksim import registry
from linksim.data.base import ImageDataset

__all__ = ["DataParams", "EVAL_SAMPLE_SEED", "IMAGE_SHAPES"]

IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist": (1, 28, 28), "cifar10": (3, 32, 32), "synthetic-mnist": (1, 28, 28), "synthetic-cifar": (3, 32, 32),
    "cifar10-pooled": (3, 32, 32)}
"""``(C, H, W)`` of the registered datasets whose images have one fixed size (what a scheme sizes its
model and its channel uses by before any data is loaded); ``image-folder`` takes its size from
``data.image_size`` instead."""

IMAGE_FOLDER = "image-folder"
RESIZED: dict[str, int | None] = {IMAGE_FOLDER: None, "mini-imagenet": 256}
"""Datasets whose images are resized and centre-cropped to ``data.image_size`` squares, with the
default side (``None``: ``image_size`` is required)."""

EVAL_SAMPLE_SEED = 0
"""Seed of the evaluation sample: every scheme with the same ``eval_subset`` scores the same images."""


class DataParams(BaseModel):
    """A registered dataset, where to read it, and which of its test images to evaluate on.

    :param name: a registered dataset (``linksim list`` shows them): ``mnist``, ``cifar10``, ...
    :param path: a local copy (directory, zip, tarball; see the dataset's loader) instead of the
        download / cache path. Results from a re-encoded copy must say so (``dataset_source`` in the
        manifest names the copy).
    :param image_size: square side of ``image-folder`` and ``mini-imagenet`` images: each is resized
        (shorter side, bicubic) and centre-cropped to ``image_size x image_size``; required for
        ``image-folder`` (which also needs ``path``), 256 by default for ``mini-imagenet``, refused for
        every other dataset.
    :param train_per_class: train on ``train_per_class`` images of every class, drawn with the
        scenario-independent seed 0 (:meth:`ImageDataset.sample_per_class`; seed000's 14,400
        Mini-ImageNet images are 225 of each of 64 classes); ``None``: the whole training split.
    :param eval_subset: evaluate on ``eval_subset`` test images drawn without replacement with
        :data:`EVAL_SAMPLE_SEED`, kept in their original order (:meth:`ImageDataset.sample`), so a
        learned curve and its digital baseline score the same images; ``None``: the whole test split.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = "mnist"
    path: str | None = None
    image_size: PositiveInt | None = None
    eval_subset: PositiveInt | None = None
    train_per_class: PositiveInt | None = None

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        known = registry.datasets()
        if value not in known:
            raise ValueError(f"expected one of {', '.join(sorted(known))} (found {value!r})")
        return value

    @model_validator(mode="after")
    def _image_size(self):
        if self.name == IMAGE_FOLDER:
            if self.image_size is None:
                raise ValueError(f"data.image_size: {IMAGE_FOLDER} needs the square side its images are "
                                 "resized and centre-cropped to")
            if self.path is None:
                raise ValueError(f"data.path: {IMAGE_FOLDER} needs a directory or .zip laid out as "
                                 "<split>/<class>/<image>")
        elif self.image_size is not None and self.name not in RESIZED:
            raise ValueError(f"data.image_size: only {', '.join(RESIZED)} are resized ({self.name!r} has its own "
                             "size); remove the key")
        return self

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of this dataset's images: :data:`IMAGE_SHAPES`, or ``(3, side, side)`` for the
        :data:`RESIZED` sets (whose loaders read every image as RGB, grayscale ones too)."""
        if self.name in RESIZED:
            side = self._side
            return (3, side, side)
        if self.name not in IMAGE_SHAPES:
            raise ValueError(f"data.name: {self.name!r} has no fixed image size (expected one of "
                             f"{', '.join(IMAGE_SHAPES)})")
        return IMAGE_SHAPES[self.name]

    @property
    def _side(self) -> int | None:
        return self.image_size or RESIZED.get(self.name)

    def _size(self) -> dict:
        """``size=`` for :meth:`SchemeContext.dataset`, only for a resized set (contexts that predate it work on)."""
        return {} if self._side is None else {"size": self._side}

    def training_set(self, context) -> ImageDataset:
        """The training split (through the run's dataset cache, :meth:`SchemeContext.dataset`), or its
        ``train_per_class`` sample."""
        train = context.dataset(self.name, "train", self.path, **self._size())
        return train if self.train_per_class is None else train.sample_per_class(self.train_per_class)

    def evaluation_set(self, context) -> ImageDataset:
        """The test split, or its ``eval_subset`` sample."""
        test = context.dataset(self.name, "test", self.path, **self._size())
        if self.eval_subset is None:
            return test
        return test.sample(min(self.eval_subset, len(test)), seed=EVAL_SAMPLE_SEED)
