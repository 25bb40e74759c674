"""linksim.training: the loop's log, validation split, schedules, early stopping, optimizers, the
training SNR, augmentation, exact resumption from checkpoints, the weight cache and warm starts.

Everything runs on toy models and synthetic tensors in well under a second per test.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch
from pydantic import ValidationError
from sionna.phy import config as sionna_config
from torch import nn

from linksim.channels import AWGNChannel
from linksim.data.base import sample_indices
from linksim.link.packing import complex_to_real, real_to_complex
from linksim.snr import esno_db_to_no
from linksim.training import (
    EarlyStopping,
    PlateauSchedule,
    Schedule,
    TrainParams,
    best_epoch,
    cache_key,
    fit_or_load,
    learning_rate,
    load_or_train,
    make_optimizer,
    should_stop,
    split_validation,
    train,
    training_no,
)
from linksim.training import loop as loop_module


class Scalar(nn.Module):
    """One trainable scalar: a model whose loss the step controls completely."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(value))


def seed_everything(seed: int) -> None:
    """As :func:`linksim.engine.seed_everything` (not imported: the engine imports every scheme)."""
    sionna_config.seed = seed
    torch.manual_seed(seed)


def _params(**kw) -> TrainParams:
    return TrainParams(**{"epochs": 1, "batch_size": 4, "optimizer": "sgd", "momentum": 0.0, "lr": 0.1, **kw})


def _no_wall(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in log.items() if k != "wall_s"} for log in history]


# ---------------------------------------------------------------- the log and the validation split


def test_log_holds_the_epoch_means_of_whatever_the_step_returns():
    """Per-example metrics and scalar batch means are averaged over the epoch's examples (the last,
    shorter batch weighted by its size); the loss likewise; targets = indices, so the means are known."""
    inputs, targets = torch.zeros(10, 1), torch.arange(10.0)

    def step(x, t, rng):
        return t.mean() + 0.0 * model.w, {"index": t, "twice": 2 * t, "const": torch.tensor(3.0)}

    model = Scalar()
    history = train(model, step, inputs, targets, _params(epochs=2), seed=0)
    assert [log["epoch"] for log in history] == [1, 2]
    for log in history:
        assert set(log) == {"epoch", "lr", "loss", "index", "twice", "const", "wall_s"}
        assert log["index"] == 4.5 and log["twice"] == 9.0 and log["const"] == 3.0
        assert log["loss"] == pytest.approx(4.5, rel=1e-7)  # batch means of 4, 4, 2 examples


def test_validation_split_is_seeded_disjoint_and_logged_as_val_metrics():
    n = 50
    params = _params(validation=0.2)
    train_idx, val_idx = split_validation(n, params, seed=3)
    assert len(val_idx) == 10 and len(train_idx) == 40
    assert sorted(torch.cat([train_idx, val_idx]).tolist()) == list(range(n))  # disjoint, complete
    again = split_validation(n, params, seed=3)
    assert torch.equal(again[0], train_idx) and torch.equal(again[1], val_idx)
    assert not torch.equal(split_validation(n, params, seed=4)[1], val_idx)
    assert len(split_validation(n, _params(validation=7), seed=3)[1]) == 7  # a count

    model = Scalar()
    seen = []

    def step(x, t, rng):
        if model.training:
            seen.append(t.clone())
        return t.mean() + 0.0 * model.w, {"index": t}

    history = train(model, step, torch.zeros(n, 1), torch.arange(float(n)), params, seed=3)
    trained_on = torch.cat(seen).long().sort().values
    assert torch.equal(trained_on, train_idx)  # the validation examples are never trained on
    log = history[0]
    assert log["index"] == pytest.approx(train_idx.double().mean().item(), rel=1e-12)
    assert log["val_index"] == pytest.approx(val_idx.double().mean().item(), rel=1e-12)
    assert log["val_loss"] == pytest.approx(val_idx.double().mean().item(), rel=1e-6)


