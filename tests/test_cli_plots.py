"""The command line end to end on a tiny scenario: run, summary, plots from the CSV, list, help texts."""

import re

import pytest

from linksim.cli import main
from linksim.plots import load_run, plot_metric, rate_columns


def test_run_writes_results_manifest_and_plots(write_scenario, tmp_path, capsys):
    path = write_scenario()
    assert main(["run", str(path), "--profile", "quick", "--out", str(tmp_path), "--run-id", "r", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "8 points run, 0 reused; complete" in out and "error_rate" in out
    run = tmp_path / "tiny" / "r"
    for name in ["results.csv", "manifest.json", "plots/bler_vs_snr_db.png", "plots/ber_vs_snr_db.pdf",
                 "plots/error_rate_vs_snr_db.png"]:
        assert (run / name).is_file(), name
    data = load_run(run / "results.csv")
    assert data.manifest["profile"] == "quick" and data.manifest["scenario"]["stop"]["max_samples"] == 100
    assert data.manifest["sessions"][0]["versions"]["sionna-no-rt"].startswith("2.")
    assert rate_columns(data.df) == ["error_rate", "bler", "ber"]
    fig = plot_metric([data], "ber")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "unc | awgn (theory)" in labels and "ldpc | awgn (Shannon limit)" in labels
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_xlabel() == "Eb/N0 [dB]"

    assert main(["run", str(path), "--profile", "quick", "--out", str(tmp_path), "--run-id", "r", "--resume",
                 "--quiet"]) == 0
    assert "0 points run, 8 reused" in capsys.readouterr().out

    assert main(["plot", str(run / "results.csv"), str(run / "results.csv"), "-m", "ber", "--out",
                 str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "ber_vs_snr_db.png").is_file()


def test_cuda_request_without_gpu_is_a_one_line_error(write_scenario, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", str(write_scenario()), "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linksim: error: device 'cuda'") and len(err.splitlines()) == 1


def test_list_shows_registered_components(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "digital_link" in out and "tdl-a-ls" in out and "rayleigh" in out and "mnist" in out


def test_a_scenario_can_draw_a_figure_per_group_of_schemes(write_scenario, tmp_path, capsys):
    from conftest import SMALL_SCENARIO

    figures = SMALL_SCENARIO + """\
outputs:
  plots:
    - {metric: bler, name: coded, title: "5G LDPC only", schemes: [ldpc]}
    - {metric: ber}
"""
    path = write_scenario(figures)
    assert main(["run", str(path), "--profile", "quick", "--out", str(tmp_path), "--run-id", "r", "--quiet"]) == 0
    plots = tmp_path / "tiny" / "r" / "plots"
    assert sorted(p.name for p in plots.glob("*.png")) == ["ber_vs_snr_db.png", "coded_bler_vs_snr_db.png"]
    data = load_run(tmp_path / "tiny" / "r" / "results.csv")
    fig = plot_metric([data], "bler", schemes=["ldpc"], title="5G LDPC only")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels and all(label.startswith("ldpc |") for label in labels)
    assert fig.axes[0].get_title() == "5G LDPC only"
    # a figure naming a scheme the scenario lacks is a one-line error naming the key
    capsys.readouterr()
    bad = write_scenario(figures.replace("schemes: [ldpc]", "schemes: [ldcp]"), name="bad")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "outputs.plots[0].schemes names no scheme of this scenario: ldcp" in err and len(err.splitlines()) == 1


def test_means_are_drawn_with_their_intervals_on_a_linear_axis(tmp_path):
    import math

    import numpy as np
    import pandas as pd

    rows = [{"scheme": "img", "channel": "awgn", "snr_db": x, "snr_axis": "esno", "esno_db": x, "primary": "psnr_db",
             "errors": math.nan, "error_rate": math.nan, "ci_low": math.nan, "ci_high": math.nan,
             "psnr_db": 20 + x, "psnr_db_ci_low": 19.5 + x, "psnr_db_ci_high": 20.5 + x, "psnr_db_std": 2.0,
             "failure_rate": 0.1 / (1 + x), "failure_rate_ci_low": 0.05 / (1 + x), "failure_rate_ci_high": 0.2 / (1 + x)}
            for x in (0.0, 5.0, 10.0)]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    data = load_run(tmp_path / "results.csv")
    assert rate_columns(data.df) == ["psnr_db", "failure_rate"]  # no error_rate: the primary is a mean
    fig = plot_metric([data], "psnr_db")
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and len(ax.containers) == 1
    bars = ax.containers[0].lines[2][0].get_segments()  # the vertical error bars, one per point
    assert [tuple(np.round(s[:, 1], 6)) for s in bars] == [(19.5, 20.5), (24.5, 25.5), (29.5, 30.5)]
    assert plot_metric([data], "failure_rate").axes[0].get_yscale() == "log"  # a rate: log axis
    assert plot_metric([data], "psnr_db", log_y=True).axes[0].get_yscale() == "log"  # the figure's choice wins


def test_help_and_list_are_plain_text_and_the_version_prints(capsys):
    from linksim import __version__
    from linksim.cli import _parser

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"linksim {__version__}"
    parser = _parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            texts.append(sub.format_help())
            for arg in sub._actions:
                if arg.dest != "help":
                    assert arg.help, f"linksim {name} {arg.dest}: no help text"
    assert main(["list"]) == 0
    texts.append(capsys.readouterr().out)
    for text in texts:
        assert not re.search(r":(class|func|mod|meth|attr):|``", text), text
    assert "zero-" in texts[-1]  # rayleigh's whole first paragraph, not its first line ("... then")


def test_an_unwritable_output_directory_is_a_one_line_error(write_scenario, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["run", str(write_scenario()), "--out", str(blocker / "sub"), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("linksim: error: cannot write ") and "Not a directory" in err[0]
