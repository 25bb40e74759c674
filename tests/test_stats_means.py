"""Means as statistics: the Student-t interval of a mean from additive counters, the image-quality
counters, an engine point whose primary is a mean and stops on the interval's half-width, and the
runner's rules for stop keys that fit one kind of primary only. CPU, synthetic, seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import BaseModel, ConfigDict
from scipy import stats as st

from linksim.cli import main
from linksim.config import SnrGrid, StopRule, load_scenario
from linksim.engine import WorkUnit, half_width, run_unit
from linksim.metrics import image_quality_counters, image_quality_rates, mse, mse_from_psnr, psnr, ssim
from linksim.registry import register_scheme
from linksim.results import read_results
from linksim.runner import RunOptions, run_scenario
from linksim.schemes.base import Derived, Mean, Rate, Scheme
from linksim.snr import LinkBudget
from linksim.stats import mean_interval, sample_std


# ---------------------------------------------------------------- the interval


def test_mean_interval_covers_the_true_mean_at_its_nominal_rate():
    rng = np.random.default_rng(2024)
    reps, n, mu, sigma = 2000, 8, 3.0, 2.0
    x = rng.normal(mu, sigma, (reps, n))
    covered = 0
    for row in x:
        low, high = mean_interval(row.sum(), np.square(row).sum(), n, 0.95)
        covered += low <= mu <= high
    # 2,000 replications: the coverage's standard deviation is sqrt(0.95 * 0.05 / 2000) = 0.0049
    band = 4 * math.sqrt(0.95 * 0.05 / reps)
    assert abs(covered / reps - 0.95) < band, covered / reps
    # the normal (z) interval on 8 values undercovers (about 0.92): Student-t is what makes it right
    z = st.norm.ppf(0.975) * x.std(axis=1, ddof=1) / math.sqrt(n)
    assert np.mean(np.abs(x.mean(axis=1) - mu) <= z) < 0.95 - band


def test_mean_interval_equals_scipys_t_interval_and_is_nan_below_two_values():
    v = np.array([31.2, 28.4, 35.0, 30.1, 29.9])
    low, high = mean_interval(v.sum(), np.square(v).sum(), len(v), 0.9)
    ref = st.t.interval(0.9, len(v) - 1, loc=v.mean(), scale=st.sem(v))
    assert (low, high) == pytest.approx(ref, rel=1e-12)
    assert sample_std(v.sum(), np.square(v).sum(), len(v)) == pytest.approx(v.std(ddof=1), rel=1e-12)
    assert all(math.isnan(b) for b in mean_interval(30.0, 900.0, 1) + mean_interval(0.0, 0.0, 0))
    assert math.isnan(sample_std(30.0, 900.0, 1))
    # equal values: a width of rounding only (sums of squares cancel), never a negative variance
    c = np.full(1000, 0.1)
    assert mean_interval(c.sum(), np.square(c).sum(), 1000) == pytest.approx((0.1, 0.1), abs=1e-9)
    assert sample_std(3.0, 3.0 - 1e-15, 3) == 0.0


# ---------------------------------------------------------------- image counters


def _pair(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 16, 16, 3)).astype(np.uint8)
    noise = rng.normal(0, rng.uniform(2, 30, (n, 1, 1, 1)), x.shape)
    return x, np.clip(x + noise, 0, 255).astype(np.uint8)


def test_image_quality_counters_add_across_batches_and_give_the_per_image_means():
    x, y = _pair(10, 0)
    y[3] = x[3]  # one perfect reconstruction (PSNR capped, MSE 0)
    whole = image_quality_counters(x, y, prefix="a_", suffix="_q")
    halves = [image_quality_counters(x[s], y[s], prefix="a_", suffix="_q") for s in (slice(0, 4), slice(4, 10))]
    assert set(whole) == {f"a_{k}_q" for k in ("psnr_sum", "psnr_sq_sum", "ssim_sum", "ssim_sq_sum", "mse_sum",
                                                 "mse_sq_sum", "images")}
    assert all(whole[k] == pytest.approx(halves[0][k] + halves[1][k], rel=1e-12) for k in whole)
    assert whole["a_images_q"] == 10
    p, s, m = psnr(x, y), ssim(x, y), mse(x, y)
    assert whole["a_psnr_sum_q"] == pytest.approx(p.sum()) and whole["a_ssim_sq_sum_q"] == pytest.approx((s**2).sum())
    assert whole["a_mse_sum_q"] == pytest.approx(m.sum()) and m[3] == 0
    # torch NCHW images in [0, 1] give the same numbers with max_val 1 (MSE in those units)
    tx, ty = (torch.from_numpy(a).permute(0, 3, 1, 2).double() / 255 for a in (x, y))
    t = image_quality_counters(tx, ty, max_val=1.0, layout="NCHW")
    assert t["psnr_sum"] == pytest.approx(whole["a_psnr_sum_q"]) and t["ssim_sum"] == pytest.approx(whole["a_ssim_sum_q"])
    assert t["mse_sum"] == pytest.approx(whole["a_mse_sum_q"] / 255**2)
    # the MSE is recovered from capped PSNR values exactly (what image_digital relies on)
    assert mse_from_psnr(p) == pytest.approx(m, rel=1e-10, abs=0)


def test_image_quality_rates_are_means_and_the_psnr_of_the_mean_mse():
    x, y = _pair(6, 1)
    rates = image_quality_rates(suffix="_q", max_val=255.0)
    assert set(rates) == {"psnr_db_q", "ssim_q", "mse_q", "psnr_of_mean_mse_db_q"}
    assert rates["psnr_db_q"] == Mean("psnr_sum_q", "psnr_sq_sum_q", "images_q")
    derived = rates["psnr_of_mean_mse_db_q"]
    assert isinstance(derived, Derived) and "mean MSE" in derived.doc
    c = image_quality_counters(x, y, suffix="_q")
    assert derived.fn(c) == pytest.approx(10 * math.log10(255**2 / mse(x, y).mean()))
    assert derived.fn(c) <= c["psnr_sum_q"] / 6  # Jensen: the mean PSNR is the larger
    assert math.isnan(derived.fn({}))


# ---------------------------------------------------------------- engine


class GaussParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mu: float = 30.0
    sigma: float = 2.0
    slope: float = 0.0  # dB of mean per dB of SNR


@register_scheme("test_gauss_mean", GaussParams)
class GaussMean(Scheme):
    """A scheme whose items carry N(mu + slope * Es/N0, sigma^2) values; its primary is their mean."""

    rates = {"value": Mean("value_sum", "value_sq_sum", "samples"), "hit_rate": Rate("hits", "samples"),
             "twice": Derived(lambda c: 2 * c["value_sum"] / c["samples"], "twice the mean")}
    primary = "value"

    def __init__(self, params: GaussParams = GaussParams()):
        super().__init__()
        self.p = params

    def budget(self, channel):
        return LinkBudget(1.0)

    def simulate(self, batch_size, no, channel):
        mu = self.p.mu + self.p.slope * float(-10 * torch.log10(no[0]))
        v = mu + self.p.sigma * torch.randn(batch_size, dtype=torch.float64)
        return {"samples": batch_size, "value_sum": float(v.sum()), "value_sq_sum": float((v**2).sum()),
                "hits": int((v > mu).sum())}


def _point(scheme, **stop):
    unit = WorkUnit("g", "c", 0.0)
    return run_unit(scheme, None, unit, SnrGrid(axis="esno", values=[0.0]), StopRule(**stop), seed=5)


def test_a_mean_primary_stops_after_the_batch_where_its_half_width_reaches_the_target():
    row = _point(GaussMean(), batch_size=100, max_samples=100_000, target_half_width=0.1)
    # sigma 2: 1.96 * 2 / sqrt(n) <= 0.1 needs about 1,540 values
    assert 1400 <= row["samples"] <= 1800 and row["samples"] % 100 == 0
    assert (row["value_ci_high"] - row["value_ci_low"]) / 2 <= 0.1
    before = _point(GaussMean(), batch_size=100, max_samples=row["samples"] - 100, target_half_width=0.1)
    assert (before["value_ci_high"] - before["value_ci_low"]) / 2 > 0.1  # one batch earlier it was not there
    # the CSV convention for a mean primary: named in `primary`; errors, error_rate, ci_low, ci_high NaN
    assert row["primary"] == "value"
    assert all(math.isnan(row[k]) for k in ("errors", "error_rate", "ci_low", "ci_high"))
    assert row["value_ci_low"] < row["value"] < row["value_ci_high"] and row["value_std"] == pytest.approx(2, rel=0.1)
    assert row["hit_rate_ci_low"] < 0.5 < row["hit_rate_ci_high"] and row["twice"] == pytest.approx(2 * row["value"])
    # target_errors does not apply to a mean primary: without a half-width target it runs to max_samples
    assert _point(GaussMean(), batch_size=100, max_samples=700, target_errors=1)["samples"] == 700


def test_the_half_width_rule_needs_two_batches_and_min_samples():
    flat = GaussMean(GaussParams(sigma=0.0))  # zero spread: the first batch's half-width is already 0
    assert _point(flat, batch_size=50, max_samples=1000, target_half_width=0.01)["samples"] == 100
    assert _point(flat, batch_size=50, max_samples=1000, target_half_width=0.01, min_samples=400)["samples"] == 400


def test_a_rate_primary_keeps_its_columns_and_no_primary_column():
    class RatePrimary(GaussMean):
        primary = "hit_rate"

    row = _point(RatePrimary(), batch_size=100, max_samples=5000, target_errors=200, target_half_width=1e-6)
    assert "primary" not in row and row["samples"] == 400  # target_half_width is ignored for a rate
    assert row["errors"] == row["hits"] and row["error_rate"] == row["hit_rate"]
    assert row["ci_low"] == row["hit_rate_ci_low"]


def test_a_derived_statistic_cannot_be_the_primary():
    class DerivedPrimary(GaussMean):
        primary = "twice"

    with pytest.raises(TypeError, match="primary 'twice' must be a Rate or a Mean, found Derived"):
        _point(DerivedPrimary(), batch_size=10, max_samples=10)


def test_half_width_helper_matches_the_row():
    row = _point(GaussMean(), batch_size=100, max_samples=300)
    c = {k: row[k] for k in ("value_sum", "value_sq_sum", "samples")}
    assert half_width(c, GaussMean.rates["value"], 0.95) == pytest.approx((row["value_ci_high"] - row["value_ci_low"]) / 2)


# ---------------------------------------------------------------- runner and scenario keys

SCENARIO = """\
name: means
seed: 3
device: cpu
snr: {axis: esno, values: [0.0, 4.0, 8.0]}
stop: {batch_size: 50, max_samples: 3000, target_errors: 30, target_half_width: 0.25, stop_sweep_below: 0.2}
schemes:
  - {name: gauss, type: test_gauss_mean, params: {mu: 20.0, sigma: 2.0, slope: 1.0}}
  - {name: unc, type: digital_link, params: {k: 64, bits_per_symbol: 2}}