def test_validation_that_leaves_no_training_or_no_validation_example_is_refused():
    with pytest.raises(ValueError, match="leaves no training examples"):
        split_validation(5, _params(validation=5), seed=0)
    with pytest.raises(ValueError, match="holds out no example of 100"):  # else no val_ metric, silently
        split_validation(100, _params(validation=0.001), seed=0)


def test_subset_is_one_fixed_sample_taken_before_the_validation_split():
    model = Scalar()
    seen = {True: [], False: []}

    def step(x, t, rng):
        seen[model.training].append(t.clone())
        return 0.0 * model.w, {}

    for seed in (0, 1):
        seen[True].clear(), seen[False].clear()
        train(model, step, torch.zeros(100, 1), torch.arange(100.0), _params(subset=20, validation=5), seed=seed)
        used = torch.cat(seen[True] + seen[False]).long().sort().values
        assert torch.equal(used, sample_indices(100, 20))  # the same 20 whatever the seed
        assert len(torch.cat(seen[False])) == 5


# ---------------------------------------------------------------- schedules


def test_piecewise_schedule_drops_after_each_milestone():
    p = _params(lr=1.0, epochs=6, schedule={"type": "piecewise", "milestones": [2, 4], "decay": 0.5})
    assert [learning_rate(p, e, []) for e in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert _params(schedule={"milestones": [2]}).schedule == p.schedule.model_copy(update={"milestones": [2], "decay": 0.1})


def test_cosine_schedule_runs_from_lr_to_the_floor():
    p = _params(lr=0.1, epochs=5, schedule={"type": "cosine", "floor": 0.01})
    lrs = [learning_rate(p, e, []) for e in range(5)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)
    assert lrs[2] == pytest.approx(0.055)  # the midpoint
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert learning_rate(_params(lr=0.1, epochs=1, schedule={"type": "cosine", "floor": 0.01}), 0, []) == 0.1


def test_plateau_schedule_replays_torch_reduce_on_plateau():
    """A handmade log: the rate drops once the metric has not improved for more than ``patience``
    epochs, and the count starts again after each drop; the same as torch's ReduceLROnPlateau."""
    values = [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 2.0]
    history = [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(values)]
    p = _params(lr=1.0, epochs=len(values) + 1, validation=0.1,
                schedule={"type": "plateau", "patience": 2, "factor": 0.5, "min_lr": 0.2})
    ours = [learning_rate(p, e, history) for e in range(len(values) + 1)]
    # epochs 2-4 no better than 4.0: after the third (more than 2) the rate halves; 6-11 likewise
    # twice (the count restarts after the first drop), the second drop clipped at min_lr
    assert ours == [1.0] * 5 + [0.5] * 4 + [0.25] * 3 + [0.2] * 2

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, threshold=1e-4,
                                                     threshold_mode="rel", min_lr=0.2)
    theirs = [1.0]
    for v in values:
        ref.step(v)
        theirs.append(opt.param_groups[0]["lr"])
    assert ours == pytest.approx(theirs)


def test_plateau_schedule_drives_the_loop_from_the_logged_metric():
    model = Scalar()
    step = lambda x, t, rng: (0.0 * model.w + 1.0, {})  # a loss that never improves
    p = _params(epochs=5, lr=1.0, schedule={"type": "plateau", "metric": "loss", "patience": 1, "factor": 0.1})
    lrs = [log["lr"] for log in train(model, step, torch.zeros(4, 1), torch.zeros(4), p, seed=0)]
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1])


def test_an_unlogged_schedule_metric_is_reported_with_the_logged_ones():
    p = _params(epochs=3, schedule={"type": "plateau", "metric": "accuracy"})
    model = Scalar()
    with pytest.raises(ValueError, match="'accuracy' is not logged.*loss"):
        train(model, lambda x, t, rng: (0.0 * model.w, {}), torch.zeros(4, 1), torch.zeros(4), p, seed=0)


# ---------------------------------------------------------------- early stopping


