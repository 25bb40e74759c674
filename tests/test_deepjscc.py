"""DeepJSCC: the model's shapes and power, budgets, and the learned-image-scheme life cycle
(train, cache, resume after a kill, reuse) on synthetic CIFAR-shaped data."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import dying_after_first_epoch
from pydantic import ValidationError

from linksim.channels import AWGNChannel, RayleighChannel, RayleighParams
from linksim.engine import seed_everything
from linksim.link.packing import complex_to_real, real_to_complex
from linksim.models import DeepJSCC
from linksim.schemes.base import SchemeContext
from linksim.schemes.deepjscc import DeepJSCCParams, DeepJSCCScheme


def _params(**train) -> DeepJSCCParams:
    return DeepJSCCParams(bandwidth_ratio="1/12", width=8,
                          data={"name": "cifar10", "eval_subset": 16},
                          train={"epochs": 2, "batch_size": 32, "subset": 96, "snr_db": 10.0, **train})


def _context(tmp_path) -> SchemeContext:
    return SchemeContext(cache_dir=tmp_path / "models", run_dir=tmp_path / "run", train_channel=AWGNChannel(),
                         train_channel_spec={"name": "awgn", "type": "awgn", "params": {}}, progress=False)


def test_model_shapes_and_unit_power_per_image():
    model = DeepJSCC(latent_channels=8, width=8)
    z = model.encode(torch.rand(3, 3, 32, 32))
    assert z.shape == (3, 8, 8, 8)  # 512 reals = 256 complex channel uses: rho 1/12
    assert torch.allclose(z.square().flatten(1).mean(1), torch.ones(3), atol=1e-5)
    x = real_to_complex(z.reshape(3, 1, -1))
    assert x.shape == (3, 256) and torch.allclose(x.abs().square().mean(1), torch.ones(3), atol=1e-5)
    assert torch.allclose(complex_to_real(x, (1, 512)).reshape(z.shape), z, atol=1e-6)
    out = model.decode(z)
    assert out.shape == (3, 3, 32, 32) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("rho, k, c", [("1/12", 256, 8), ("1/6", 512, 16), (1 / 24, 128, 4)])
def test_bandwidth_ratio_sets_channel_uses_and_latent(rho, k, c):
    p = DeepJSCCParams(bandwidth_ratio=rho)
    assert (p.channel_uses, p.latent_channels) == (k, c)
    scheme = DeepJSCCScheme(p)
    assert scheme.budget(AWGNChannel()).channel_uses == k


def test_bad_params_name_the_key():
    with pytest.raises(ValidationError, match="bandwidth_ratio"):
        DeepJSCCParams(bandwidth_ratio="1/7")  # 439 channel uses: no whole number of latent channels
    with pytest.raises(ValidationError, match="bandwidth_ratio"):
        DeepJSCCParams(bandwidth_ratio="one sixth")
    with pytest.raises(ValidationError, match="data.name"):
        DeepJSCCParams(bandwidth_ratio="1/12", data={"name": "nonexistent"})


def test_trains_caches_resumes_after_a_kill_and_is_reused(tmp_path, synthetic_data):
    seed_everything(0)
    uninterrupted = DeepJSCCScheme(_params())
    state0 = {k: v.clone() for k, v in uninterrupted.model.state_dict().items()}
    uninterrupted.prepare(_context(tmp_path / "a"))
    assert uninterrupted.facts["weights_reused"] is False and uninterrupted.facts["epochs"] == 2

    # the same model killed after its first epoch (an exception from the progress report), then resumed
    killed = DeepJSCCScheme(_params())
    killed.model.load_state_dict(state0)
    ctx = _context(tmp_path / "b")
    import linksim.training.learned as learned

    original = learned.train
    learned.train = dying_after_first_epoch(original)
    try:
        seed_everything(0)
        with pytest.raises(KeyboardInterrupt):
            killed.prepare(ctx)
    finally:
        learned.train = original
    assert list((tmp_path / "b" / "models").glob("*.partial.pt"))
    resumed = DeepJSCCScheme(_params())
    resumed.model.load_state_dict(state0)
    resumed.prepare(ctx)
    for k, v in uninterrupted.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert not list((tmp_path / "b" / "models").glob("*.partial.pt"))

    reused = DeepJSCCScheme(_params())
    reused.prepare(ctx)
    assert reused.facts["weights_reused"] is True
    assert (tmp_path / "b" / "run" / "training").is_dir()


def test_simulate_counts_images_and_repeats_under_a_seed(tmp_path, synthetic_data):
    scheme = DeepJSCCScheme(_params(epochs=1))
    scheme.prepare(_context(tmp_path))
    channel = RayleighChannel(RayleighParams(csi="none"))
    runs = []
    for _ in range(2):
        seed_everything(5)
        scheme.reset()
        runs.append(scheme.simulate(8, torch.full((8,), 0.1), channel))
    assert runs[0] == runs[1] and runs[0]["samples"] == runs[0]["images"] == 8
    assert 0 < runs[0]["psnr_sum"] / 8 < 100
    # the cached encoding equals a fresh encoder pass (encode once, evaluate many)
    idx = torch.arange(4)
    fresh = real_to_complex(scheme.model.encode(scheme.originals(idx).float() / 255).reshape(4, 1, -1))
    assert torch.allclose(fresh, scheme._symbols[idx], atol=1e-6)
    shown = scheme.reconstruct(idx, torch.tensor(1e-3), AWGNChannel())
    assert shown.dtype == torch.uint8 and shown.shape == (4, 3, 32, 32)


def test_rayleigh_without_csi_passes_the_faded_symbols():
    seed_everything(1)
    x = torch.ones(2000, 4, dtype=torch.complex64)
    y, no_eff = RayleighChannel(RayleighParams(csi="none"))(x, torch.tensor(1e-6))
    gain = y[:, 0].abs().square()
    assert math.isclose(float(gain.mean()), 1.0, rel_tol=0.1)  # E|h|^2 = 1, the fade is not undone
    assert torch.allclose(y[:, 0], y[:, 3], atol=1e-2)  # one fade per row
    assert torch.allclose(no_eff, torch.full_like(no_eff, 1e-6))


_TRAIN = "{epochs: 1, batch_size: 32, subset: 64, snr_db: 10}"
_HEAD = """
name: tiny-deepjscc
seed: 2
device: cpu
snr: {values: [10]}
stop: {batch_size: 8, max_samples: 8}
channels: [awgn]
"""


def _run_yaml(tmp_path, monkeypatch, body: str, **options):
    """Run ``_HEAD + body`` as a scenario with its own weight cache; returns (summary, manifest)."""
    from linksim.config import load_scenario
    from linksim.results import RunDirectory
    from linksim.runner import RunOptions, run_scenario

    monkeypatch.setenv("LINKSIM_MODELS", str(tmp_path / "models"))
    (tmp_path / "s.yaml").write_text(_HEAD + body)
    summary = run_scenario(load_scenario(tmp_path / "s.yaml"),
                           RunOptions(out=str(tmp_path / "out"), progress=False, **options))
    return summary, RunDirectory(summary.run_dir.path).load_manifest()


def test_warm_start_from_another_scheme_of_the_scenario(tmp_path, synthetic_data, monkeypatch):
    _, manifest = _run_yaml(tmp_path, monkeypatch, f"""