channels: [awgn]
"""


def test_runner_applies_each_stop_key_to_the_primaries_it_fits(write_scenario, tmp_path):
    path = write_scenario(SCENARIO)
    summary = run_scenario(load_scenario(path), RunOptions(out=str(tmp_path), run_id="r", plots=True,
                                                           progress=False, scenario_file=str(path)))
    df = read_results(summary.run_dir.csv)
    gauss, unc = df[df.scheme == "gauss"], df[df.scheme == "unc"]
    # the mean curve ignores stop_sweep_below and target_errors: all three points, each stopped on its half-width
    assert len(gauss) == 3 and (gauss.primary == "value").all()
    assert ((gauss.value_ci_high - gauss.value_ci_low) / 2 <= 0.25).all() and (gauss.samples < 3000).all()
    assert gauss.error_rate.isna().all() and gauss.errors.isna().all()
    assert gauss.value.is_monotonic_increasing  # mu + 1 dB per dB
    # the rate curve: target_errors and stop_sweep_below as before; its rows have no primary
    assert unc.primary.isna().all() and ((unc.errors >= 30) | (unc.samples == 3000)).all()
    assert summary.cut == 3 - len(unc) and (unc.error_rate.iloc[:-1] >= 0.2).all()
    assert (summary.run_dir.plots / "value_vs_snr_db.png").is_file()  # plotted with its interval


@pytest.mark.parametrize(("scheme", "key", "value"), [(0, "stop_sweep_below", 0.1), (0, "target_errors", 10),
                                                       (1, "target_half_width", 0.5)])
def test_a_schemes_own_stop_key_that_does_not_fit_its_primary_is_a_one_line_error(
        write_scenario, tmp_path, capsys, scheme, key, value):
    path = write_scenario(SCENARIO)
    override = ["--set", f"schemes.{scheme}.stop.{key}={value}"]
    # test_gauss_mean declares its primary on the class: refused when the file is read; digital_link
    # sets its primary when built: the file is valid, the run stops with the same line at that scheme
    assert main(["validate", str(path), *override]) == (2 if scheme == 0 else 0)
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path), "--quiet", "--no-plots", *override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{path}: schemes[{scheme}].stop.{key}: expected no {key} for scheme" in err and f"(found {value!r})" in err
    if scheme == 1:
        assert len(read_results(next(tmp_path.glob("means/*/results.csv")))) == 3  # gauss ran first


def test_a_run_with_mean_and_rate_primaries_resumes_to_the_same_csv(write_scenario, tmp_path):
    path = write_scenario(SCENARIO)
    opts = dict(plots=False, progress=False, scenario_file=str(path), run_id="r")
    whole = run_scenario(load_scenario(path), RunOptions(out=str(tmp_path / "a"), **opts))
    while (part := run_scenario(load_scenario(path), RunOptions(out=str(tmp_path / "b"), resume=True, max_units=1,
                                                                 **opts))).remaining:
        pass
    assert whole.run_dir.csv.read_bytes() == part.run_dir.csv.read_bytes()