def test_should_stop_after_patience_epochs_without_improvement():
    rule = EarlyStopping(metric="val_loss", patience=2)
    logs = [{"val_loss": v} for v in (3.0, 2.0, 2.5, 2.1, 1.0)]
    assert [should_stop(rule, logs[:k]) for k in range(6)] == [False, False, False, False, True, False]
    assert best_epoch(rule, logs) == 4
    assert best_epoch(EarlyStopping(metric="acc", mode="max", patience=1), [{"acc": a} for a in (0.1, 0.5, 0.3)]) == 1
    assert best_epoch(rule, []) is None and not should_stop(None, logs)


def test_early_stopping_ends_training_and_restores_the_best_epochs_weights():
    """The scalar walks down by lr per epoch; the logged metric is best at epoch 3 (w = -0.3) and
    worse afterwards: training stops after ``patience`` more epochs with the epoch-3 weights."""
    model = Scalar()
    target = {1: 3.0, 2: 2.0, 3: 1.0}

    def step(x, t, rng):
        epoch = round(-model.w.item() / 0.1) + 1  # one step per epoch: w = -0.1 * (epoch - 1)
        return model.w, {"score": torch.tensor(target.get(epoch, 5.0))}

    rule = {"metric": "score", "patience": 2}
    history = train(model, step, torch.zeros(4, 1), torch.zeros(4), _params(epochs=20, lr=0.1, early_stopping=rule),
                    seed=0)
    assert [log["epoch"] for log in history] == [1, 2, 3, 4, 5]
    assert model.w.item() == pytest.approx(-0.3)  # after epoch 3, not -0.5 after epoch 5

    model = Scalar()
    train(model, step, torch.zeros(4, 1), torch.zeros(4),
          _params(epochs=20, lr=0.1, early_stopping={**rule, "restore_best": False}), seed=0)
    assert model.w.item() == pytest.approx(-0.5)


# ---------------------------------------------------------------- optimizers, clipping, groups


def test_gradient_clipping_bounds_the_update():
    def run(clip):
        model = nn.Linear(8, 1)
        before = torch.cat([p.detach().clone().flatten() for p in model.parameters()])
        step = lambda x, t, rng: ((model(x).squeeze(1) - t).square().mean() * 1e4, {})
        train(model, step, torch.randn(4, 8), torch.randn(4) * 100, _params(lr=1.0, grad_clip=clip), seed=0)
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        return (after - before).norm().item()

    torch.manual_seed(0)
    free = run(None)
    torch.manual_seed(0)
    clipped = run(0.5)
    assert free > 10.0
    assert clipped == pytest.approx(0.5, rel=1e-4)  # one SGD step of lr 1 on a gradient of norm 0.5


def test_lr_scale_gives_the_named_group_a_scaled_learning_rate():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = Scalar(), Scalar()

    def update(lr_scale):
        model = Two()
        step = lambda x, t, rng: (model.body.w + model.head.w, {})  # gradient 1 for both
        p = _params(lr=0.1, epochs=2, lr_scale=lr_scale, schedule={"milestones": [1], "decay": 0.5})
        train(model, step, torch.zeros(4, 1), torch.zeros(4), p, seed=0)
        return model.body.w.item(), model.head.w.item()

    assert update({}) == pytest.approx((-0.15, -0.15))
    assert update({"head.": 0.2}) == pytest.approx((-0.15, -0.03))  # (0.1 + 0.05) * 0.2: the schedule applies too
    opt = make_optimizer(Two(), _params(lr_scale={"head.": 0.2}))
    assert sorted(g["lr_scale"] for g in opt.param_groups) == [0.2, 1.0]


