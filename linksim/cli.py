"""The linksim command line; every command calls the Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _load(args):
    from linksim.config import load_scenario

    overrides = list(args.set or [])
    if getattr(args, "device", None):
        overrides.append(f"device={args.device}")
    return load_scenario(args.scenario, args.profile, overrides), overrides


def _cmd_validate(args) -> int:
    from linksim.runner import work_units

    scenario, _ = _load(args)
    print(f"{args.scenario}: ok: {len(scenario.schemes)} schemes x {len(scenario.channels)} channels, "
          f"{len(work_units(scenario))} work units, axis {scenario.snr.axis}")
    return 0


def _summary(csv: Path, manifest: dict) -> str:
    """The final table: every point's primary (name, value, interval), ``samples``, ``errors``, and BER
    and BLER where a scheme has them; then what ``samples`` and ``errors`` count, per scheme."""
    import pandas as pd

    from linksim.progress import STOP_LABELS
    from linksim.results import mean_primary, primary_of, read_results

    df = read_results(csv)
    df = df[df["config"] == ""]  # each point's headline row (configurations: linksim plot / the CSV)
    primaries = {name: entry.get("primary") or {} for name, entry in manifest.get("schemes", {}).items()}
    rows = df.to_dict("records")
    names = [row["primary"] if mean_primary(row) else primaries.get(row["scheme"], {}).get("name", "error_rate")
             for row in rows]
    value, low, high = zip(*map(primary_of, rows), strict=True) if rows else ((), (), ())
    table = pd.DataFrame({"scheme": df["scheme"], "channel": df["channel"], "snr_db": df["snr_db"], "primary": names,
                          "value": value, "ci_low": low, "ci_high": high,
                          "samples": df["samples"], "errors": df["errors"]}, index=df.index)
    for extra in ("ber", "bler"):
        if extra in df and df[extra].notna().any():
            table[extra] = df[extra]
    if "stop_reason" in df and df["stop_reason"].notna().any():
        table["stopped by"] = df["stop_reason"].map(lambda r: STOP_LABELS.get(r, r) if isinstance(r, str) else "-")
    table = table.dropna(axis=1, how="all")
    lines = [table.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
             "", ("samples: items simulated per point (the scheme's unit: codewords, blocks, images); "
                  "errors: the count behind a rate primary:")]
    for scheme in dict.fromkeys(df["scheme"]):
        p = primaries.get(scheme, {})
        if "errors" in p:
            lines.append(f"  {scheme}: {p['name']} = {p['errors']} / {p['of']}; errors = {p['errors']}")
        elif "mean_over" in p:
            lines.append(f"  {scheme}: {p['name']} is a mean over {p['mean_over']} (no error count)")
    return "\n".join(lines)


def _cmd_run(args) -> int:
    from linksim.runner import RunOptions, run_scenario

    scenario, overrides = _load(args)
    opts = RunOptions(profile=args.profile, overrides=overrides, scenario_file=args.scenario, out=args.out,
                      resume=args.resume, run_id=args.run_id, max_units=args.max_units,
                      plots=not args.no_plots, progress=not args.quiet, compile=args.compile,
                      cuda_graphs=args.cuda_graphs, executor=args.executor, ray_address=args.ray_address,
                      workers=args.workers)
    summary = run_scenario(scenario, opts)
    rd = summary.run_dir
    if rd.csv.is_file():
        print(_summary(rd.csv, rd.load_manifest()))
    state = "complete" if summary.remaining == 0 else f"{summary.remaining} work units left (rerun with --resume)"
    cut = f", {summary.cut} cut by stop_sweep_below" if summary.cut else ""
    print(f"\n{summary.finished} points run, {summary.skipped} reused{cut}; {state}\nresults: {rd.csv}\nmanifest: {rd.manifest_path}")
    return 0


def _where(assignments: list[str] | None) -> dict[str, list[str]]:
    """``--where COL=VALUE`` (repeatable; one column given twice keeps either value) as a filter."""
    out: dict[str, list[str]] = {}
    for a in assignments or []:
        column, sep, value = a.partition("=")
        if not sep or not column:
            raise RuntimeError(f"--where {a!r}: expected COLUMN=VALUE, e.g. --where config=qpsk-r1_2")
        out.setdefault(column.strip(), []).append(value.strip())
    return out


def _cmd_plot(args) -> int:
    import json

    from linksim.config import Scenario
    from linksim.plots import plot_files, plot_run
    from linksim.results import RunDirectory

    paths = [Path(r) for r in args.results]
    if all(p.is_dir() for p in paths) and not args.metric:  # run directories: their scenario's own figures
        for p in paths:
            run = RunDirectory(p)
            if not run.manifest_path.is_file():
                raise RuntimeError(f"{p}: no manifest.json (a run directory of `linksim run` was expected)")
            scenario = Scenario.model_validate(json.loads(run.manifest_path.read_text())["scenario"])
            scenario.outputs.formats = list(args.format)
            for f in plot_run(run, scenario, args.style, Path(args.out) if args.out else None):
                print(f)
        return 0
    csvs = [p / "results.csv" if p.is_dir() else p for p in paths]
    out = Path(args.out) if args.out else csvs[0].parent / "plots"
    figure = {"schemes": args.scheme, "channels": args.channel, "where": _where(args.where), "title": args.title,
              "ylabel": args.ylabel,
              "xlim": args.xlim, "ylim": args.ylim, "size": args.size, "log_y": args.log_y}
    if args.x == "index":
        figure.update(at_snr_db=args.at_snr_db, reference=args.reference)
    try:
        drawn = plot_files(csvs, out, args.metric, args.x, tuple(args.format), args.style or "paper", **figure)
    except (KeyError, ValueError) as err:
        raise RuntimeError(f"{csvs[0]}: {err}") from None
    for p in drawn:
        print(p)
    return 0


def _cmd_snr_at(args) -> int:
    from linksim.analysis import snr_at
    from linksim.results import read_results

    try:
        table = snr_at(read_results(args.results), args.target, args.x, args.metric, args.reference, args.direction,
                       args.config)
    except ValueError as err:
        raise RuntimeError(f"{args.results}: {err}") from None
    way = "falls to" if "floor" in table.columns else "rises to"
    print(f"{args.x} [dB] at which {args.metric} {way} {args.target:g}"
          + (f"; shift_db relative to {args.reference}" if args.reference else "") + ":")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _cmd_list(args) -> int:
    import shutil
    import textwrap

    from linksim import registry

    width = max(60, min(120, shutil.get_terminal_size().columns))

    def entries(table) -> None:
        for name, e in sorted(table.items()):
            print(textwrap.fill(e.doc, width, initial_indent=f"  {name:20s} ", subsequent_indent=" " * 23))

    print("schemes:")
    entries(registry.schemes())
    print("channels:")
    entries(registry.channels())
    print("bit channels (bits in, bits + flip probability out; built by schemes that take one):")
    entries(registry.bit_channels())
    print("channel presets (usable by name in `channels:` or `--set channel=NAME`):")
    for name, (kind, params) in sorted(registry.channel_presets().items()):
        print(f"  {name:20s} {kind} {params or ''}")
    print("datasets:")
    for name in sorted(registry.datasets()):
        print(f"  {name}")
    return 0


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (else argparse's one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, found {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from linksim import __version__

    p = argparse.ArgumentParser(prog="linksim", description=__doc__)
    p.add_argument("--version", action="version", version=f"linksim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def scenario_args(sp):
        sp.add_argument("scenario", help="scenario YAML file")
        sp.add_argument("--profile", "-p", help="named profile of the file, e.g. quick")
        sp.add_argument("--set", "-s", action="append", metavar="KEY=VALUE",
                        help="override any key, e.g. --set channel=tdl-a or --set schemes.ldpc-qpsk.params.k=256")

    r = sub.add_parser("run", help="run a scenario")
    scenario_args(r)
    r.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="where to run (default: the scenario's device; auto: a GPU if there is one)")
    r.add_argument("--out", help="output root (default: the scenario's outputs.root)")
    r.add_argument("--resume", action="store_true", help="continue the latest run of this scenario")
    r.add_argument("--run-id", help="name of the run directory")
    r.add_argument("--max-units", type=_positive_int, help="stop after this many new points (resume later)")
    r.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the hot paths (auto: on a GPU only); results are the same up to rounding")
    r.add_argument("--cuda-graphs", choices=["auto", "off"], default="auto",
                   help="replay training steps as CUDA graphs (auto: on a GPU); results are the same up to rounding")
    r.add_argument("--no-plots", action="store_true", help="write the results, draw no figures")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    r.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="run the tasks in this process (local) or as Ray tasks (ray: pip install -e \".[ray]\"); "
                        "the results are the same")
    r.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="join this Ray cluster (default: start a local Ray instance of --workers CPUs)")
    r.add_argument("--workers", type=_positive_int, help="Ray tasks at once (default: the instance's CPUs)")
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("validate", help="check a scenario file without running it")
    scenario_args(v)
    v.set_defaults(func=_cmd_validate)

    pl = sub.add_parser("plot", help="plot results.csv files (overlaid), or redraw run directories' own figures")
    pl.add_argument("results", nargs="+",
                    help="results.csv files to overlay, or run directories: alone and without --metric, each "
                         "run's scenario figures are redrawn")
    pl.add_argument("--metric", "-m", action="append", help="column to plot, repeatable (default: every rate)")
    pl.add_argument("--x", default="snr_db", choices=["snr_db", "esno_db", "ebno_db", "snr_norm_db", "index"],
                    help="x axis: the scenario's SNR axis (snr_db) or one of the others (default: snr_db); index: "
                         "the numbered columns METRIC1, METRIC2, ... against their number at --at-snr-db")
    pl.add_argument("--at-snr-db", type=float, help="with --x index: the SNR (scenario axis) of the rows drawn")
    pl.add_argument("--reference", metavar="STEM",
                    help="with --x index: numbered columns drawn as the theory line, e.g. eps_l")
    pl.add_argument("--scheme", action="append", help="draw only this scheme, repeatable (default: all)")
    pl.add_argument("--channel", action="append", help="draw only this channel, repeatable (default: all)")
    pl.add_argument("--where", action="append", metavar="COLUMN=VALUE",
                    help="keep rows whose COLUMN holds VALUE, repeatable, e.g. --where stop_reason=max_samples")
    pl.add_argument("--title", help="title over the axes")
    pl.add_argument("--ylabel", help="y axis label (default: the metric's, e.g. 'Block error rate')")
    pl.add_argument("--xlim", nargs=2, type=float, metavar=("LOW", "HIGH"), help="x axis range")
    pl.add_argument("--ylim", nargs=2, type=float, metavar=("LOW", "HIGH"), help="y axis range")
    pl.add_argument("--size", nargs=2, type=float, metavar=("WIDTH", "HEIGHT"),
                    help="figure size in inches (default: the style's, 3.5 x 2.6 for paper)")
    scale = pl.add_mutually_exclusive_group()
    scale.add_argument("--log-y", dest="log_y", action="store_const", const=True,
                       help="logarithmic y axis (default: for rates)")
    scale.add_argument("--linear-y", dest="log_y", action="store_const", const=False,
                       help="linear y axis (default: for means and other columns)")
    pl.add_argument("--style", choices=["paper", "wide"], default=None,
                    help="paper: one column, 8 pt, legend inside; wide: for screens (default: paper, or for "
                         "run directories each figure's own)")
    pl.add_argument("--out", help="directory for the figures (default: next to the first CSV)")
    pl.add_argument("--format", action="append", default=None, choices=["png", "pdf", "svg"],
                    help="file format, repeatable (default: png and pdf)")
    pl.set_defaults(func=_cmd_plot)

    sa = sub.add_parser("snr-at", help="the SNR each curve of a results.csv needs to reach a target error rate "
                                       "(or PSNR, SSIM, any column)")
    sa.add_argument("results", help="a results.csv file")
    sa.add_argument("--target", "-t", type=float, required=True,
                    help="value of --metric: an error rate (0.02), a PSNR in dB (25), ...")
    sa.add_argument("--x", default="snr_norm_db", choices=["snr_db", "esno_db", "ebno_db", "snr_norm_db"],
                    help="the SNR axis to report (default: snr_norm_db, the rate-normalised SNR)")
    sa.add_argument("--metric", "-m", default="error_rate",
                    help="column to read, e.g. error_rate (default), ber, psnr_db, ssim; rates are "
                         "interpolated in log space, means (PSNR in dB, SSIM) linearly")
    way = sa.add_mutually_exclusive_group()
    way.add_argument("--falls", dest="direction", action="store_const", const="falls",
                     help="the metric falls with SNR (an error rate); default: guessed from the curves")
    way.add_argument("--rises", dest="direction", action="store_const", const="rises",
                     help="the metric rises with SNR (PSNR, SSIM); default: guessed from the curves")
    sa.add_argument("--reference", "-r", help="scheme the others are compared with (adds shift_db)")
    sa.add_argument("--config", default="",
                    help="read the rows of this configuration, e.g. one MCS of an image baseline (default: each "
                         "point's headline row)")
    sa.set_defaults(func=_cmd_snr_at)

    ls = sub.add_parser("list", help="registered schemes, channels and datasets")
    ls.set_defaults(func=_cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "format", None) is None and args.command == "plot":
        args.format = ["png", "pdf"]
    from linksim.config import ConfigError

    try:
        return args.func(args)
    except ConfigError as err:
        print("\n".join(err.lines), file=sys.stderr)
        return 2
    except (RuntimeError, FileNotFoundError) as err:
        print(f"linksim: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full, read-only or vanished output directory: one line, finished points kept
        where = f" {err.filename}" if err.filename else ""
        print(f"linksim: error: cannot write{where}: {err.strerror or err} (finished points are saved; fix "
              "the output directory and rerun with --resume)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linksim: interrupted; finished points are saved (rerun with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
