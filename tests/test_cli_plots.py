"""The command line end to end on a tiny scenario: run, summary, plots from the CSV, list, help texts."""

import re
from pathlib import Path

import pandas as pd
import pytest

from linksim.cli import main
from linksim.plots import load_run, plot_metric, rate_columns


def _legend_labels(fig) -> list[str]:
    """The legend's entries, inside the axes or (many entries) under them."""
    legend = fig.axes[0].get_legend() or fig.legends[0]
    return [t.get_text() for t in legend.get_texts()]


def test_run_writes_results_manifest_and_plots(write_scenario, tmp_path, capsys):
    path = write_scenario()
    assert main(["run", str(path), "--profile", "quick", "--out", str(tmp_path), "--run-id", "r", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "8 points run, 0 reused; complete" in out
    assert "ldpc: bler = block_errors / samples" in out and "unc: ber = bit_errors / bits" in out  # what they count
    run = tmp_path / "tiny" / "r"
    for name in ["results.csv", "manifest.json", "plots/bler_vs_snr_db.png", "plots/ber_vs_snr_db.pdf",
                 "plots/error_rate_vs_snr_db.png"]:
        assert (run / name).is_file(), name
    data = load_run(run / "results.csv")
    assert data.manifest["profile"] == "quick" and data.manifest["scenario"]["stop"]["max_samples"] == 100
    assert data.manifest["sessions"][0]["versions"]["sionna-no-rt"].startswith("2.")
    assert rate_columns(data.df) == ["error_rate", "bler", "ber"]
    fig = plot_metric([data], "ber")
    labels = _legend_labels(fig)
    assert "unc | awgn (theory)" in labels and "ldpc | awgn (Shannon limit)" in labels
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_xlabel() == "Eb/N0 [dB]"

    assert main(["run", str(path), "--profile", "quick", "--out", str(tmp_path), "--run-id", "r", "--resume",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 points run, 8 reused" in out and "8 of 8 points finished by an earlier session: reused" in out

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
    labels = _legend_labels(fig)
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


def test_a_run_prints_a_line_per_point_and_one_overall_bar(write_scenario, tmp_path, capsys):
    """As sim_ber: a table line per finished point that stays (stdout), one overall bar (stderr)."""
    from conftest import SMALL_SCENARIO

    path = write_scenario(SMALL_SCENARIO.replace("stop: {batch_size: 100, target_errors: 20, max_samples: 300}",
                                                 "stop: {batch_size: 100, target_errors: 20, max_samples: 300, "
                                                 "stop_sweep_below: 0.5}"))
    assert main(["run", str(path), "--out", str(tmp_path), "--run-id", "r", "--no-plots"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scheme / channel"))
    assert "primary" in lines[header] and "stopped by" in lines[header]
    table = [line for line in lines[header + 1:] if re.match(r"(ldpc|unc) / (awgn|rayleigh) +\d", line)]
    rows = pd.read_csv(tmp_path / "tiny" / "r" / "results.csv")
    assert len(table) == len(rows) >= 4  # one line per point run, in the order they finished
    for line, (_, row) in zip(table, rows.iterrows(), strict=True):
        words = line.split()
        assert words[:4] == [row["scheme"], "/", row["channel"], f"{row['snr_db']:g}"]
        assert f"{row['samples']}" in words and line.rstrip().endswith(
            {"target_errors": "target errors", "max_samples": "max samples"}[row["stop_reason"]])
    cut = [line for line in lines if "(stop_sweep_below)" in line]
    assert cut and "later point(s) not run" in cut[0]  # the swept-below curves say so
    bar = captured.err.replace("\r", "\n")
    assert re.search(rf"points: 100%.*{len(rows)}/{len(rows)}", bar)  # one overall bar, k / N with its ETA


def _zero_error_results(tmp_path):
    rows = [{"scheme": "code", "channel": "awgn", "snr_db": x, "snr_axis": "ebno", "samples": 1000,
             "errors": e, "error_rate": e / 1000, "ci_low": 0.0 if e == 0 else e / 2000, "ci_high": (e + 3) / 1000,
             "bler": e / 1000, "bler_ci_low": 0.0 if e == 0 else e / 2000, "bler_ci_high": (e + 3) / 1000}
            for x, e in ((0.0, 500), (1.0, 40), (2.0, 0), (3.0, 0))]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    return load_run(tmp_path / "results.csv")


def test_points_with_no_errors_are_drawn_as_upper_bounds(tmp_path):
    fig = plot_metric([_zero_error_results(tmp_path)], "bler")
    ax = fig.axes[0]
    bounds = [line for line in ax.get_lines() if line.get_gid() == "upper-bound"]
    assert len(bounds) == 1 and list(bounds[0].get_xdata()) == [2.0, 3.0]
    assert list(bounds[0].get_ydata()) == [0.003, 0.003] and bounds[0].get_marker() == "v"
    labels = _legend_labels(fig)
    assert labels == ["code", "no errors: interval's upper end"]  # one channel: left out of the label
    assert ax.get_ylabel() == "Block error rate" and fig.get_size_inches()[0] == pytest.approx(3.5)


def test_plot_command_filters_limits_sizes_and_styles(tmp_path, capsys):
    import matplotlib.pyplot as plt

    from linksim.plots import plot_files

    data = _zero_error_results(tmp_path)
    fig = plot_metric([data], "bler", where={"snr_db": ["0", "1"]}, xlim=(-1, 4), ylim=(1e-3, 1), size=(5, 3),
                      style="wide", title="two points")
    ax = fig.axes[0]
    assert ax.get_xlim() == (-1, 4) and ax.get_ylim() == pytest.approx((1e-3, 1))
    assert tuple(fig.get_size_inches()) == (5, 3) and ax.get_title() == "two points"
    assert not [line for line in ax.get_lines() if line.get_gid() == "upper-bound"]  # the zero points filtered out
    plt.close(fig)
    assert main(["plot", str(tmp_path / "results.csv"), "-m", "bler", "--where", "snr_db=2", "--where", "snr_db=3",
                 "--xlim", "0", "4", "--size", "4", "3", "--style", "wide", "--title", "T", "--format", "svg",
                 "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "bler_vs_snr_db.svg").is_file()
    assert main(["plot", str(tmp_path / "results.csv"), "--where", "nonsense=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no column 'nonsense' to filter on" in err and len(err.splitlines()) == 1
    with pytest.raises(ValueError, match="no column"):
        plot_files([tmp_path / "results.csv"], tmp_path / "g", where={"nonsense": ["1"]})


def test_plot_redraws_a_run_directory_in_another_style(write_scenario, tmp_path, capsys):
    from matplotlib.image import imread

    path = write_scenario()
    assert main(["run", str(path), "--profile", "quick", "--out", str(tmp_path), "--run-id", "r", "--quiet"]) == 0
    run = tmp_path / "tiny" / "r"
    paper = imread(run / "plots" / "ber_vs_snr_db.png")
    capsys.readouterr()
    assert main(["plot", str(run), "--style", "wide", "--format", "png", "--out", str(tmp_path / "wide")]) == 0
    drawn = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in drawn) == ["ber_vs_snr_db.png", "bler_vs_snr_db.png",
                                                   "error_rate_vs_snr_db.png"]
    wide = imread(tmp_path / "wide" / "ber_vs_snr_db.png")
    assert paper.shape[1] == 3.5 * 300 and wide.shape[1] == 9.5 * 150  # paper: 3.5 in at 300 dpi


def _levels_results(tmp_path) -> Path:
    """Two schemes with three numbered per-level BER columns (and their intervals) and a nominal eps_l<i>."""
    rows = []
    for scheme, scale in (("a", 1.0), ("b", 2.0)):
        for x in (10.0, 20.0):
            row = {"scheme": scheme, "channel": "awgn", "config": "", "snr_db": x, "snr_axis": "esno", "esno_db": x}
            for i in (1, 2, 3):
                value = scale * 10.0 ** -i * (2 if x == 10 else 1)
                row |= {f"ber_l{i}": value, f"ber_l{i}_ci_low": value / 2, f"ber_l{i}_ci_high": value * 2,
                        f"eps_l{i}": 10.0 ** -i}
            rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    return tmp_path / "results.csv"


def test_numbered_columns_are_drawn_against_their_index_at_one_snr(tmp_path):
    from linksim.plots import indexed_rows, plot_indexed

    data = load_run(_levels_results(tmp_path))
    rows = indexed_rows(data.df, "ber_l", 20.0, "eps_l")
    a = rows[rows.scheme == "a"].sort_values("index")
    assert list(a["index"]) == [1.0, 2.0, 3.0] and list(a["ber_l"]) == pytest.approx([0.1, 0.01, 0.001])
    assert list(a["ber_l_ci_high"]) == pytest.approx([0.2, 0.02, 0.002]) and list(a["ber_l_theory"]) == list(a["ber_l"])
    with pytest.raises(ValueError, match="no numbered columns bler_l1"):
        indexed_rows(data.df, "bler_l", 20.0)

    fig = plot_indexed(data, "ber_l", 10.0, "eps_l", ylabel="BER per level")
    ax = fig.axes[0]
    b = next(c for c in ax.containers if c.get_label() == "b")
    assert list(b.lines[0].get_ydata()) == pytest.approx([0.4, 0.04, 0.004])  # scheme b at 10 dB
    theory = [line for line in ax.get_lines() if line.get_label().endswith("(theory)")]
    assert len(theory) == 1  # the nominal values both schemes share: drawn once
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "i (columns ber_li), at 10 dB"


def test_an_index_figure_needs_its_snr_and_plot_run_names_the_file_after_it(tmp_path):
    from types import SimpleNamespace

    from pydantic import ValidationError

    from linksim.config import PlotSpec
    from linksim.plots import plot_run

    with pytest.raises(ValidationError, match="at_snr_db"):
        PlotSpec(metric="ber_l", x="index")
    with pytest.raises(ValidationError, match="belong to x: index"):
        PlotSpec(metric="ber", at_snr_db=20)
    csv = _levels_results(tmp_path)
    figures = [PlotSpec(metric="ber_l", x="index", at_snr_db=20, reference="eps_l", name="fig9", schemes=["a"]),
               PlotSpec(metric="nothing_l", x="index", at_snr_db=20)]  # no such columns: skipped
    scenario = SimpleNamespace(outputs=SimpleNamespace(plots=figures, style="paper", formats=["png"]))
    run_dir = SimpleNamespace(csv=csv, plots=tmp_path / "plots")  # what plot_run reads of a RunDirectory
    assert [p.name for p in plot_run(run_dir, scenario)] == ["fig9_ber_l_vs_index_at_20db.png"]


def test_plot_command_draws_numbered_columns_at_one_snr(tmp_path, capsys):
    csv = _levels_results(tmp_path)
    assert main(["plot", str(csv), "--x", "index", "-m", "ber_l", "--at-snr-db", "20", "--reference", "eps_l",
                 "--scheme", "a", "--out", str(tmp_path / "fig"), "--format", "png"]) == 0
    assert (tmp_path / "fig" / "ber_l_vs_index_at_20db.png").is_file()
    capsys.readouterr()
    assert main(["plot", str(csv), "--x", "index", "-m", "ber_l", "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--at-snr-db" in err and len(err.splitlines()) == 1