@pytest.mark.parametrize(("name", "cls"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                           ("adamw", torch.optim.AdamW)])
def test_each_optimizer_constructs_and_trains(name, cls):
    model = nn.Linear(3, 1)
    p = TrainParams(optimizer=name, lr=0.01, weight_decay=1e-3, epochs=3, batch_size=8)
    opt = make_optimizer(model, p)
    assert type(opt) is cls and opt.param_groups[0]["weight_decay"] == 1e-3
    x = torch.randn(32, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    history = train(model, lambda a, t, rng: ((model(a).squeeze(1) - t).square().mean(), {}), x, y, p, seed=0)
    assert history[-1]["loss"] < history[0]["loss"]


def test_conv_l2_adds_the_penalty_on_the_named_tensors():
    model = Scalar(2.0)
    history = train(model, lambda x, t, rng: (0.0 * model.w, {}), torch.zeros(4, 1), torch.zeros(4),
                    _params(conv_l2=0.5, lr=0.1), seed=0, l2_tensors=[model.w])
    assert history[0]["loss"] == pytest.approx(0.5 * 4.0)
    assert model.w.item() == pytest.approx(2.0 - 0.1 * 0.5 * 2 * 2.0)


# ---------------------------------------------------------------- training SNR, augmentation


def test_training_no_fixed_or_uniform_in_db_per_example():
    g = torch.Generator().manual_seed(0)
    fixed = training_no(7.0, 5, g, "cpu")
    assert fixed.shape == (5,) and torch.allclose(fixed, torch.full((5,), 10 ** -0.7))
    assert training_no(None, 5, g, "cpu") is None
    no = training_no((0.0, 10.0), 4000, torch.Generator().manual_seed(1), "cpu")
    db = -10 * torch.log10(no)
    assert no.shape == (4000,) and no.dtype == torch.float32
    assert db.min() >= -1e-4 and db.max() <= 10 + 1e-4
    assert abs(db.mean().item() - 5.0) < 0.2 and abs(db.std().item() - 10 / math.sqrt(12)) < 0.1  # uniform in dB
    assert len(torch.unique(no)) > 3900  # one draw per example
    assert torch.equal(no, training_no((0.0, 10.0), 4000, torch.Generator().manual_seed(1), "cpu"))
    assert torch.allclose(esno_db_to_no(torch.tensor(7.0)), fixed[0])


def test_hflip_flips_about_half_of_the_training_images():
    n = 400
    images = torch.arange(4, dtype=torch.uint8).repeat(n, 1, 4, 1)  # [n, 1, 4, 4]: every row 0 1 2 3
    model = Scalar()
    flipped = []

    def step(x, t, rng):
        pixels = (x * 255).round()
        mirrored = pixels[:, 0, 0, 0] == 3
        original = images[: len(x)].float()
        assert torch.equal(pixels, torch.where(mirrored[:, None, None, None], original.flip(-1), original))
        flipped.append(mirrored)
        return 0.0 * model.w, {}

    train(model, step, images, torch.zeros(n), _params(hflip=True, batch_size=50), seed=0)
    share = torch.cat(flipped).float().mean().item()
    assert 0.4 < share < 0.6
    flipped.clear()
    train(model, step, images, torch.zeros(n), _params(batch_size=50), seed=0)
    assert not torch.cat(flipped).any()


# ---------------------------------------------------------------- checkpoints: exact resumption


class TinyLink(nn.Module):
    """Reals -> 4 complex symbols -> AWGN (Sionna's generator) -> reals; with dropout (torch's global generator)."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec, self.drop = nn.Linear(6, 8), nn.Linear(8, 6), nn.Dropout(0.2)
        self.channel = AWGNChannel()

    def forward(self, x, no):
        z = self.drop(self.enc(x))
        z = z / z.square().mean(dim=1, keepdim=True).sqrt()
        y, _ = self.channel(real_to_complex(z.unsqueeze(1)), no)
        return self.dec(complex_to_real(y, (1, 8)).squeeze(1))


def _link_run(seed_before: int, checkpoint: Path | None = None, stop_at: int | None = None, **params):
    seed_everything(5)
    model = TinyLink()
    gen = torch.Generator().manual_seed(9)
    inputs = torch.randn(60, 6, generator=gen)

    def step(x, t, rng):
        no = training_no((0.0, 10.0), len(x), rng, x.device)
        mse = (model(x, no) - t).square().mean(dim=1)
        return mse.mean(), {"mse": mse.detach()}

    def progress(log):
        if stop_at is not None and log["epoch"] == stop_at:
            raise KeyboardInterrupt("killed")

    seed_everything(seed_before)  # the random state the training starts in (a fresh process: anything)
    p = TrainParams(epochs=5, batch_size=16, lr=3e-3, validation=12, early_stopping={"metric": "val_loss",
                    "patience": 3}, **params)
    history = train(model, step, inputs, inputs, p, seed=2, checkpoint=checkpoint, progress=progress)
    return model, history


def test_a_killed_training_resumes_to_the_uninterrupted_result(tmp_path):
    whole_model, whole = _link_run(seed_before=1)
    ckpt = tmp_path / "run.partial.pt"
    with pytest.raises(KeyboardInterrupt):
        _link_run(seed_before=1, checkpoint=ckpt, stop_at=3)
    assert ckpt.is_file()
    # a new process: other weights at construction and other generator states, all replaced from the checkpoint
    model, history = _link_run(seed_before=123, checkpoint=ckpt)
    assert _no_wall(history) == _no_wall(whole)
    for (name, a), b in zip(whole_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_resumption_depends_on_the_saved_random_states(tmp_path, monkeypatch):
    """The previous test has power: without restoring the generators the resumed run differs."""
    _, whole = _link_run(seed_before=1)
    ckpt = tmp_path / "run.partial.pt"
    with pytest.raises(KeyboardInterrupt):
        _link_run(seed_before=1, checkpoint=ckpt, stop_at=2)
    monkeypatch.setattr(loop_module, "_set_rng_states", lambda states, device: None)
    _, history = _link_run(seed_before=123, checkpoint=ckpt)
    assert _no_wall(history)[:1] == _no_wall(whole)[:1]  # epoch 1 from the checkpoint (killed in epoch 2)
    assert _no_wall(history)[1:] != _no_wall(whole)[1:]


def test_an_unreadable_checkpoint_restarts_from_the_first_epoch_with_a_warning(tmp_path):
    _, whole = _link_run(seed_before=1)
    ckpt = tmp_path / "run.partial.pt"
    ckpt.write_bytes(torch.randint(0, 256, (300,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    with pytest.warns(RuntimeWarning, match="unreadable training checkpoint"):
        _, history = _link_run(seed_before=1, checkpoint=ckpt)
    assert _no_wall(history) == _no_wall(whole)


# ---------------------------------------------------------------- the weight cache


def _fit_counting(model: nn.Module, calls: list):
    def fit(checkpoint: Path):
        calls.append(checkpoint)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        return [{"epoch": 1, "lr": 0.1, "loss": 0.5, "wall_s": 0.0}]

    return fit


def test_load_or_train_reuses_the_cache_and_rebuilds_a_truncated_entry(tmp_path):
    torch.manual_seed(0)
    description = {"scheme": "toy/1", "width": 3}
    trained, calls = nn.Linear(3, 2), []
    history, key, reused = load_or_train(trained, description, _fit_counting(trained, calls), tmp_path)
    assert not reused and len(calls) == 1 and key == cache_key(description)
    assert calls[0] == tmp_path / f"{key}.partial.pt" and not calls[0].exists()
    meta = json.loads((tmp_path / f"{key}.json").read_text())
    assert meta["description"] == description and meta["history"] == history

    fresh = nn.Linear(3, 2)
    history2, key2, reused2 = load_or_train(fresh, description, _fit_counting(fresh, calls), tmp_path)
    assert reused2 and len(calls) == 1 and key2 == key and history2 == history  # fit not called
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))

    weights = tmp_path / f"{key}.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.warns(RuntimeWarning, match="unreadable cached weights"):
        _, _, reused3 = load_or_train(nn.Linear(3, 2), description, _fit_counting(fresh, calls), tmp_path)
    assert not reused3 and len(calls) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt entry is whole again
        assert load_or_train(nn.Linear(3, 2), description, _fit_counting(fresh, calls), tmp_path)[2]

    other = load_or_train(nn.Linear(3, 2), {**description, "width": 4}, _fit_counting(fresh, calls), tmp_path)
    assert other[1] != key and not other[2]


def test_a_flipped_bit_in_cached_weights_is_detected_and_retrained(tmp_path):
    torch.manual_seed(0)
    description, calls = {"scheme": "toy/1"}, []
    model = nn.Linear(3, 2)
    _, key, _ = load_or_train(model, description, _fit_counting(model, calls), tmp_path)
    meta = json.loads((tmp_path / f"{key}.json").read_text())
    assert meta["torch_threads"] == torch.get_num_threads() and len(meta["weights_sha256"]) == 64
    weights = tmp_path / f"{key}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # the last byte is weight data: the file still parses, one value changed
    weights.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="differs from the recorded"):
        _, _, reused = load_or_train(nn.Linear(3, 2), description, _fit_counting(model, calls), tmp_path)
    assert not reused and len(calls) == 2
    assert load_or_train(nn.Linear(3, 2), description, _fit_counting(model, calls), tmp_path)[2]


class Net(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.out = nn.Linear(4, hidden)


class FakeContext:
    """Just what :func:`fit_or_load` and a scheme's step ask of a :class:`~linksim.schemes.base.SchemeContext`."""

    def __init__(self, cache_dir: Path, sources: dict | None = None):
        self.cache_dir, self.run_dir, self.seed = cache_dir, None, 4
        self.progress, self.cuda_graphs, self.train_precision = False, False, "float32"
        self.sources = sources or {}
        self.logged: dict[str, list] = {}

    def prepared_scheme(self, name):
        return self.sources[name]

    def train_channel_for(self, preset):
        return AWGNChannel()

    train_channel: ClassVar[dict] = {"name": "awgn", "type": "awgn", "params": {}}  # the scenario's

    def train_channel_spec_for(self, preset):
        return self.train_channel if preset is None else {"name": preset, "type": preset, "params": {}}

    def log_training(self, name, history):
        self.logged[name] = history


def _fit(context, model, params, seen=None, description=None):
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))

    def step(inputs, targets, rng):
        if seen is not None and not seen:
            seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return model.out(model.shared(inputs)).square().mean(), {}

    return fit_or_load(context, model, name="toy", description=description or {"scheme": "toy/1"}, params=params,
                       step=step, data=lambda: (x, x))


