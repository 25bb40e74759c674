"""Runs: per-unit seeds make points independent of splitting and order; kills lose nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import IMAGE_SCENARIO, SMALL_SCENARIO
from linksim.cli import main
from linksim.config import load_scenario
from linksim.engine import WorkUnit, unit_seed
from linksim.results import read_results
from linksim.runner import RunOptions, run_scenario, work_units


def _run(path, out, **kw):
    return run_scenario(load_scenario(path, overrides=kw.pop("overrides", [])),
                        RunOptions(out=str(out), plots=False, progress=False, scenario_file=str(path), **kw))


def test_unit_seed_depends_only_on_the_unit():
    u = WorkUnit("a", "awgn", 1.0)
    assert unit_seed(3, u) == unit_seed(3, WorkUnit("a", "awgn", 1.0))
    assert len({unit_seed(3, u), unit_seed(4, u), unit_seed(3, WorkUnit("a", "awgn", 1.5)),
                unit_seed(3, WorkUnit("b", "awgn", 1.0))}) == 4


def test_results_identical_whether_run_at_once_or_split_across_calls(write_scenario, tmp_path):
    path = write_scenario()
    whole = _run(path, tmp_path / "a", run_id="r")
    assert whole.remaining == 0 and whole.finished == 8
    for _ in range(3):  # the same scenario in chunks of 3 points, each call a fresh engine
        part = _run(path, tmp_path / "b", run_id="r", resume=True, max_units=3)
    assert part.remaining == 0 and part.finished == 2 and part.skipped == 6
    assert (tmp_path / "a/tiny/r/results.csv").read_bytes() == (tmp_path / "b/tiny/r/results.csv").read_bytes()
    manifest = json.loads((tmp_path / "b/tiny/r/manifest.json").read_text())
    assert manifest["complete"] and len(manifest["sessions"]) == 3 and len(manifest["units"]) == 8


def test_a_point_does_not_depend_on_which_other_points_ran(write_scenario, tmp_path):
    path = write_scenario()
    full = read_results(_run(path, tmp_path / "a", run_id="r").run_dir.csv)
    alone = read_results(_run(path, tmp_path / "b", run_id="r",
                              overrides=["snr.values=[3.0]", "channels=[rayleigh]"]).run_dir.csv)
    ref = full[(full.channel == "rayleigh") & (full.snr_db == 3.0)].reset_index(drop=True)
    assert len(alone) == 2 and alone.equals(ref[alone.columns])
    assert ref.drop(columns=alone.columns).isna().all().all()  # only columns other channels added


def test_resume_refuses_another_scenario_and_rerun_without_resume(write_scenario, tmp_path):
    path = write_scenario()
    _run(path, tmp_path, run_id="r", max_units=1)
    with pytest.raises(RuntimeError, match="already exists; pass --resume"):
        _run(path, tmp_path, run_id="r")
    with pytest.raises(RuntimeError, match="different scenario"):
        _run(path, tmp_path, run_id="r", resume=True, overrides=["seed=99"])


def test_killed_and_resumed_run_equals_uninterrupted(write_scenario, tmp_path):
    # slow enough points (60 batches each) that the kill lands mid-run
    path = write_scenario(SMALL_SCENARIO.replace("stop: {batch_size: 100, target_errors: 20, max_samples: 300}",
                                                 "stop: {batch_size: 50, target_errors: 100000, max_samples: 3000}"))
    straight = _run(path, tmp_path / "straight", run_id="r").run_dir.csv
    out = tmp_path / "killed"
    csv = out / "tiny/r/results.csv"
    cmd = [sys.executable, "-m", "linksim.cli", "run", str(path), "--out", str(out), "--run-id", "r", "--quiet",
           "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600  # generous: a loaded CI machine imports torch and Sionna slowly
    while time.time() < deadline and (not csv.exists() or len(csv.read_text().splitlines()) < 2):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    rows_before = len(csv.read_text().splitlines()) - 1
    assert 1 <= rows_before < 8, f"the kill should land mid-run, found {rows_before} rows"
    assert main(["run", str(path), "--out", str(out), "--run-id", "r", "--resume", "--quiet", "--no-plots"]) == 0
    assert csv.read_bytes() == straight.read_bytes()


def test_work_units_cover_every_scheme_channel_and_point(write_scenario):
    sc = load_scenario(write_scenario())
    units = work_units(sc)
    assert len(units) == 2 * 2 * 2 and units[0] == WorkUnit("ldpc", "awgn", 1.0) and units[-1].scheme == "unc"


def test_csv_has_tidy_columns_and_counters_add_up(write_scenario, tmp_path):
    df = read_results(_run(write_scenario(), tmp_path, run_id="r").run_dir.csv)
    for col in ["scheme", "channel", "snr_db", "snr_axis", "snr_norm_db", "channel_uses", "samples", "errors",
                "error_rate", "ci_low", "ci_high", "ber", "bler", "ber_ci_low", "bler_ci_high", "esno_db", "ebno_db"]:
        assert col in df.columns, col
    assert (df.ci_low <= df.error_rate).all() and (df.error_rate <= df.ci_high).all()
    # rate primaries only: the columns of results committed before means existed, no `primary`, no `_std`
    assert "primary" not in df.columns and not [c for c in df.columns if c.endswith("_std")]
    ldpc = df[df.scheme == "ldpc"]
    assert (ldpc.errors == ldpc.block_errors).all() and (ldpc.channel_uses == 64).all()
    # Eb/N0 axis: Es/N0 = Eb/N0 + 10 log10(64 info bits / 64 channel uses) = Eb/N0
    assert (ldpc.esno_db - ldpc.ebno_db).abs().max() < 1e-9
    unc = df[df.scheme == "unc"]
    assert (unc.errors == unc.bit_errors).all() and ((unc.esno_db - unc.ebno_db - 6.0206).abs() < 1e-3).all()
    # stopping rule: either the error target was reached or the sample budget spent
    assert ((df.errors >= 20) | (df.samples == 300)).all()
    # linksim's BP decoder reports the iterations it used (early stop: fewer than 20 where blocks decode)
    assert ldpc.bp_iterations_mean.between(1, 20).all() and ldpc.bp_iterations_mean.iloc[-1] < 20
    assert unc.bp_iterations_mean.isna().all()


def test_manifest_records_the_switches_data_time_and_stage_times(write_scenario, tmp_path, monkeypatch):
    from linksim.schemes.digital_link import DigitalLinkScheme

    simulate = DigitalLinkScheme.simulate

    def timed(self, *args):  # a scheme that times a stage of its own, as the digital baselines do
        with self.stage_times("decode"):
            return simulate(self, *args)

    monkeypatch.setattr(DigitalLinkScheme, "simulate", timed)
    run_dir = _run(write_scenario(), tmp_path, run_id="r", compile="off", max_units=2).run_dir
    manifest = json.loads(run_dir.manifest_path.read_text())
    session = manifest["sessions"][0]
    assert session["compile"] is False and session["cuda_graphs"] is False
    assert session["data_wall_s"] == 0.0  # random bits: no dataset
    for unit in manifest["units"].values():
        assert 0 <= unit["stages_s"]["decode"] <= unit["wall_s"]


def test_stop_sweep_below_cuts_a_curve_and_still_resumes_identically(write_scenario, tmp_path):
    path = write_scenario()
    sets = ["snr.values=[-1.0, 1.0, 3.0, 5.0]", "stop.stop_sweep_below=0.12"]
    whole = _run(path, tmp_path / "a", run_id="r", overrides=sets)
    df = read_results(whole.run_dir.csv)
    assert whole.cut > 0 and len(df) == 16 - whole.cut
    for (_, _), g in df.groupby(["scheme", "channel"]):
        below = list(g.error_rate < 0.12)
        assert below.count(True) <= 1 and (not any(below) or below[-1])  # a curve ends at its first point below
    while (part := _run(path, tmp_path / "b", run_id="r", resume=True, max_units=2, overrides=sets)).remaining:
        pass
    assert part.cut == whole.cut
    assert whole.run_dir.csv.read_bytes() == part.run_dir.csv.read_bytes()


def test_construction_randomness_does_not_depend_on_what_ran_before():
    # OFDM pilot symbols are drawn when the channel is built; they must follow the scenario seed
    from linksim.config import ChannelSpec
    from linksim.engine import seed_everything
    from linksim.runner import build_channel

    spec = ChannelSpec(name="tdl-a-ls", type="tdl", params={"model": "A", "csi": "ls"})
    pilots = []
    for before in (1, 2):
        seed_everything(before)  # whatever earlier work units left behind
        pilots.append(build_channel(spec, seed=7).grid.pilot_pattern.pilots.clone())
    assert torch.equal(pilots[0], pilots[1])
    assert not torch.equal(pilots[0], build_channel(spec, seed=8).grid.pilot_pattern.pilots)


def test_every_item_of_a_point_gets_the_same_noise_variance():
    """A vectorised pow over a batch can round elements differently; schemes whose codewords carry
    many items (the SINFONY digital baseline) need one value per point, bit for bit (regression:
    Es/N0 -13.7 dB gave two values an ulp apart at batch 2000)."""
    from linksim.config import SnrGrid, StopRule
    from linksim.engine import run_unit
    from linksim.schemes.base import Rate, Scheme
    from linksim.snr import LinkBudget

    class Recorder(Scheme):
        rates = {"error_rate": Rate("errors", "samples")}
        primary = "error_rate"
        seen: list = []

        def budget(self, channel):
            return LinkBudget(1.0)

        def simulate(self, batch_size, no, channel):
            self.seen.append(no.unique())
            return {"samples": batch_size, "errors": 0}

    scheme = Recorder()
    for esno_db in (-19.79, -13.7, -10.9, -1.87, 0.0, 7.3):
        run_unit(scheme, None, WorkUnit("s", "c", esno_db), SnrGrid(axis="esno", values=[esno_db]),
                 StopRule(batch_size=2000, max_samples=4000, target_errors=10), seed=1)
    assert len(scheme.seen) == 12 and all(len(v) == 1 for v in scheme.seen)


@pytest.mark.parametrize("name", ["NA", "nan", "null", "None"])
def test_a_scheme_named_like_a_missing_value_survives_a_resume(write_scenario, tmp_path, name):
    path = write_scenario(SMALL_SCENARIO.replace("name: unc,", f"name: '{name}',"))  # quoted: YAML null is None
    _run(path, tmp_path, run_id="r", max_units=5)
    done = _run(path, tmp_path, run_id="r", resume=True)
    assert done.skipped == 5 and done.remaining == 0
    assert (read_results(done.run_dir.csv).scheme == name).sum() == 4


@pytest.mark.parametrize("grid, words", [
    ("values: [1.123456789012]", "more than 10 significant digits"),
    ("values: [1.0, 1.0]", "distinct"),
    ("values: [.nan]", "finite"),
    ("{start: 0, stop: 1.0e+308, step: 1.0e-300}", "more than 10000 SNR points"),
    ("{start: 0, stop: .inf, step: 1}", "finite"),
])
def test_snr_grids_that_cannot_round_trip_or_would_exhaust_memory_are_refused(write_scenario, grid, words):
    from linksim.config import ConfigError

    text = SMALL_SCENARIO.replace("snr: {axis: ebno, values: [1.0, 3.0]}",
                                  f"snr: {{axis: ebno, {grid[1:-1] if grid.startswith('{') else grid}}}")
    with pytest.raises(ConfigError, match=words) as err:
        load_scenario(write_scenario(text))
    assert len(err.value.lines) == 1 and "snr" in err.value.lines[0]


def test_damaged_run_files_are_reported_and_nothing_else_is_lost(write_scenario, tmp_path):
    path = write_scenario()
    first = _run(path, tmp_path, run_id="r", max_units=3)
    first.run_dir.csv.write_bytes(b"")  # a 0-byte results.csv: its points run again
    with pytest.warns(RuntimeWarning, match="unreadable results"):
        again = _run(path, tmp_path, run_id="r", resume=True)
    assert again.finished == 8 and len(read_results(again.run_dir.csv)) == 8
    manifest = again.run_dir.manifest_path
    manifest.write_text(manifest.read_text()[:50])  # truncated
    with pytest.raises(RuntimeError, match="unreadable manifest") as err:
        _run(path, tmp_path, run_id="r", resume=True)
    assert "\n" not in str(err.value)
    with pytest.warns(RuntimeWarning, match="unreadable manifest"):
        fresh = _run(path, tmp_path, resume=True)  # the damaged run is named, a new one starts
    assert fresh.run_dir.path.name != "r" and fresh.finished == 8


def test_run_ids_of_the_same_second_do_not_collide(tmp_path):
    from linksim.results import RunDirectory

    first = RunDirectory.new_run_id("quick", tmp_path)
    (tmp_path / first).mkdir()
    second = RunDirectory.new_run_id("quick", tmp_path)
    assert second != first and (second.startswith(first) or second.startswith("quick-"))


def test_a_text_column_as_plot_metric_is_skipped_with_a_warning(write_scenario, tmp_path):
    from linksim.plots import plot_run

    path = write_scenario(SMALL_SCENARIO.replace("profiles:", "outputs: {plots: [{metric: channel}, {metric: ber}]}\nprofiles:"))
    summary = _run(path, tmp_path, run_id="r")
    with pytest.warns(RuntimeWarning, match=r"outputs.plots\[0\].metric: expected a numeric column"):
        drawn = plot_run(summary.run_dir, load_scenario(path))
    assert drawn and all("ber" in p.name for p in drawn)


def test_a_figure_whose_curves_have_no_rows_on_its_channels_is_skipped(write_scenario, tmp_path):
    """A figure names a channel on which an override left its schemes no points: nothing to draw,
    the other figures are drawn (it crashed on the empty frame)."""
    from linksim.plots import plot_run

    text = SMALL_SCENARIO.replace("bits_per_symbol: 4}}", "bits_per_symbol: 4}, channels: [awgn]}")
    path = write_scenario(text.replace(
        "profiles:", "outputs: {plots: [{metric: ber, schemes: [unc], channels: [rayleigh]}, {metric: ber}]}\nprofiles:"))
    summary = _run(path, tmp_path, run_id="r")
    drawn = plot_run(summary.run_dir, load_scenario(path))
    assert drawn and len(drawn) == 2  # the second figure, png + pdf


@pytest.mark.parametrize("cut", [40, 1])  # mid-row; only the last line end
def test_a_results_file_cut_mid_row_reruns_that_point_and_ends_byte_identical(write_scenario, tmp_path, cut):
    path = write_scenario()
    whole = _run(path, tmp_path / "a", run_id="r")
    expected = whole.run_dir.csv.read_bytes()
    damaged = _run(path, tmp_path / "b", run_id="r")
    damaged.run_dir.csv.write_bytes(expected[:-cut])
    with pytest.warns(RuntimeWarning, match="cut short"):
        again = _run(path, tmp_path / "b", run_id="r", resume=True)
    assert again.finished == 1 and again.skipped == 7
    assert again.run_dir.csv.read_bytes() == expected


def test_a_batch_too_large_for_memory_is_one_line_naming_the_key(write_scenario, tmp_path):
    path = write_scenario(SMALL_SCENARIO.replace("stop: {batch_size: 100, target_errors: 20, max_samples: 300}",
                                                 "stop: {batch_size: 100000000000, max_samples: 100000000000}"))
    with pytest.raises(RuntimeError, match=r"^ldpc / awgn at 1 dB: out of memory .* stop.batch_size") as info:
        _run(path, tmp_path, run_id="r")
    assert "\n" not in str(info.value)


def test_chunked_points_stop_at_chunk_boundaries_resume_and_walk_the_evaluation_set_as_one_unit(write_scenario,
                                                                                                 tmp_path):
    path = write_scenario()
    sets = ["stop.chunk_samples=150"]  # batches of 100 and 50 per chunk, points of at most 300 items
    whole = _run(path, tmp_path / "a", run_id="r", overrides=sets)
    df = read_results(whole.run_dir.csv)
    assert set(df.samples) <= {150, 300} and (df.samples == 150).any()  # the rule holds after a chunk only
    assert df[df.samples == 150].stop_reason.eq("target_errors").all()
    while (part := _run(path, tmp_path / "b", run_id="r", resume=True, max_units=3, overrides=sets)).remaining:
        pass
    assert whole.run_dir.csv.read_bytes() == part.run_dir.csv.read_bytes()
    # an image scheme's chunks take the images one unit would: the capacity bound (no noise drawn) is the same
    image = write_scenario(IMAGE_SCENARIO, name="images")
    just_jpeg = ["snr.values=[12.0]", "schemes.ldpc.channels=[]"]
    rows = [read_results(_run(image, tmp_path / f"i{chunk}", run_id="r", overrides=just_jpeg + sets).run_dir.csv)
            for chunk, sets in ((None, []), (4, ["stop.chunk_samples=4"]))]
    capacity = [df[df.config == "capacity"].psnr_db.iloc[0] for df in rows]
    assert capacity[0] == capacity[1]
