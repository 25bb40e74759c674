"""The generic training loop: a step returns a loss and named per-example metrics; the loop adds
regularisation, steps the optimizer, logs every metric per epoch on the training and validation
splits, follows the schedule, stops early, checkpoints every epoch and resumes exactly."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from sionna.phy import config as sionna_config
from torch import nn

from linksim.accel import CapturedStep, Precision, autocast
from linksim.atomic import atomic_write
from linksim.data.base import sample_indices
from linksim.training.params import TrainParams
from linksim.training.schedules import best_epoch, learning_rate, should_stop

__all__ = ["StepFn", "EpochLog", "train", "split_validation", "make_optimizer"]

StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""``step(inputs, targets, rng) -> (loss, metrics)``.

``inputs``: a batch of the training inputs (uint8 images arrive as float32 in [0, 1]; floating-point
inputs as they are); ``targets``: the matching rows of the targets (labels, or anything indexed like
the inputs); ``rng``: the generator for whatever the step draws (training SNR, sampling noise).
``loss``: scalar tensor to minimise; ``metrics``: name -> per-example values ``[B]`` (or a scalar
batch mean), averaged over the epoch into the log (``accuracy``, ``psnr_db``, ``kl``, ...).
"""

EpochLog = dict[str, float]
_VAL_SEED = 7_919  # the validation split and its noise: one fixed draw per training seed