def test_fit_or_load_warm_starts_from_the_source_schemes_matching_parameters(tmp_path):
    torch.manual_seed(0)
    p = TrainParams(epochs=1, batch_size=8, lr=1e-3)
    source_model = Net(hidden=3)
    source = _fit(FakeContext(tmp_path), source_model, p)
    assert not source.reused and source.warm_start is None

    sources = {"base": SimpleNamespace(facts=source.facts(), model=source_model)}
    context = FakeContext(tmp_path, sources)
    target = Net(hidden=5)  # `out` has another shape: only `shared` can be copied
    init_out = target.out.weight.detach().clone()
    seen: list = []
    warm = _fit(context, target, TrainParams(epochs=1, batch_size=8, lr=1e-3, warm_start="base"), seen)
    start = seen[0]
    assert torch.equal(start["shared.weight"], source_model.shared.weight) and torch.equal(
        start["shared.bias"], source_model.shared.bias)
    assert torch.equal(start["out.weight"], init_out)
    assert warm.warm_start == source.key and warm.facts()["warm_start_weights"] == source.key
    meta = json.loads((tmp_path / f"{warm.key}.json").read_text())
    assert meta["description"]["train"]["warm_start"] == source.key  # the weights, not the scenario's name
    assert meta["description"]["seed"] == 4 and context.logged["toy"] == warm.history

    # other source weights: another cache entry; the same ones: reused
    sources["base"] = SimpleNamespace(facts={**source.facts(), "weights": "0" * 20}, model=source_model)
    other = _fit(context, Net(hidden=5), TrainParams(epochs=1, batch_size=8, lr=1e-3, warm_start="base"))
    assert other.key != warm.key and not other.reused
    sources["base"] = SimpleNamespace(facts=source.facts(), model=source_model)
    again = _fit(context, Net(hidden=5), TrainParams(epochs=1, batch_size=8, lr=1e-3, warm_start="base"))
    assert again.key == warm.key and again.reused


