"""VSCC / VAE / AE (seed000): the KL terms against closed forms, the receiver's test modes, channel
uses, the knowledge-base variance kept with the cached weights, the draw statistics, the Mini-ImageNet
dataset entry and the parameter checks."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from torch.distributions import Normal, kl_divergence

from linksim.channels import AWGNChannel
from linksim.data import DataParams
from linksim.engine import seed_everything
from linksim.estimators import gaussian_reparameterize
from linksim.losses import gaussian_kl, gaussian_nll, vae_kl, vscc_kl
from linksim.metrics import psnr, ssim
from linksim.models import VSCCAutoencoder
from linksim.schemes.base import SchemeContext
from linksim.schemes.vscc import VSCCParams, VSCCScheme, draw_counters
from conftest import dying_after_first_epoch, seeded

_TINY = {"base_width": 8, "stage_widths": [8, 8, 16], "num_groups": 4, "latent_channels": 2}


def _params(**kw) -> VSCCParams:
    train = {"epochs": 1, "batch_size": 32, "subset": 64, "snr_db": 5.0, **kw.pop("train", {})}
    return VSCCParams(**{**_TINY, "data": {"name": "cifar10", "eval_subset": 8}, "draws": 3, "train": train, **kw})


def _context(tmp_path) -> SchemeContext:
    return SchemeContext(cache_dir=tmp_path / "models", run_dir=tmp_path / "run", train_channel=AWGNChannel(),
                         train_channel_spec={"name": "awgn", "type": "awgn", "params": {}}, progress=False)


# ---------------------------------------------------------------------------------------------- losses
def test_gaussian_kl_matches_torch_closed_form():
    g = seeded(0)
    mean, var, prior = torch.randn(4, 2, 3, generator=g), torch.rand(4, 2, 3, generator=g) + 0.1, 2.7
    ours = gaussian_kl(mean, var, prior)
    ref = kl_divergence(Normal(mean, var.sqrt()), Normal(torch.zeros(()), math.sqrt(prior))).flatten(1).sum(1)
    assert ours.shape == (4,) and torch.allclose(ours, ref, atol=1e-5)


def test_vscc_kl_is_eq10_and_reduces_to_the_vae_kl():
    g = seeded(1)
    mu, logvar = torch.randn(5, 3, 2, 2, generator=g), torch.randn(5, 3, 2, 2, generator=g)
    s2, d = torch.tensor([0.1, 0.3, 1.0, 3.0, 10.0]), 5.0
    var1 = logvar.exp()
    eq10 = 0.5 * (torch.log((s2.reshape(-1, 1, 1, 1) + d) / (var1 + s2.reshape(-1, 1, 1, 1)))
                  + (mu**2 + var1 + s2.reshape(-1, 1, 1, 1)) / (s2.reshape(-1, 1, 1, 1) + d) - 1).flatten(1).sum(1)
    assert torch.allclose(vscc_kl(mu, logvar, s2, d), eq10, atol=1e-5)
    eq11 = 0.5 * (-logvar + var1 + mu**2 - 1).flatten(1).sum(1)
    assert torch.allclose(vae_kl(mu, logvar), eq11, atol=1e-5)
    assert torch.allclose(vscc_kl(mu, logvar, 0.0, 1.0), vae_kl(mu, logvar), atol=1e-5)  # sigma_2 = 0, d = 1
    zero = vscc_kl(torch.zeros(2, 4), torch.full((2, 4), math.log(5.0)), 0.3, 5.0)  # mu = 0, sigma_1^2 = d
    assert torch.allclose(zero, torch.zeros(2), atol=1e-6)
    assert vscc_kl(mu, logvar, s2, d).min() >= 0


def test_gaussian_nll_is_the_weighted_sse():
    x, y = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert torch.allclose(gaussian_nll(x, y, 2.0), torch.full((2,), 2.0 * 48 * 0.25))


def test_reparameterisation_has_the_right_moments_and_gradients():
    mean = torch.full((200_000,), 1.5, requires_grad=True)
    log_var = torch.full((200_000,), math.log(0.25), requires_grad=True)
    y = gaussian_reparameterize(mean, log_var, seeded(2))
    assert abs(float(y.detach().mean()) - 1.5) < 0.01 and abs(float(y.detach().var()) - 0.25) < 0.01
    y.sum().backward()
    assert torch.all(mean.grad == 1) and log_var.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------- model
def test_paper_architecture_latent_and_size():
    m = VSCCAutoencoder(16, variational=True, image_size=256)
    assert 6.5e6 < sum(p.numel() for p in m.parameters()) < 7.3e6  # seed000 §3: about 7 M (6.89 M)
    small = VSCCAutoencoder(16, variational=True, image_size=32)  # the paper's stages on 32 x 32
    mu, logvar = small.encode(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert mu.shape == logvar.shape == (2, 16, 2, 2)  # 64 reals / 3072 = k/n 0.0208, as 4096 / 196608
    out = small.decode(mu)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() < 1
    ae = VSCCAutoencoder(16, variational=False, image_size=32)
    y, none = ae.encode(torch.zeros(1, 3, 32, 32))
    assert y.shape == (1, 16, 2, 2) and none is None


def test_receive_modes():
    m = VSCCAutoencoder(2, variational=True, base_width=8, stage_widths=(8,), num_groups=4, image_size=4)
    z = torch.randn(1, 2, 2, 2).expand(50_000, 2, 2, 2)
    assert torch.equal(m.receive(z, "ae", torch.tensor(0.1)), z)
    with pytest.raises(RuntimeError, match="knowledge-base"):
        m.check_kb_variance()
    m.kb_variance.copy_(torch.tensor([0.04, 0.25]).reshape(2, 1, 1).expand(2, 2, 2))
    fv = m.receive(z, "fv", torch.tensor(0.1), generator=seeded(3))
    assert torch.allclose(fv.mean(0), z[0], atol=0.01)
    assert torch.allclose(fv.var(0), m.kb_variance, rtol=0.03)
    sent = torch.cat([z, torch.full_like(z, math.log(0.09))], dim=1)
    tv = m.receive(sent, "tv", torch.tensor(0.1), "log", generator=seeded(4))
    assert torch.allclose(tv.var(0), torch.full((2, 2, 2), 0.09), rtol=0.03)
    literal = m.receive(torch.cat([z, torch.full_like(z, 0.09)], dim=1), "tv", torch.full((50_000,), 0.1),
                        "variance+noise", generator=seeded(5))
    assert torch.allclose(literal.var(0), torch.full((2, 2, 2), 0.19), rtol=0.03)


# ---------------------------------------------------------------------------------------------- params
def test_channel_uses_tv_twice_fv():
    fv, tv, ae = (VSCCScheme(_params(matching=5.0)), VSCCScheme(_params(matching=5.0, test_mode="tv")),
                  VSCCScheme(_params(method="ae")))
    awgn = AWGNChannel()
    assert fv.params.latent_shape == (2, 4, 4)
    assert fv.budget(awgn).channel_uses == 16 and ae.budget(awgn).channel_uses == 16  # 32 reals, paired
    assert tv.budget(awgn).channel_uses == 32
    assert tv.facts["bandwidth_ratio_real"] == pytest.approx(2 * fv.facts["bandwidth_ratio_real"])


@pytest.mark.parametrize("kw, key", [
    ({}, "matching"),  # VSCC without d
    ({"method": "vae", "matching": 2.0}, "matching"),
    ({"method": "ae", "test_mode": "tv"}, "test_mode"),
    ({"matching": 2.0, "test_mode": "ae"}, "test_mode"),
    ({"method": "ae", "train_mode": "t2"}, "train_mode"),
    ({"matching": 2.0, "stage_widths": [8, 8, 8, 8, 8, 8]}, "stage_widths"),  # 64 does not divide 32
    ({"matching": 2.0, "num_groups": 3}, "base_width"),  # 8 channels cannot be split into 3 groups
    ({"matching": -1.0}, "matching"),
])
def test_bad_params_name_the_key(kw, key):
    with pytest.raises(ValidationError, match=key):
        VSCCParams(**{**_TINY, **kw})


# ---------------------------------------------------------------------------------------------- life cycle
def test_knowledge_base_variance_is_stored_and_reloaded_with_the_weights(tmp_path, synthetic_data):
    seed_everything(0)
    first = VSCCScheme(_params(matching=5.0))
    first.prepare(_context(tmp_path))
    kb = first.model.kb_variance.clone()
    assert kb.shape == (2, 4, 4) and torch.isfinite(kb).all() and (kb > 0).all()
    train = _params(matching=5.0).data.training_set(_context(tmp_path))
    with torch.no_grad():
        expected = first.model.encode(train.float() * 2 - 1)[1].exp().mean(0)
    assert torch.allclose(kb, expected, rtol=1e-4)  # the mean over the training images
    again = VSCCScheme(_params(matching=5.0, test_mode="tv", draws=2))  # test mode: not part of the weights
    again.prepare(_context(tmp_path))
    assert again.facts["weights_reused"] is True and again.facts["weights"] == first.facts["weights"]
    assert torch.equal(again.model.kb_variance, kb)
    out = first.simulate(8, torch.tensor(0.3), AWGNChannel())
    assert out["samples"] == 8 and out["images"] == 8
    assert out["psnr_image_lo_sum"] <= out["psnr_lo_sum"] <= out["psnr_sum"] <= out["psnr_hi_sum"]
    assert first.facts["tx_power_per_value"] > 0 and first.facts["encoder_variance"]["kb_mean"] > 0


def test_ae_trains_without_a_variance(tmp_path, synthetic_data):
    seed_everything(0)
    ae = VSCCScheme(_params(method="ae", draws=1))
    ae.prepare(_context(tmp_path))
    assert torch.isnan(ae.model.kb_variance).all() and "encoder_variance" not in ae.facts
    shown = ae.reconstruct(torch.arange(3), torch.tensor(0.1), AWGNChannel())
    assert shown.shape == (3, 3, 32, 32) and shown.dtype == torch.uint8


def test_draw_counters_are_the_exact_aggregates():
    g = seeded(6)
    orig = torch.randint(0, 256, (5, 3, 16, 16), generator=g, dtype=torch.uint8)
    noise = torch.randint(-40, 41, (4, 5, 3, 16, 16), generator=g)
    shown = (orig.int() + noise).clamp(0, 255).to(torch.uint8)
    out = draw_counters(orig, shown, group=2)
    p = torch.stack([psnr(orig, s, layout="NCHW") for s in shown]).double()  # [draws, images]
    s = torch.stack([ssim(orig, x, layout="NCHW") for x in shown]).double()
    assert out["images"] == 5  # groups of 2, 2, 1 images
    assert out["psnr_sum"] == pytest.approx(float(p.mean(0).sum()))
    assert out["ssim_sq_sum"] == pytest.approx(float(s.mean(0).square().sum()))
    assert out["psnr_image_lo_sum"] == pytest.approx(float(p.amin(0).sum()))
    assert out["ssim_image_hi_sum"] == pytest.approx(float(s.amax(0).sum()))
    groups = [p[:, 0:2].mean(1), p[:, 2:4].mean(1), p[:, 4:5].mean(1)]
    sizes = (2, 2, 1)  # a group counts as its images
    assert out["psnr_lo_sum"] == pytest.approx(sum(n * float(m.min()) for n, m in zip(sizes, groups, strict=True)))
    assert out["psnr_hi_sq_sum"] == pytest.approx(sum(n * float(m.max()) ** 2
                                                      for n, m in zip(sizes, groups, strict=True)))
    assert out["psnr_image_lo_sum"] <= out["psnr_lo_sum"] <= out["psnr_sum"] <= out["psnr_hi_sum"]
    one = draw_counters(orig, shown[:1], group=64)  # one draw: every band is the mean
    assert one["psnr_lo_sum"] == pytest.approx(one["psnr_sum"]) == pytest.approx(one["psnr_image_hi_sum"])


# ---------------------------------------------------------------------------------------------- data
def test_mini_imagenet_entry_in_the_standard_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_DATA", str(tmp_path / "cache"))
    base = tmp_path / "mini"
    g = seeded(7)
    for split, wnids in (("train", ("n01532829", "n01558993")), ("test", ("n01930112",))):
        for wnid in wnids:
            (base / split / wnid).mkdir(parents=True)
            for i in range(3):
                pixels = torch.randint(0, 256, (40, 60, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(base / split / wnid / f"{wnid}_{i:08d}.JPEG")
    data = DataParams(name="mini-imagenet", path=str(base), image_size=16, train_per_class=2, eval_subset=2)
    assert data.image_shape == (3, 16, 16)
    assert DataParams(name="mini-imagenet").image_shape == (3, 256, 256)  # the paper's crops by default
    ctx = SchemeContext()
    with pytest.warns(RuntimeWarning, match="64"):  # a 2-class copy is not the standard split
        train = data.training_set(ctx)
    assert train.images.shape == (4, 3, 16, 16) and sorted(train.labels.tolist()) == [0, 0, 1, 1]
    with pytest.warns(RuntimeWarning, match="20"):
        assert len(data.evaluation_set(ctx)) == 2
    with pytest.raises(ValidationError, match="image_size"):
        DataParams(name="cifar10", image_size=16)


def test_a_run_killed_during_channel_training_resumes_to_the_same_results_csv(tmp_path, synthetic_data,
                                                                              monkeypatch):
    """Ctrl-C in the second epoch of a model that trains through the AWGN channel (noise and resampling
    from Sionna's generator), then --resume: results.csv byte-identical to an uninterrupted run's."""
    import linksim.training.learned as learned
    from linksim.config import load_scenario
    from linksim.runner import RunOptions, run_scenario

    (tmp_path / "s.yaml").write_text("""
name: kill
seed: 4
device: cpu
snr: {values: [0, 10]}
stop: {batch_size: 8, max_samples: 8}
channels: [awgn]
scheme_defaults:
  vscc: {base_width: 8, stage_widths: [8, 8, 16], num_groups: 4, latent_channels: 2, draws: 2,
         data: {name: cifar10, eval_subset: 8}, train: {epochs: 2, batch_size: 32, subset: 64, snr_db: 5}}
schemes:
  - {name: v, type: vscc, params: {matching: 5}}
""")

    def run(out: str, resume: bool = False):
        monkeypatch.setenv("LINKSIM_MODELS", str(tmp_path / out / "models"))
        return run_scenario(load_scenario(tmp_path / "s.yaml"), RunOptions(
            out=str(tmp_path / out), run_id="r", resume=resume, progress=False, plots=False))

    expected = run("whole").run_dir.csv.read_bytes()
    original = learned.train
    monkeypatch.setattr(learned, "train", dying_after_first_epoch(original))
    with pytest.raises(KeyboardInterrupt):
        run("killed")
    assert list((tmp_path / "killed" / "models").glob("*.partial.pt"))  # the first epoch is kept
    monkeypatch.setattr(learned, "train", original)
    assert run("killed", resume=True).run_dir.csv.read_bytes() == expected
