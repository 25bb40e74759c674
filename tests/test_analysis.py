"""SNR at a target error rate or PSNR, and shifts between curves."""

import math

import pandas as pd
import pytest

from linksim.analysis import snr_at
from linksim.cli import main


def _results():
    rows = []
    for scheme, rates in {"a": [0.5, 0.1, 0.01, 0.001], "b": [0.9, 0.5, 0.1, 0.01], "c": [0.3, 0.3, 0.3, 0.3],
                          "d": [0.001, 0.0, 0.0, 0.0]}.items():
        for x, r in zip([0.0, 2.0, 4.0, 6.0], rates):
            rows.append({"scheme": scheme, "channel": "awgn", "snr_norm_db": x, "error_rate": r})
    rows.append({"scheme": "a", "channel": "tdl", "snr_norm_db": 0.0, "error_rate": 0.5})
    rows.append({"scheme": "a", "channel": "tdl", "snr_norm_db": 4.0, "error_rate": 0.0})
    return pd.DataFrame(rows).sample(frac=1, random_state=0)  # row order must not matter


def test_crossing_is_interpolated_in_log_error_rate_and_shifts_are_per_channel():
    t = snr_at(_results(), 0.03162, reference="a").set_index(["scheme", "channel"])
    # a: 0.1 at 2 dB, 0.01 at 4 dB -> 10^-1.5 halfway, at 3 dB; b one grid step later
    assert t.loc[("a", "awgn"), "snr_norm_db_at_target"] == pytest.approx(3.0, abs=1e-3)
    assert t.loc[("b", "awgn"), "shift_db"] == pytest.approx(2.0, abs=1e-3)
    assert math.isnan(t.loc[("c", "awgn"), "snr_norm_db_at_target"]) and t.loc[("c", "awgn"), "floor"] == 0.3
    assert math.isnan(t.loc[("d", "awgn"), "snr_norm_db_at_target"])  # below the target from its first point
    # zero errors at the next point: the grid point itself
    assert t.loc[("a", "tdl"), "snr_norm_db_at_target"] == 4.0 and t.loc[("a", "tdl"), "shift_db"] == 0.0


def test_unknown_reference_or_column_is_refused():
    with pytest.raises(ValueError, match="reference scheme 'z' is not in the results"):
        snr_at(_results(), 0.1, reference="z")
    with pytest.raises(ValueError, match="no column 'esno_db'"):
        snr_at(_results(), 0.1, x="esno_db")


def test_cli_prints_the_table(tmp_path, capsys):
    path = tmp_path / "results.csv"
    _results().to_csv(path, index=False)
    assert main(["snr-at", str(path), "--target", "0.1", "--reference", "b"]) == 0
    out = capsys.readouterr().out
    assert "snr_norm_db [dB] at which error_rate falls to 0.1; shift_db relative to b" in out
    assert main(["snr-at", str(path), "-t", "0.1", "-r", "nope"]) == 2


def _psnr_results(with_intervals: bool = True) -> pd.DataFrame:
    """Rising PSNR curves (a mean: with ``_ci_*`` and ``_std`` columns) and a falling error rate."""
    rows = []
    for scheme, values in {"hevc": [18.0, 22.0, 26.0, 30.0], "jpeg": [15.0, 19.0, 23.0, 24.0],
                           "good": [27.0, 29.0, 31.0, 33.0]}.items():
        for x, v in zip([0.0, 5.0, 10.0, 15.0], values):
            row = {"scheme": scheme, "channel": "awgn", "esno_db": x, "psnr_db": v, "error_rate": 0.5 / (1 + x)}
            if with_intervals:
                row.update(psnr_db_ci_low=v - 0.3, psnr_db_ci_high=v + 0.3, psnr_db_std=3.0)
            rows.append(row)
    return pd.DataFrame(rows).sample(frac=1, random_state=1)


@pytest.mark.parametrize("with_intervals", [True, False])
def test_a_rising_psnr_curve_is_crossed_upwards_with_linear_interpolation(with_intervals):
    t = snr_at(_psnr_results(with_intervals), 25.0, x="esno_db", metric="psnr_db", reference="hevc")
    t = t.set_index("scheme")
    # hevc: 22 dB at 5 dB, 26 dB at 10 dB -> 25 dB three quarters of the way (linear in dB), at 8.75 dB
    assert t.loc["hevc", "esno_db_at_target"] == pytest.approx(8.75)
    assert math.isnan(t.loc["jpeg", "esno_db_at_target"]) and t.loc["jpeg", "ceiling"] == 24.0  # never gets there
    assert math.isnan(t.loc["good", "esno_db_at_target"])  # above the target from its first point
    assert "floor" not in t.columns and t.loc["hevc", "shift_db"] == 0.0
    # the direction can be forced: read as a falling metric, no curve crosses 25 dB downwards
    falls = snr_at(_psnr_results(with_intervals), 25.0, x="esno_db", metric="psnr_db", direction="falls")
    assert falls["esno_db_at_target"].isna().all() and "floor" in falls.columns
    with pytest.raises(ValueError, match="direction: expected falls or rises"):
        snr_at(_psnr_results(), 25.0, x="esno_db", metric="psnr_db", direction="up")


def test_cli_answers_the_snr_at_which_psnr_reaches_25_db(tmp_path, capsys):
    path = tmp_path / "results.csv"
    _psnr_results().to_csv(path, index=False)
    assert main(["snr-at", str(path), "-m", "psnr_db", "-t", "25", "--x", "esno_db"]) == 0
    out = capsys.readouterr().out
    assert "esno_db [dB] at which psnr_db rises to 25:" in out and "8.75" in out and "ceiling" in out
    assert main(["snr-at", str(path), "-m", "psnr_db", "-t", "25", "--x", "esno_db", "--falls"]) == 0
    assert "psnr_db falls to 25" in capsys.readouterr().out
