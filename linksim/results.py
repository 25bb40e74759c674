"""Run directories: atomic ``results.csv`` after every point, ``manifest.json``, resume."""

from __future__ import annotations

import csv
import io
import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from linksim.atomic import atomic_write_text

__all__ = ["LEADING_COLUMNS", "RunDirectory", "is_rate", "mean_primary", "primary_of", "read_results"]


#: the first columns of every results file, in this order (the rest follow as the rows have them)
LEADING_COLUMNS = ("scheme", "channel", "config", "snr_db")


def read_results(path: str | Path) -> pd.DataFrame:
    """A ``results.csv`` as a DataFrame (``scheme``, ``channel`` and ``config`` as strings, ``config``
    ``""`` on a point's headline row). Only empty fields are missing values (what the writer leaves
    for NaN), so a scheme named ``NA``, ``nan`` or ``null`` reads back as its name. A file written
    before configurations had rows of their own gets an empty ``config`` column."""
    df = pd.read_csv(path, dtype={"scheme": str, "channel": str, "config": str}, keep_default_na=False,
                     na_values=[""])
    if "config" in df.columns:
        df["config"] = df["config"].fillna("")
    else:  # one concat, not an insert into a wide frame
        df = pd.concat([df.iloc[:, :2], pd.DataFrame({"config": ""}, index=df.index), df.iloc[:, 2:]], axis=1)
    return df


def _cut_rows(path: Path) -> list[int]:
    """Data-row indices (0-based, as :func:`read_results` numbers them) of rows a damaged file cut
    short: fewer fields than the header, or a last line without its line end (the writer ends every
    row; it writes files atomically, so only outside damage leaves such a row)."""
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    width = len(rows[0])
    cut = [i - 1 for i, row in enumerate(rows[1:], start=1) if len(row) != width]
    if not text.endswith("\n") and len(rows) > 1 and (len(rows) - 2) not in cut:
        cut.append(len(rows) - 2)
    return cut


def mean_primary(row: Mapping) -> bool:
    """Whether a results row's primary is a mean: its ``primary`` column names it (empty for a rate)."""
    return isinstance(row.get("primary"), str)


def primary_of(row: Mapping) -> tuple[float, float, float]:
    """A results row's primary as (value, interval low, interval high): the named mean's columns, or a
    rate primary's ``error_rate, ci_low, ci_high``."""
    if not mean_primary(row):
        return row.get("error_rate"), row.get("ci_low"), row.get("ci_high")
    name = row["primary"]
    return row.get(name), row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")


def is_rate(df: pd.DataFrame, metric: str) -> bool:
    """Whether the column ``metric`` of a results table is a rate (an error probability): the primary
    ``error_rate``, or a column with an interval (``<metric>_ci_low``) and no ``<metric>_std``, the
    column that marks a mean (:class:`~linksim.schemes.base.Mean`). Plots draw rates on a log axis
    and ``snr-at`` interpolates them in log space; means and other columns are linear."""
    return metric == "error_rate" or (f"{metric}_ci_low" in df.columns and f"{metric}_std" not in df.columns)


class RunDirectory:
    """``<root>/<scenario>/<run_id>/`` with ``results.csv``, ``manifest.json`` and ``plots/``.

    Rows are kept in the scenario's canonical unit order, so a run that was interrupted and
    resumed writes byte-for-byte the same ``results.csv`` as one that ran straight through.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.csv = self.path / "results.csv"
        self.manifest_path = self.path / "manifest.json"
        self.plots = self.path / "plots"

    @staticmethod
    def new_run_id(profile: str | None, scenario_root: Path | None = None) -> str:
        """``<profile>-<date>-<time>``, with ``-2``, ``-3``, ... when a run of that second exists."""
        base = f"{profile or 'full'}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_id, n = base, 1
        while scenario_root is not None and (Path(scenario_root) / run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    @classmethod
    def latest_matching(cls, scenario_root: Path, digest: str) -> RunDirectory | None:
        """The most recent run under ``scenario_root`` whose manifest has this scenario digest."""
        if not scenario_root.is_dir():
            return None
        candidates = []
        for d in scenario_root.iterdir():
            m = d / "manifest.json"
            if m.is_file():
                try:
                    meta = json.loads(m.read_text())
                except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
                    warnings.warn(f"{m}: unreadable manifest ({type(err).__name__}); that run cannot be "
                                  "resumed (name it with --run-id to see why)", RuntimeWarning, stacklevel=2)
                    continue
                if meta.get("scenario_digest") == digest:
                    candidates.append((m.stat().st_mtime, d))
        return cls(max(candidates)[1]) if candidates else None

    def load_rows(self) -> list[dict]:
        """The finished points; an empty or unreadable ``results.csv`` is reported and its points run
        again (the manifest keeps what ran)."""
        if not self.csv.is_file():
            return []
        try:
            cut = _cut_rows(self.csv)
            rows = read_results(self.csv).drop(index=cut).to_dict("records")
            if cut:
                warnings.warn(f"{self.csv}: {len(cut)} row(s) cut short (fewer fields than the header, or no "
                              "line end); their points run again", RuntimeWarning, stacklevel=2)
            return rows
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
            warnings.warn(f"{self.csv}: unreadable results ({type(err).__name__}); its points run again",
                          RuntimeWarning, stacklevel=2)
            return []

    def load_manifest(self) -> dict:
        """The manifest, ``{}`` when there is none; an unreadable one is a one-line error (resuming
        without it could not check that the results belong to this scenario)."""
        if not self.manifest_path.is_file():
            return {}
        try:
            return json.loads(self.manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RuntimeError(f"{self.manifest_path}: unreadable manifest ({type(err).__name__}: {err}); "
                               "choose another --run-id, or restore the file") from None

    def write_rows(self, rows: list[dict], order: list[tuple]) -> None:
        """Atomically rewrite ``results.csv`` with ``rows`` sorted by their position in ``order``."""
        rank = {key: i for i, key in enumerate(order)}
        rows = sorted(rows, key=lambda r: rank[(r["scheme"], r["channel"], float(r["snr_db"]))])  # stable: a
        df = pd.DataFrame(rows)  # point's headline row stays ahead of its configuration rows
        df = df[[c for c in LEADING_COLUMNS if c in df] + [c for c in df.columns if c not in LEADING_COLUMNS]]
        atomic_write_text(self.csv, df.to_csv(index=False, float_format="%.10g"))

    @staticmethod
    def unit_key(scheme: str, channel: str, snr_db: float) -> str:
        """A work unit's key in the manifest's ``units`` (its seed, seconds, samples, stages)."""
        return f"{scheme}|{channel}|{snr_db:g}"

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