def test_a_warm_start_without_a_matching_parameter_is_refused(tmp_path):
    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Linear(4, 2)  # same name, other shape
            self.out = nn.Linear(2, 4)

    source = SimpleNamespace(facts={"weights": "abc"}, model=Net(hidden=3))
    context = FakeContext(tmp_path, {"base": source})
    with pytest.raises(ValueError, match="no parameter of the source model matches"):
        fit_or_load(context, Other(), name="toy", description={"scheme": "toy/2"},
                    params=TrainParams(epochs=1, warm_start="base"), step=None,
                    data=lambda: (torch.zeros(2, 4), torch.zeros(2, 4)))


def test_the_training_channel_enters_the_key_only_when_training_through_it(tmp_path):
    def key(snr_db, channel=None, scenario_channel="awgn"):
        context = FakeContext(tmp_path / "c")
        context.train_channel = {"name": scenario_channel, "type": scenario_channel, "params": {}}
        return _fit(context, Net(3), TrainParams(epochs=1, batch_size=8, snr_db=snr_db, channel=channel)).key

    assert key(None, scenario_channel="rayleigh") == key(None)  # noise-free: no channel
    assert key(5.0, scenario_channel="rayleigh") != key(5.0)
    assert key(5.0, "rayleigh-nocsi") != key(5.0)


