"""The Python API for notebooks and scripts: load a scenario (with a profile and ``--set``-style
overrides), run it, and read the run back as a :class:`pandas.DataFrame`, figures and SNR crossings.

The command line calls the same functions; a run started here is a run directory like any other
(``linksim run --resume`` continues it, ``linksim plot`` redraws it).

.. rubric:: Example

>>> import linksim
>>> scenario = linksim.load_scenario("scenarios/ldpc_qam.yaml", profile="quick",
...                                  overrides=["channels=[awgn]", "snr.stop=4"])  # doctest: +SKIP
>>> run = linksim.run(scenario, out="/tmp/runs")                                    # doctest: +SKIP
>>> run.results()[["scheme", "snr_db", "bler", "ber"]]                              # doctest: +SKIP
>>> run.snr_at(1e-2, metric="bler")                                                 # doctest: +SKIP
>>> run.plot("bler").savefig("bler.pdf")                                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from linksim.config import Scenario, load_scenario
from linksim.results import RunDirectory, read_results

__all__ = ["Run", "load_scenario", "open_run", "run"]


class Run:
    """A run directory (``<root>/<scenario>/<run_id>/``), finished or not.

    :param path: the run directory (it holds ``results.csv`` and ``manifest.json``).
    :param finished: points simulated by the call that returned this run (``None`` when opened).
    :param remaining: points left for a later ``resume`` (``None`` when opened).
    """

    def __init__(self, path: str | Path, finished: int | None = None, remaining: int | None = None):
        self.directory = RunDirectory(Path(path))
        self.finished, self.remaining = finished, remaining

    @property
    def path(self) -> Path:
        return self.directory.path

    @property
    def manifest(self) -> dict:
        """What ran: the scenario as run, overrides, seeds, sessions with their machine and versions."""
        return self.directory.load_manifest()

    def results(self, timing: bool = False) -> pd.DataFrame:
        """``results.csv`` as a DataFrame, one row per (scheme, channel, SNR point); the columns are
        documented in ``docs/results.md``.

        :param timing: add ``wall_s``, the seconds each point took to simulate (from the manifest: the
            results file itself holds only what the seed determines, so reruns give the same bytes).
        """
        if not self.directory.csv.is_file():
            raise FileNotFoundError(f"{self.directory.csv}: no results yet (the run has finished no point)")
        df = read_results(self.directory.csv)
        if timing:
            units = self.manifest.get("units", {})
            df["wall_s"] = [units.get(RunDirectory.unit_key(s, c, x), {}).get("wall_s")
                            for s, c, x in zip(df["scheme"], df["channel"], df["snr_db"], strict=True)]
        return df

    def plot(self, metric: str, x: str = "snr_db", **figure):
        """One figure of ``metric`` (:func:`linksim.plots.plot_metric`: ``schemes``, ``channels``,
        ``where``, ``style``, ``title``, ``xlim``, ``ylim``, ``size``, ``log_y``, ``band``);
        returns the :class:`matplotlib.figure.Figure`."""
        from linksim.plots import load_run, plot_metric

        return plot_metric([load_run(self.directory.csv)], metric, x, **figure)

    def snr_at(self, target: float, metric: str = "error_rate", x: str = "snr_norm_db",
               reference: str | None = None, config: str = "") -> pd.DataFrame:
        """The SNR (dB, on axis ``x``) at which each curve's ``metric`` reaches ``target``
        (:func:`linksim.analysis.snr_at`), with ``shift_db`` against ``reference`` when given; the
        rows of ``config`` (default each point's headline row)."""
        from linksim.analysis import snr_at

        return snr_at(self.results(), target, x, metric, reference, config=config)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"


def open_run(path: str | Path) -> Run:
    """An existing run directory (``results/<scenario>/<run_id>``)."""
    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(f"{path}: no manifest.json (a run directory of linksim run was expected)")
    return Run(path)


def run(scenario: Scenario | str | Path, profile: str | None = None, overrides: list[str] = (),
        out: str | Path | None = None, run_id: str | None = None, resume: bool = False,
        max_units: int | None = None, progress: bool = True, report: bool = True, plots: bool = True) -> Run:
    """Run a scenario (a :class:`~linksim.config.Scenario` or a YAML path) as ``linksim run`` does.

    :param profile: the profile to apply (with a path; a loaded scenario already has its own).
    :param overrides: ``key.path=value`` assignments (with a path), as ``--set``.
    :param out: output root (default the scenario's ``outputs.root``); ``run_id`` names the directory.
    :param resume: continue the latest run of this exact scenario (or ``run_id``).
    :param max_units: stop after this many new points (``resume`` later).
    :param progress: progress bars; ``report``: a printed line per finished point; ``plots``: the
        scenario's figures at the end.
    """
    from linksim.runner import RunOptions, run_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, profile, list(overrides))
    elif overrides or profile:
        raise ValueError("profile and overrides apply to a scenario file; pass them to load_scenario instead")
    origin = scenario.origin
    opts = RunOptions(profile=origin and origin.profile, overrides=origin.overrides if origin else [],
                      scenario_file=origin and origin.file,
                      out=None if out is None else str(out), resume=resume, run_id=run_id, max_units=max_units,
                      plots=plots, progress=progress, report=report)
    summary = run_scenario(scenario, opts)
    return Run(summary.run_dir.path, summary.finished, summary.remaining)
