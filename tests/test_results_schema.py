"""The results file's shape: tidy configuration rows, stable leading columns, every column documented."""

import re

from conftest import IMAGE_SCENARIO, undocumented

from linksim.cli import main
from linksim.results import LEADING_COLUMNS, read_results


def test_configurations_get_rows_and_a_resumed_run_writes_the_same_bytes(write_scenario, tmp_path):
    path = write_scenario(IMAGE_SCENARIO)
    common = ["run", str(path), "--out", str(tmp_path), "--quiet", "--no-plots"]
    assert main(common + ["--run-id", "straight"]) == 0
    assert main(common + ["--run-id", "split", "--max-units", "1"]) == 0
    assert main(common + ["--run-id", "split", "--resume"]) == 0
    straight = tmp_path / "tidy" / "straight" / "results.csv"
    assert straight.read_bytes() == (tmp_path / "tidy" / "split" / "results.csv").read_bytes()
    df = read_results(straight)
    assert list(df.columns[:4]) == list(LEADING_COLUMNS)
    jpeg = df[df.scheme == "jpeg"]
    assert list(jpeg.config) == ["", "qpsk-r1_2", "16qam-r1_2", "capacity"] * 2  # headline, then each option
    assert list(df[df.scheme == "ldpc"].config) == ["", ""]
    head = jpeg[jpeg.config == ""].set_index("snr_db")
    for snr, point in jpeg.groupby("snr_db"):
        best = point[point.config == head.loc[snr, "best_mcs"]]
        assert float(best.psnr_db.iloc[0]) == float(head.loc[snr, "psnr_db"])  # the envelope is one MCS's row
        assert point.samples.eq(8).all() and point.stop_reason.eq("max_samples").all()
    assert not [c for c in df.columns if re.search(r"_(qpsk|16qam)-r1_2|_capacity", c)]  # no per-config columns
    capacity = jpeg[jpeg.config == "capacity"]
    assert capacity.bler.isna().all() and capacity.psnr_db.notna().all()
    # snr-at and plot read a configuration by name
    assert main(["snr-at", str(straight), "-m", "psnr_db", "-t", "10", "--x", "esno_db", "--config", "capacity"]) == 0
    assert main(["plot", str(straight), "-m", "psnr_db", "--where", "config=qpsk-r1_2", "--where",
                 "config=capacity", "--out", str(tmp_path / "f"), "--format", "png"]) == 0


def test_every_column_of_a_run_is_documented(write_scenario, tmp_path):
    """docs/results.md names every column that a digital-link and an image-baseline run write (and
    tests/test_contracts.py checks every registered scheme's row the same way)."""
    path = write_scenario(IMAGE_SCENARIO)
    assert main(["run", str(path), "--out", str(tmp_path), "--run-id", "r", "--quiet", "--no-plots"]) == 0
    assert not undocumented(read_results(tmp_path / "tidy" / "r" / "results.csv").columns)


def test_an_image_baseline_reports_its_headline_not_its_first_mcs(write_scenario, tmp_path, capsys):
    """Its primary (what target_errors counts) is the first MCS's failure rate, but a headline row
    holds the envelope's: the per-point lines, the summary and the manifest name the rows' columns."""
    import json

    path = write_scenario(IMAGE_SCENARIO)
    assert main(["run", str(path), "--out", str(tmp_path), "--run-id", "r", "--quiet", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "qpsk-r1_2" not in out and "jpeg: image_failure_rate = failed / samples" in out
    assert re.search(r"^jpeg / awgn +0 +image_failure_rate ", out, flags=re.MULTILINE)
    manifest = json.loads((tmp_path / "tidy" / "r" / "manifest.json").read_text())
    assert manifest["schemes"]["jpeg"]["primary"] == {"name": "image_failure_rate", "errors": "failed",
                                                      "of": "samples"}