# ---------------------------------------------------------------- bad recipes


@pytest.mark.parametrize(("params", "loc", "message"), [
    ({"early_stopping": {"metric": "val_loss"}}, "early_stopping", "needs a validation split"),
    ({"schedule": {"type": "plateau", "metric": "val_psnr_db"}}, "schedule", "needs a validation split"),
    ({"snr_db": [5, 1]}, "snr_db", "low <= high"),
    ({"snr_db": [float("nan"), 1]}, "snr_db", "finite"),
    ({"validation": 1.5}, "validation", "a count or a fraction"),
    ({"validation": -0.1}, "validation", "greater than or equal to 0"),
    ({"optimizer": "rmsprop"}, "optimizer", "'sgd', 'adam' or 'adamw'"),
    ({"lr_scale": {"head.": 0}}, "lr_scale.head.", "greater than 0"),
    ({"schedule": {"type": "cosine", "milestones": [3]}}, "schedule.cosine.milestones", "Extra inputs"),
    ({"schedule": {"type": "plateau", "factor": 1.0}}, "schedule.plateau.factor", "less than 1"),
    ({"early_stopping": {"metric": "loss", "patience": 0}}, "early_stopping.patience", "greater than 0"),
    ({"epochs": 0}, "epochs", "greater than 0"),
    ({"epoch": 3}, "epoch", "Extra inputs"),
])
def test_bad_recipes_are_refused_naming_the_key(params, loc, message):
    with pytest.raises(ValidationError) as info:
        TrainParams(**params)
    errors = info.value.errors()
    assert len(errors) == 1
    where = ".".join(str(part) for part in errors[0]["loc"])
    assert where == loc and message in errors[0]["msg"], errors[0]


def test_a_default_val_metric_without_validation_is_refused_too():
    """Field validators skip defaults: a recipe whose default schedule needs a validation split is
    still refused (at the top level) unless one is given."""

    class PlateauRecipe(TrainParams):
        schedule: Schedule = PlateauSchedule()

    with pytest.raises(ValidationError, match="schedule: metric val_loss needs a validation split"):
        PlateauRecipe()
    assert PlateauRecipe(validation=0.1).schedule.type == "plateau"