def split_validation(n: int, params: TrainParams, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation indices (sorted int64) into ``n`` training examples, drawn with ``seed``."""
    count = params.validation_count(n) if params.validation else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + _VAL_SEED))
    return perm[count:].sort().values, perm[:count].sort().values


def make_optimizer(model: nn.Module, params: TrainParams, capturable: bool = False) -> torch.optim.Optimizer:
    """The optimizer with one parameter group per ``lr_scale`` factor (``group["lr_scale"]``)."""
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = next((f for prefix, f in params.lr_scale.items() if name.startswith(prefix)), 1.0)
        groups.setdefault(scale, []).append(p)
    param_groups = [{"params": ps, "lr_scale": f} for f, ps in groups.items()]
    wd = params.weight_decay
    if params.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=params.lr, momentum=params.momentum, weight_decay=wd)
    # capturable: Adam keeps its step count on the device, so that a CUDA graph can replay the update
    cls = torch.optim.Adam if params.optimizer == "adam" else torch.optim.AdamW
    return cls(param_groups, lr=params.lr, weight_decay=wd, capturable=capturable)


def _rng_states(device: torch.device) -> dict:
    states = {"torch": torch.get_rng_state(), "sionna": sionna_config.torch_rng(str(device)).get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    sionna_config.torch_rng(str(device)).set_state(states["sionna"])
    if "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def _load_checkpoint(checkpoint: Path | None, device: torch.device) -> dict | None:
    """The checkpoint's state, or ``None`` when there is none or it cannot be read (then reported and
    training starts afresh)."""
    if checkpoint is None or not checkpoint.is_file():
        return None
    try:
        return torch.load(checkpoint, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file is never trusted
        warnings.warn(f"{checkpoint}: unreadable training checkpoint ({type(err).__name__}); training from "
                      "the first epoch", RuntimeWarning, stacklevel=3)
        return None


def _as_float(batch: torch.Tensor) -> torch.Tensor:
    return batch if batch.is_floating_point() else batch.float() / 255.0


def _hflip(batch: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(batch), generator=rng, device=batch.device) < 0.5
    return torch.where(flip.reshape(-1, *([1] * (batch.dim() - 1))), batch.flip(-1), batch)


def _add(sums: dict[str, torch.Tensor], metrics: dict[str, torch.Tensor], count: int) -> None:
    for name, value in metrics.items():
        value = value.detach()
        total = value.sum() if value.dim() else value * count
        if name not in sums:
            sums[name] = torch.zeros((), dtype=torch.float64, device=value.device)
        sums[name].add_(total)


@torch.no_grad()
def _validate(model: nn.Module, step: StepFn, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int,
              seed: int, precision: Precision) -> EpochLog:
    """Mean loss and metrics over the validation split, the model in eval mode, fixed noise per seed."""
    model.eval()
    rng = torch.Generator(device=inputs.device).manual_seed(seed * 1000 + _VAL_SEED)
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, len(inputs), batch_size):
        batch = slice(start, start + batch_size)
        with autocast(precision, inputs.device):
            loss, metrics = step(_as_float(inputs[batch]), targets[batch], rng)
        _add(sums, {"loss": loss, **metrics}, len(inputs[batch]))
    return {f"val_{k}": float(v) / len(inputs) for k, v in sums.items()}


def train(
    model: nn.Module,
    step: StepFn,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    params: TrainParams,
    seed: int,
    l2_tensors: Sequence[torch.Tensor] = (),
    checkpoint: Path | None = None,
    progress: Callable[[EpochLog], None] | None = None,
    cuda_graph: bool = False,
) -> list[EpochLog]:
    """Train ``model`` in place.

    :param step: forward pass of one batch (see :data:`StepFn`); the loop adds the ``conv_l2`` term.
    :param inputs: [N, ...] training inputs on the model's device: uint8 images ``[N, C, H, W]``
        (scaled to [0, 1] per batch) or floating-point values passed as they are.
    :param targets: [N, ...] (labels, or anything indexed like ``inputs``).
    :param seed: seeds the validation split, the shuffling and the step's generator; the ``subset``
        is the same sample for every seed (:func:`~linksim.data.base.sample_indices` with seed 0,
        which the SINFONY baselines repeat to find a model's training images).
    :param l2_tensors: the tensors ``conv_l2`` applies to.
    :param checkpoint: file for a per-epoch checkpoint (weights, optimizer, log, random states, best
        weights): a training killed mid-way resumes from its last finished epoch to the result of
        an uninterrupted run.
    :param cuda_graph: capture the whole step (``step``, L2 term, backward, optimizer) in a CUDA graph
        and replay it for every full batch (:class:`~linksim.accel.CapturedStep`; CUDA devices only);
        ``step`` must then draw its randomness from ``rng`` or Sionna's generator and never wait for
        the GPU.
    :output: one log entry per epoch: ``epoch, lr, loss``, the step's metrics, ``val_loss`` and
        ``val_<metric>`` with a validation split, ``wall_s``. With early stopping the log ends at
        the stopping epoch and, with ``restore_best``, the model holds the best epoch's weights.
    """
    if params.subset is not None:
        idx = sample_indices(len(targets), min(params.subset, len(targets))).to(inputs.device)
        inputs, targets = inputs[idx], targets[idx]
    if params.validation:
        train_idx, val_idx = (i.to(inputs.device) for i in split_validation(len(targets), params, seed))
        val_inputs, val_targets = inputs[val_idx], targets[val_idx]
        inputs, targets = inputs[train_idx], targets[train_idx]
    opt = make_optimizer(model, params, capturable=cuda_graph)
    history: list[EpochLog] = []
    best_state = None
    device = inputs.device
    rng = torch.Generator(device=device)
    state = _load_checkpoint(checkpoint, device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, best_state = state["history"], state.get("best_model")
        if "rng" in state:
            _set_rng_states(state["rng"], device)
    n = len(targets)
    precision = params.precision or "float32"
    # summed on the device: reading them every step would wait for the GPU after every batch
    sums: dict[str, torch.Tensor] = {}

    def one_step(idx: torch.Tensor) -> None:
        batch = _as_float(inputs[idx])
        if params.hflip:
            batch = _hflip(batch, rng)
        with autocast(precision, device):
            loss, metrics = step(batch, targets[idx], rng)
        if params.conv_l2 and l2_tensors:
            loss = loss + params.conv_l2 * sum(w.square().sum() for w in l2_tensors)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if params.grad_clip is not None:
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], params.grad_clip)
        opt.step()
        _add(sums, {"loss": loss, **metrics}, len(idx))

    generators = (rng, sionna_config.torch_rng(str(device))) if cuda_graph else ()
    rule = params.early_stopping
    for epoch in range(len(history), params.epochs):
        if should_stop(rule, history):
            break
        model.train()
        rng.manual_seed(seed * 1000 + epoch)
        lr = learning_rate(params, epoch, history)
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_scale"]
        run_step = CapturedStep(one_step, generators, enabled=cuda_graph)  # per epoch: the lr is frozen in a graph
        order = torch.randperm(n, generator=rng, device=device)
        t0 = time.perf_counter()
        for total in sums.values():
            total.zero_()
        for start in range(0, n, params.batch_size):
            run_step(order[start : start + params.batch_size])
        log: EpochLog = {"epoch": epoch + 1, "lr": lr, **{k: float(v) / n for k, v in sums.items()}}
        if params.validation:
            log.update(_validate(model, step, val_inputs, val_targets, params.batch_size, seed, precision))
        log["wall_s"] = round(time.perf_counter() - t0, 3)
        history.append(log)
        if rule is not None and rule.restore_best and best_epoch(rule, history) == len(history) - 1:
            best_state = copy.deepcopy(model.state_dict())
        if checkpoint is not None:  # before the report: a kill while reporting loses nothing
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history,
                     "rng": _rng_states(device), "best_model": best_state}
            atomic_write(checkpoint, lambda f: torch.save(state, f))
        if progress is not None:
            progress(log)
    if rule is not None and rule.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history
