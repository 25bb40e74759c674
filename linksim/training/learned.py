"""What every learned scheme's ``prepare`` shares: the cache key, load-or-train with per-epoch
checkpoints, warm starts from another scheme's weights, progress lines and the training log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from linksim.training.cache import load_or_train
from linksim.training.loop import EpochLog, StepFn, train
from linksim.training.params import TrainParams

__all__ = ["TrainedWeights", "fit_or_load", "load_matching"]


@dataclass(frozen=True)
class TrainedWeights:
    """The outcome of :func:`fit_or_load`: the training log, the weight-cache key, whether the
    weights came from the cache, the key of the weights it was warm-started from, and the precision
    of the training forward passes."""

    history: list[EpochLog]
    key: str
    reused: bool
    warm_start: str | None = None
    precision: str = "float32"

    def facts(self) -> dict:
        """What a scheme reports about its weights in the manifest."""
        out = {"weights": self.key, "weights_reused": self.reused, "epochs": len(self.history),
               "train_precision": self.precision}
        if self.warm_start:
            out["warm_start_weights"] = self.warm_start
        return out


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``state`` whose name and shape match one of ``model``'s; returns the names copied."""
    own = model.state_dict()
    shared = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not shared:
        raise ValueError("warm start: no parameter of the source model matches this model by name and shape")
    model.load_state_dict(shared, strict=False)
    return sorted(shared)


def fit_or_load(
    context,
    model: nn.Module,
    *,
    name: str,
    description: dict,
    params: TrainParams,
    step: StepFn,
    data: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    l2_tensors: Sequence[torch.Tensor] = (),
    finish: Callable[[], None] | None = None,
) -> TrainedWeights:
    """Load ``model``'s trained weights from the cache, or train and cache them.

    :param context: the run's :class:`~linksim.schemes.base.SchemeContext`.
    :param name: the scheme's name (progress lines and ``<run>/training/<name>.csv``).
    :param description: what determines the weights besides ``params``, the training channel, the
        warm start and the scenario seed, which are added here (architecture, dataset, variant;
        include a version tag to bump when the training semantics change).
    :param params: the training recipe; ``params.warm_start`` names another scheme of the scenario
        whose weights (prepared first, through ``context``) initialise every matching parameter;
        ``params.precision`` ``None`` takes the run's (``context.train_precision``).
    :param step: the training step (:data:`~linksim.training.loop.StepFn`).
    :param data: loads ``(inputs, targets)`` on the model's device; called only when training.
    :param l2_tensors: the tensors ``params.conv_l2`` applies to.
    :param finish: called after training, before the weights are stored: what is computed from the
        trained model and kept with it (a buffer of statistics over the training set).
    """
    params = params.model_copy(update={"precision": params.precision or context.train_precision})
    recipe = params.model_dump(mode="json")
    if params.precision == "float32":  # the keys of float32 weights are those from before the option
        del recipe["precision"]
    warm_key, warm_state = None, None
    if params.warm_start is not None:
        source = context.prepared_scheme(params.warm_start)
        warm_key = source.facts["weights"]
        warm_state = source.model.state_dict()
        recipe["warm_start"] = warm_key  # the weights, not the scenario's name for them
    full = {**description, "train": recipe,
            "train_channel": context.train_channel_spec_for(params.channel) if params.snr_db is not None else None,
            "seed": context.seed}
    run = context.run_dir.name if context.run_dir else ""

    def report(log: EpochLog) -> None:
        if context.progress:
            shown = " ".join(f"{k} {v:.4g}" for k, v in log.items() if k not in ("epoch", "lr", "wall_s"))
            print(f"  train {name} epoch {log['epoch']}: {shown} ({log['wall_s']:.0f} s) {run}", flush=True)

    def fit(checkpoint):
        if warm_state is not None and not checkpoint.is_file():
            load_matching(model, warm_state)
        inputs, targets = data()
        history = train(model, step, inputs, targets, params, seed=context.seed, l2_tensors=l2_tensors,
                        checkpoint=checkpoint, progress=report, cuda_graph=context.cuda_graphs)
        if finish is not None:
            finish()
        return history

    history, key, reused = load_or_train(model, full, fit, context.cache_dir)
    context.log_training(name or key, history)
    return TrainedWeights(history, key, reused, warm_key, params.precision)