def test_two_trainers_of_one_key_train_it_once(tmp_path):
    """A second process (here a thread with its own lock handle) that needs an entry being trained
    waits for it and loads the stored weights instead of training a copy into the same checkpoint."""
    import threading
    import time

    calls, results = [], {}
    started = threading.Event()

    def fit(_checkpoint):
        calls.append(1)
        started.set()
        time.sleep(0.3)  # the other trainer arrives meanwhile
        return [{"epoch": 1, "loss": 0.5}]

    def worker(name):
        model = nn.Linear(2, 2)
        if name == "first":
            with torch.no_grad():
                model.weight.fill_(3.0)
        results[name] = (load_or_train(model, {"lock": 1}, fit, tmp_path), model.weight.detach().clone())

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    started.wait(5)
    second = threading.Thread(target=worker, args=("second",))
    second.start()
    first.join(10)
    second.join(10)
    assert len(calls) == 1
    assert results["first"][0][2] is False and results["second"][0][2] is True  # trained, then reused
    assert torch.equal(results["second"][1], torch.full((2, 2), 3.0))


def test_bf16_precision_runs_the_step_and_validation_under_autocast_and_keeps_float32_weights():
    torch.manual_seed(0)
    model = nn.Linear(4, 4)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    seen = []

    def step(inputs, targets, rng):
        out = model(inputs)
        seen.append((torch.is_grad_enabled(), out.dtype))
        return (out - targets).square().mean(), {}

    history = train(model, step, x, x.flip(1), _params(epochs=3, batch_size=16, validation=16, lr=0.05,
                                                        precision="bfloat16"), seed=0)
    assert {dtype for _, dtype in seen} == {torch.bfloat16}
    assert {grad for grad, _ in seen} == {True, False}  # training steps and validation batches
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["val_loss"] < history[0]["val_loss"]

    seen.clear()
    train(model, step, x, x, _params(epochs=1, batch_size=16), seed=0)  # the default: no autocast
    assert {dtype for _, dtype in seen} == {torch.float32}


def test_bf16_training_learns_what_float32_learns():
    """A least-squares fit: bf16 matmuls with float32 weights and losses end near the float32 loss."""
    x = torch.randn(512, 16, generator=torch.Generator().manual_seed(2))
    y = x @ torch.randn(16, 4, generator=torch.Generator().manual_seed(3))
    final = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        model = nn.Linear(16, 4)
        history = train(model, lambda i, t, rng, m=model: ((m(i) - t).square().mean(), {}), x, y,
                        _params(epochs=40, batch_size=64, optimizer="adam", lr=0.03, precision=precision),
                        seed=0)
        final[precision] = history[-1]["loss"]
    assert final["float32"] < 1e-3  # learnt
    assert final["bfloat16"] < 1e-2  # learnt to bf16's resolution (8 mantissa bits on the inputs)


def test_precision_enters_the_cache_key_only_as_bfloat16(tmp_path):
    def fitted(context_precision="float32", **kw):
        context = FakeContext(tmp_path)
        context.train_precision = context_precision
        return _fit(context, Net(3), TrainParams(epochs=1, batch_size=8, **kw))

    default = fitted()
    meta = json.loads((tmp_path / f"{default.key}.json").read_text())
    # float32 weights keep the keys they had before the option existed
    assert "precision" not in meta["description"]["train"]
    assert meta["description"]["train"] == {k: v for k, v in TrainParams(epochs=1, batch_size=8).model_dump(
        mode="json").items() if k != "precision"}
    assert fitted(precision="float32").key == default.key
    assert fitted("bfloat16", precision="float32").key == default.key  # the scheme's own setting wins
    bf16 = fitted(precision="bfloat16")
    assert bf16.key != default.key and not bf16.reused
    assert json.loads((tmp_path / f"{bf16.key}.json").read_text())["description"]["train"]["precision"] == "bfloat16"
    run_wide = fitted("bfloat16")  # the scenario's train_precision: the same weights as the scheme's own
    assert run_wide.key == bf16.key and run_wide.reused
