"""What the example scripts share: their command line, running a scenario, a compact table, the figure,
and the tiny synthetic dataset file their ``--smoke`` form reads instead of MNIST."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

import linksim

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
CIFAR10_COPY = ("a local copy of CIFAR-10 instead of the download: the canonical cifar-10-python.tar.gz, its extracted "
                "folder, or a train|test/<class>/*.png|jpg folder or zip; label results from a re-encoded copy "
                "(e.g. JPEG q75) as such")
MNIST_COPY = "for MNIST: a directory with the four idx files, mnist.npz or mnist.pkl.gz"


def parser(doc: str, data: str | None = None) -> argparse.ArgumentParser:
    """``--profile``, ``--out``, ``--smoke`` and, when the scenario can read a local dataset copy,
    ``--data`` (``data`` is its help text); the script's docstring is the ``--help`` text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick",
                        help="the scenario's profile (quick, cpu, full, ... as the YAML defines them; default quick); "
                             "none: the scenario as written, the paper's grid")
    parser.add_argument("--out", default="results",
                        help="output root: the run is OUT/<scenario>/<run id> (default results)")
    parser.add_argument("--resume", action="store_true",
                        help="continue (or just reopen) the latest run of the same scenario, profile and overrides "
                             "under OUT instead of starting a new one")
    parser.add_argument("--smoke", action="store_true",
                        help="the CI form (on top of the quick profile): synthetic images, tiny models, one or two "
                             "SNR points, under a minute on one CPU core, offline; its models go to "
                             "OUT/smoke-models, not to the weight cache")
    if data:
        parser.add_argument("--data", metavar="PATH", help=data)
    return parser


def run(name: str, args: argparse.Namespace, overrides: list[str], data_kinds: tuple[str, ...] = ()) -> linksim.Run:
    """Run ``scenarios/<name>.yaml`` with ``args.profile`` and ``overrides`` into a new run directory under
    ``args.out`` (``args.resume``: continue the latest run of the same scenario and overrides, if any);
    ``args.data`` (a local dataset copy) becomes the ``data.path`` of every scheme type of ``data_kinds``."""
    if getattr(args, "data", None):
        overrides = [*overrides, *(f"scheme_defaults.{kind}.data.path={args.data}" for kind in data_kinds)]
    if args.smoke:
        os.environ["LINKSIM_MODELS"] = str(Path(args.out) / "smoke-models")
    profile = "quick" if args.smoke else None if args.profile in ("none", "") else args.profile
    scenario = linksim.load_scenario(SCENARIOS / f"{name}.yaml", profile=profile, overrides=overrides)
    return linksim.run(scenario, out=args.out, resume=args.resume, progress=not args.smoke,
                       report=not args.smoke, plots=not args.smoke)


def headline(df: pd.DataFrame, config: str = "") -> pd.DataFrame:
    """Each point's headline row (``config`` empty: e.g. an image baseline's best-MCS envelope), or the
    rows of one configuration (an MCS by name, ``capacity``)."""
    return df[df["config"] == config] if "config" in df.columns else df


def table(df: pd.DataFrame, columns: list[str]) -> None:
    """Print ``columns`` of a results frame, one row per point, without the index."""
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        print(df[columns].to_string(index=False))


def interval(df: pd.DataFrame, metric: str, digits: int = 2) -> pd.Series:
    """``metric`` with its 95 % interval as text, e.g. ``24.31 [24.02, 24.60]``."""
    return df.apply(lambda r: f"{r[metric]:.{digits}f} [{r[f'{metric}_ci_low']:.{digits}f}, "
                              f"{r[f'{metric}_ci_high']:.{digits}f}]", axis=1)


def save(figure, run: linksim.Run, name: str) -> Path:
    """Save ``figure`` as ``<run directory>/<name>.png`` and say where."""
    path = run.path / f"{name}.png"
    figure.savefig(path, dpi=200)
    print(f"figure: {path}")
    return path


def synthetic_cifar(kinds: tuple[str, ...], images: int) -> list[str]:
    """Overrides that give every scheme type in ``kinds`` the registered ``synthetic-cifar`` set (3 x 32 x 32,
    no files) and ``images`` test images: the ``--smoke`` stand-in for CIFAR-10."""
    return [f"scheme_defaults.{kind}.data.{key}" for kind in kinds
            for key in ("name=synthetic-cifar", f"eval_subset={images}")]


def synthetic_mnist(out: str, train: int = 300, test: int = 100) -> str:
    """A file in linksim's converted-MNIST format (``.npz``, what ``data.path`` accepts for ``mnist``)
    holding seeded synthetic 1 x 28 x 28 images of 10 classes (:func:`linksim.data.synthetic_images`):
    the ``--smoke`` stand-in for MNIST, for the schemes whose architecture is fixed per dataset name."""
    from linksim.data import synthetic_images
    from linksim.data.cache import save_converted

    path = Path(out) / "smoke-data" / "synthetic-mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    splits = {split: synthetic_images(n, shape=(1, 28, 28), seed=seed) for split, n, seed in
              (("train", train, 0), ("test", test, 1))}
    save_converted(path, {k: (d.images.numpy(), d.labels.numpy()) for k, d in splits.items()},
                   splits["train"].classes, "synthetic stand-in for MNIST (linksim.data.synthetic_images, --smoke)")
    return str(path)
