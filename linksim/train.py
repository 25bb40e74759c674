"""The generic training loop of learned schemes: SGD/Adam, piecewise learning rate, Keras-style L2 on
conv kernels, per-epoch log, epoch checkpoints (training resumes), and a weight cache keyed by a hash
of everything that determines the weights."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt
from safetensors.torch import load_file, save
from sionna.phy import config as sionna_config
from torch import nn

from linksim.accel import CapturedStep
from linksim.atomic import atomic_write, atomic_write_text
from linksim.data.base import sample_indices

__all__ = ["TrainParams", "EpochLog", "model_cache_dir", "cache_key", "train", "write_log", "load_or_train"]

StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
"""``step(images [B, C, H, W] float in [0, 1], labels [B] int64, rng) -> (loss scalar, correct [B] bool)``
(with floating-point inputs, ``step`` gets them unscaled; ``labels`` may then be any per-example tensor)."""


class TrainParams(BaseModel):
    """How a learned scheme is trained.

    ``lr`` is multiplied by ``lr_decay`` after each epoch listed in ``lr_milestones``.
    ``conv_l2`` adds ``conv_l2 * sum(w**2)`` over the conv kernels to the loss (Keras ``l2``).
    ``snr_db``: training Es/N0 range in dB, drawn uniformly per example; ``None`` trains noise-free.
    ``subset``: train on a fixed random sample of ``subset`` training images (quick profiles).
    """

    model_config = ConfigDict(extra="forbid")
    epochs: PositiveInt = 20
    batch_size: PositiveInt = 64
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: PositiveFloat = 0.1
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_milestones: list[PositiveInt] = [3, 6]
    lr_decay: PositiveFloat = 0.1
    conv_l2: float = Field(1e-4, ge=0)
    snr_db: tuple[float, float] | None = (-4.0, 6.0)
    subset: PositiveInt | None = None


EpochLog = dict[str, float]


def model_cache_dir() -> Path:
    """``$LINKSIM_MODELS``, else ``$XDG_CACHE_HOME/linksim/models``, else ``~/.cache/linksim/models``."""
    if env := os.environ.get("LINKSIM_MODELS"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "linksim" / "models"


def cache_key(description: dict) -> str:
    """Stable hash of a JSON-able description of everything that determines trained weights."""
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _lr(params: TrainParams, epoch: int) -> float:
    return params.lr * params.lr_decay ** sum(epoch >= m for m in params.lr_milestones)


def _optimizer(model: nn.Module, params: TrainParams, capturable: bool) -> torch.optim.Optimizer:
    if params.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)
    # capturable: Adam keeps its step count on the device, so that a CUDA graph can replay the update
    return torch.optim.Adam(model.parameters(), lr=params.lr, capturable=capturable)


def train(
    model: nn.Module,
    step: StepFn,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: TrainParams,
    seed: int,
    conv_kernels: list[torch.Tensor] = (),
    checkpoint: Path | None = None,
    progress: Callable[[EpochLog], None] | None = None,
    cuda_graph: bool = False,
) -> list[EpochLog]:
    """Train ``model`` in place.

    :param step: forward pass of one batch (see :data:`StepFn`); the loop adds the L2 term.
    :param images: [N, C, H, W] uint8 training images (on the model's device); scaled to [0, 1] here.
        Floating-point inputs ``[N, ...]`` (e.g. feature elements) are passed to ``step`` as they are.
    :param labels: [N] int64 (or any tensor with N rows; indexed like ``images``).
    :param seed: seeds the shuffling and whatever randomness ``step`` draws from its generator.
    :param conv_kernels: tensors the ``conv_l2`` penalty applies to.
    :param checkpoint: file for a per-epoch checkpoint: training killed mid-way resumes from the last
        finished epoch with the same result as an uninterrupted run.
    :param cuda_graph: capture the whole step (``step``, L2 term, backward, optimizer) in a CUDA graph
        and replay it for every full batch (:class:`~linksim.accel.CapturedStep`; CUDA devices only).
        ``step`` must then draw its randomness from ``rng`` or Sionna's generator and never wait
        for the GPU.
    :output: one log entry per epoch: ``epoch, lr, loss, accuracy, wall_s``.
    """
    if params.subset is not None:
        idx = sample_indices(len(labels), min(params.subset, len(labels))).to(images.device)
        images, labels = images[idx], labels[idx]
    opt = _optimizer(model, params, capturable=cuda_graph)
    history: list[EpochLog] = []
    device = images.device
    rng = torch.Generator(device=device)
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history = state["history"]
    n = len(labels)
    # summed on the device: reading them every step would wait for the GPU after every batch
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct_sum = torch.zeros((), dtype=torch.int64, device=device)

    def one_step(idx: torch.Tensor) -> None:
        batch = images[idx]
        loss, correct = step(batch if batch.is_floating_point() else batch.float() / 255.0, labels[idx], rng)
        if params.conv_l2 and conv_kernels:
            loss = loss + params.conv_l2 * sum(w.square().sum() for w in conv_kernels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum.add_(loss.detach() * len(idx))
        correct_sum.add_(correct.sum())

    generators = (rng, sionna_config.torch_rng(str(device))) if cuda_graph else ()
    for epoch in range(len(history), params.epochs):
        model.train()
        rng.manual_seed(seed * 1000 + epoch)
        for group in opt.param_groups:
            group["lr"] = _lr(params, epoch)
        run_step = CapturedStep(one_step, generators, enabled=cuda_graph)  # per epoch: the lr is frozen in a graph
        order = torch.randperm(n, generator=rng, device=device)
        t0 = time.perf_counter()
        loss_sum.zero_()
        correct_sum.zero_()
        for start in range(0, n, params.batch_size):
            run_step(order[start : start + params.batch_size])
        history.append(
            {"epoch": epoch + 1, "lr": _lr(params, epoch), "loss": float(loss_sum) / n, "accuracy": int(correct_sum) / n,
             "wall_s": round(time.perf_counter() - t0, 3)}
        )
        if progress is not None:
            progress(history[-1])
        if checkpoint is not None:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history}
            atomic_write(checkpoint, lambda f: torch.save(state, f))
    return history


def write_log(history: list[EpochLog], path: Path) -> None:
    """Training curve as CSV (epoch, lr, loss, accuracy, wall_s)."""
    if not history:
        return
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, out.getvalue())


def load_or_train(
    model: nn.Module, description: dict, fit: Callable[[Path], list[EpochLog]], cache: Path | None = None
) -> tuple[list[EpochLog], str, bool]:
    """Load ``model``'s weights from the cache, or call ``fit(checkpoint_path)`` and store them.

    :param description: everything that determines the weights (hashed into the cache key).
    :output: (training history, cache key, whether the weights were reused).
    """
    cache = cache or model_cache_dir()
    key = cache_key(description)
    weights, meta = cache / f"{key}.safetensors", cache / f"{key}.json"
    if weights.is_file() and meta.is_file():
        model.load_state_dict(load_file(str(weights), device=str(next(model.parameters()).device)))
        return json.loads(meta.read_text())["history"], key, True
    cache.mkdir(parents=True, exist_ok=True)
    checkpoint = cache / f"{key}.partial.pt"
    history = fit(checkpoint)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(weights, lambda f: f.write(save(state)))
    atomic_write_text(meta, json.dumps({"description": description, "history": history}, indent=1, default=str))
    checkpoint.unlink(missing_ok=True)
    return history, key, False