scheme_defaults:
  deepjscc: {{bandwidth_ratio: 1/12, width: 8, data: {{name: cifar10, eval_subset: 8}}}}
schemes:
  - {{name: fine, type: deepjscc, params: {{train: {{<<: {_TRAIN}, warm_start: base}}}}}}
  - {{name: base, type: deepjscc, params: {{train: {_TRAIN}}}}}
""", plots=False)
    facts = manifest["schemes"]
    assert facts["fine"]["warm_start_weights"] == facts["base"]["weights"]  # base was prepared first, on demand
    assert facts["fine"]["weights"] != facts["base"]["weights"]


def test_example_figure_leaves_out_the_schemes_a_run_leaves_out(tmp_path, synthetic_data, monkeypatch):
    """outputs.examples names a scheme the profile leaves out (channels: []): the figure is drawn
    with the others, and the left-out scheme is never trained for it."""
    summary, manifest = _run_yaml(tmp_path, monkeypatch, f"""
scheme_defaults:
  deepjscc: {{bandwidth_ratio: 1/12, width: 8, data: {{name: cifar10, eval_subset: 8}}, train: {_TRAIN}}}
schemes:
  - {{name: kept, type: deepjscc}}
  - {{name: left-out, type: deepjscc, params: {{width: 4}}, channels: []}}
outputs:
  formats: [png]
  plots: []
  examples: [{{name: grid, channel: awgn, snr_db: [10], images: 2, schemes: [kept, left-out]}}]
""")
    assert (summary.run_dir.plots / "grid.png").is_file()
    assert set(manifest["schemes"]) == {"kept"}


def test_bf16_training_is_its_own_cache_entry_and_recorded(tmp_path, synthetic_data):
    seed_everything(0)
    float32 = DeepJSCCScheme(_params(epochs=1))
    float32.prepare(_context(tmp_path))
    context = _context(tmp_path)
    context.train_precision = "bfloat16"  # the scenario's train_precision
    seed_everything(0)
    bf16 = DeepJSCCScheme(_params(epochs=1))
    bf16.prepare(context)
    assert float32.facts["train_precision"] == "float32" and bf16.facts["train_precision"] == "bfloat16"
    assert bf16.facts["weights"] != float32.facts["weights"] and not bf16.facts["weights_reused"]
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    own = DeepJSCCScheme(_params(epochs=1, precision="bfloat16"))  # the scheme's own setting: the same weights
    own.prepare(_context(tmp_path))
    assert own.facts["weights"] == bf16.facts["weights"] and own.facts["weights_reused"]
