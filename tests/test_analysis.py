"""SNR at a target error rate, and shifts between curves."""

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
    assert "snr_norm_db [dB] at which error_rate reaches 0.1; shift_db relative to b" in out
    assert main(["snr-at", str(path), "-t", "0.1", "-r", "nope"]) == 2
