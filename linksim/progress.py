"""What a run shows while it works, in the manner of Sionna's ``sim_ber`` table: one line per finished
point that stays on screen, an overall ``points k / N`` bar with its ETA, and a bar per point that
vanishes when the point is done.

Lines go to ``stdout`` (through :func:`tqdm.tqdm.write`, so they never tear a bar), bars to ``stderr``;
a log file of ``linksim run ... > log`` therefore holds the table and nothing else.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from tqdm import tqdm

from linksim.results import mean_primary, primary_of

__all__ = ["PointReporter", "format_value", "STOP_LABELS"]

#: what the ``stop_reason`` column says, in words
STOP_LABELS = {"target_errors": "target errors", "target_half_width": "interval width",
               "max_samples": "max samples", "max_time_s": "max time"}


def format_value(value: float) -> str:
    """Four significant digits, ``-`` for a missing value."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


class PointReporter:
    """Prints the per-point table and draws the bars of one ``run_scenario`` session.

    :param total: points this session will run (the overall bar's total; reused points are not counted).
    :param name_width: width of the first column (the longest ``scheme / channel`` of the run).
    :param bars: draw the bars (``False``: ``--quiet``, the table is still printed).
    :param lines: print the table.
    :param stream: where the table goes (default ``sys.stdout`` at the time of each line).
    """

    HEADER = ("{name:<{w}} {snr:>8}  {metric:<12} {value:>10} {interval:>23} {samples:>10} {errors:>10} "
              "{time:>9}  {stop}")

    def __init__(self, total: int, name_width: int = 30, bars: bool = True, lines: bool = True,
                 stream: TextIO | None = None):
        self.width, self.bars, self.lines, self._stream = max(name_width, 16), bars, lines, stream
        self._header_done = False
        self.overall = tqdm(total=total, desc="points", unit="pt", disable=not bars or total == 0, position=0,
                            leave=True, dynamic_ncols=True, file=sys.stderr)

    def _write(self, text: str) -> None:
        if self.lines:
            tqdm.write(text, file=self._stream or sys.stdout)

    def _header(self) -> None:
        if not self._header_done:
            self._write(self.HEADER.format(name="scheme / channel", w=self.width, snr="SNR [dB]", metric="primary",
                                           value="value", interval="interval", samples="samples", errors="errors",
                                           time="time [s]", stop="stopped by"))
            self._header_done = True

    def point_bar(self, label: str, total: int) -> tqdm:
        """The bar of one point (items so far, its errors or interval half-width); gone when closed."""
        return tqdm(total=total, desc=label, unit="item", disable=not self.bars, position=1, leave=False,
                    dynamic_ncols=True, file=sys.stderr)

    def finished(self, row: dict, metric: str, wall_s: float) -> None:
        """One line for a finished point: ``row`` is its results row, ``metric`` the primary's name."""
        self._header()
        value, lo, hi = primary_of(row)
        interval = "-" if lo is None or hi is None else f"[{format_value(lo)}, {format_value(hi)}]"
        errors = "-" if mean_primary(row) else f"{int(row['errors'])}"
        self._write(self.HEADER.format(
            name=f"{row['scheme']} / {row['channel']}", w=self.width, snr=f"{row['snr_db']:g}", metric=metric,
            value=format_value(value), interval=interval, samples=f"{int(row['samples'])}", errors=errors,
            time=f"{wall_s:.1f}", stop=STOP_LABELS.get(row.get("stop_reason"), row.get("stop_reason") or "-")))
        self.overall.update(1)

    def swept_below(self, scheme: str, channel: str, snr_db: float, threshold: float, skipped: int,
                    pending: int) -> None:
        """A curve whose error rate fell below ``stop_sweep_below`` at ``snr_db``: its ``skipped`` later
        points are not run, ``pending`` of them counted in the overall bar's total (not finished earlier)."""
        self._write(f"{scheme} / {channel}: error rate below {threshold:g} at {snr_db:g} dB; "
                    f"{skipped} later point(s) not run (stop_sweep_below)")
        self.overall.total -= pending
        self.overall.refresh()

    def note(self, text: str) -> None:
        """A free line in the table (e.g. how many points an earlier session had finished)."""
        self._write(text)

    def close(self) -> None:
        self.overall.close()
