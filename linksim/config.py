"""Scenario files: pydantic models, loading, profiles, ``--set`` overrides, one-line errors."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from linksim import registry
from linksim.accel import Precision
from linksim.snr import SnrAxis
from linksim.stats import IntervalMethod

__all__ = [
    "ConfigError",
    "SnrValues",
    "SnrGrid",
    "StopRule",
    "SchemeSpec",
    "ChannelSpec",
    "ExamplesSpec",
    "Outputs",
    "Scenario",
    "load_scenario",
    "apply_override",
    "stop_key_problems",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"


class ConfigError(Exception):
    """A user error in a scenario: one line per problem, ``file: key.path: expected ..., found ...``."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_MAX_SNR_POINTS = 10_000

Count = Annotated[int, Field(gt=0, strict=True)]
"""A positive whole number given as one (``true`` or ``1.5`` is refused, not read as 1)."""


class SnrValues(_Strict):
    """Grid points in dB: an explicit ``values`` list, or ``start``/``stop``/``step`` (stop included)."""

    values: list[float] | None = None
    start: float | None = None
    stop: float | None = None
    step: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_form(self):
        ranged = (self.start, self.stop, self.step)
        if self.values is not None and any(v is not None for v in ranged):
            raise ValueError("give either values or start/stop/step, not both")
        if self.values is None:
            if any(v is None for v in ranged):
                raise ValueError("give values, or all of start, stop and step")
            if self.stop < self.start:
                raise ValueError(f"stop ({self.stop}) is below start ({self.start})")
        elif not self.values:
            raise ValueError("values is empty")
        return self

    @model_validator(mode="after")
    def _representable(self):
        """Every point finite and within +-1000 dB, written to ``results.csv`` exactly (10 significant
        digits, how a resumed run finds its points again), and no point twice."""
        if self.values is None and None not in (self.start, self.stop, self.step):
            if not all(np.isfinite(v) for v in (self.start, self.stop, self.step)):
                raise ValueError(f"start, stop and step must be finite, found {self.start}, {self.stop}, {self.step}")
            if (self.stop - self.start) / self.step > _MAX_SNR_POINTS:
                raise ValueError(f"start/stop/step give more than {_MAX_SNR_POINTS} SNR points "
                                 f"(found {self.start} to {self.stop} in steps of {self.step})")
        elif self.values is not None and len(self.values) > _MAX_SNR_POINTS:
            raise ValueError(f"more than {_MAX_SNR_POINTS} SNR points (found {len(self.values)})")
        pts = self.points() if self.values is not None or None not in (self.start, self.stop, self.step) else []
        for v in pts:
            if not np.isfinite(v) or abs(v) > 1000:
                raise ValueError(f"SNR points must be finite dB values within +-1000, found {v}")
            if float(f"{v:.10g}") != v:
                raise ValueError(f"SNR point {v!r} has more than 10 significant digits (results.csv keeps 10)")
        if dup := sorted({v for v in pts if pts.count(v) > 1}):
            raise ValueError(f"SNR points must be distinct, found {', '.join(f'{v:g}' for v in dup)} twice")
        return self

    def points(self) -> list[float]:
        if self.values is not None:
            return [float(v) for v in self.values]
        n = int(np.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + i * self.step, 10) for i in range(n)]


class SnrGrid(SnrValues):
    """The SNR sweep and its axis (see :mod:`linksim.snr`).

    ``reference_channel_uses`` (in ``reference_unit`` channel uses per item) anchors the
    rate-normalised axis; it is required when ``axis`` is ``snr_norm``.
    """

    axis: SnrAxis = "esno"
    reference_channel_uses: PositiveFloat | None = None
    reference_unit: Literal["complex", "real"] = "complex"

    @model_validator(mode="after")
    def _reference_given(self):
        if self.axis == "snr_norm" and self.reference_channel_uses is None:
            raise ValueError("axis snr_norm needs reference_channel_uses")
        return self

    @property
    def reference_complex_uses(self) -> float | None:
        """The reference in complex channel uses (a real channel use is half a complex one)."""
        if self.reference_channel_uses is None:
            return None
        return self.reference_channel_uses / (2.0 if self.reference_unit == "real" else 1.0)


class StopRule(_Strict):
    """When a work unit (scheme, channel, SNR point) stops: after the first batch at which its
    primary statistic is known well enough, or ``max_samples`` items were run, or ``max_time_s``
    elapsed (a time limit makes results depend on the machine).

    "Well enough" depends on the scheme's primary (:class:`~linksim.schemes.base.Scheme`):
    ``target_errors`` errors for a rate; for a mean, an interval half-width
    (``(ci_high - ci_low) / 2``, in the mean's unit: 0.05 for 0.05 dB of PSNR) at or below
    ``target_half_width``, judged from the second batch on (``None``: no such rule, the point runs
    to ``max_samples``). Neither rule applies before ``min_samples`` items. Each of
    ``target_errors`` and ``target_half_width`` is ignored for the other kind of primary when set
    here, and refused when set in one scheme's own ``stop``.

    ``stop_sweep_below``: once a point's primary error rate falls below this (zero errors
    included), the later points of the same scheme x channel curve (in grid order) are not run;
    like ``target_errors`` it applies to rate primaries only.

    ``chunk_samples``: split each point into chunks of this many items, each seeded from (unit
    seed, chunk index) and run as one task (:func:`linksim.engine.run_chunk`); counters are added
    in chunk order and the rule above is checked after each chunk, so the results do not depend on
    how many workers ran the chunks (``None``: one task per point, the rule checked per batch).
    """

    batch_size: Count = 1000
    target_errors: Count = 100
    target_half_width: float | None = Field(None, gt=0, allow_inf_nan=False)
    min_samples: Count | None = None
    max_samples: Count = 100_000
    max_time_s: PositiveFloat | None = None
    stop_sweep_below: float | None = Field(None, ge=0, le=1)
    chunk_samples: Count | None = None
    confidence: float = Field(0.95, gt=0, lt=1)
    interval: IntervalMethod = "wilson"


class StopOverride(_Strict):
    """Per-scheme changes to the scenario's :class:`StopRule` (every field optional)."""

    batch_size: Count | None = None
    target_errors: Count | None = None
    target_half_width: float | None = Field(None, gt=0, allow_inf_nan=False)
    min_samples: Count | None = None
    max_samples: Count | None = None
    max_time_s: PositiveFloat | None = None
    stop_sweep_below: float | None = Field(None, ge=0, le=1)
    chunk_samples: Count | None = None


#: stop keys added after results were committed: left out of the digest while unset, so the digest
#: (and ``--resume``) of every earlier scenario stays what it was
_NEWER_STOP_KEYS = ("target_half_width", "min_samples", "chunk_samples")


class SchemeSpec(_Strict):
    """A scheme: a unique ``name``, a registered ``type`` and that type's ``params``; or ``baseline``,
    the name of a preset in ``baselines/<name>.yaml`` (its ``type``, ``label`` and ``params``, which
    the entry's own ``params`` override). ``channels``: the names of the scenario channels this
    scheme runs on (default all), e.g. a learned scheme trained for one channel."""

    name: str = Field(..., pattern=_NAME)
    baseline: str | None = None
    type: str
    params: dict[str, Any] = {}
    label: str | None = None
    stop: StopOverride = StopOverride()
    snr: SnrValues | None = None
    channels: list[str] | None = None


class ChannelSpec(_Strict):
    """A channel: a unique ``name``, a registered ``type`` and its ``params``. In a scenario file a
    plain string names a preset (``awgn``, ``rayleigh``, ``tdl-a``, ``tdl-a-ls``, ...)."""

    name: str = Field(..., pattern=_NAME)
    type: str
    params: dict[str, Any] = {}


class PlotSpec(_Strict):
    """One figure: ``metric`` (a rate such as ``ber``/``bler``/``error_rate``, or any numeric
    column) against ``x`` (``snr_db`` = the scenario axis, or ``esno_db``/``ebno_db``/``snr_norm_db``).

    ``schemes``: the curves to draw (scheme names, default all), e.g. one figure per figure of a
    paper, and ``channels`` the channels to draw them on (default all); ``name`` then prefixes the
    file (``<name>_<metric>_vs_<x>``) and ``title`` heads the plot. ``band``: two columns
    ``[low, high]`` shaded around each curve that has them (e.g. the spread over repeated draws).
    ``configs``: the configurations drawn (the ``config`` column, e.g. an image baseline's MCS or
    ``capacity``; default each point's headline row). ``ylabel``: the y axis label (default the
    metric's, :func:`linksim.plots.metric_label`).
    ``style``: ``paper`` or ``wide`` (:data:`linksim.plots.STYLES`; default ``outputs.style``), ``xlim``
    / ``ylim``: the axis ranges, ``size``: width and height in inches (default the style's).

    ``x: index`` draws numbered columns against their number at one SNR (``at_snr_db``, the scenario
    axis): ``metric`` is their stem (``ber_l`` for ``ber_l1`` .. ``ber_l10``: split DeepJSCC's
    per-level BER, seed002 Fig. 9) and ``reference`` an optional stem of columns drawn beside them as
    the theory line (``eps_l``: the nominal crossover probabilities).
    """

    metric: str
    x: Literal["snr_db", "esno_db", "ebno_db", "snr_norm_db", "index"] = "snr_db"
    at_snr_db: float | None = None
    reference: str | None = None
    log_y: bool | None = None
    schemes: list[str] | None = None
    channels: list[str] | None = None
    name: str | None = Field(None, pattern=_NAME)
    title: str | None = None
    band: tuple[str, str] | None = None
    configs: list[str] | None = None
    ylabel: str | None = None
    style: Literal["paper", "wide"] | None = None
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    size: tuple[PositiveFloat, PositiveFloat] | None = None

    @model_validator(mode="after")
    def _index_figure(self):
        if self.x == "index" and self.at_snr_db is None:
            raise ValueError("at_snr_db: x: index draws numbered columns at one SNR; give it (found none)")
        if self.x != "index" and (self.at_snr_db is not None or self.reference is not None):
            raise ValueError(f"at_snr_db and reference belong to x: index figures (found x: {self.x})")
        return self


class ExamplesSpec(_Strict):
    """The example-reconstruction figure (:mod:`linksim.reconstructions`): the first ``images``
    evaluation images, as sent and as each of ``schemes`` (image schemes) shows them after
    ``channel`` at each of ``snr_db`` (on the scenario's SNR axis); file ``plots/<name>.<format>``."""

    schemes: list[str] = Field(..., min_length=1)
    channel: str
    snr_db: list[float] = Field(..., min_length=1)
    images: int = Field(6, ge=1, le=32)
    name: str = Field("examples", pattern=_NAME)
    title: str | None = None


class Outputs(_Strict):
    root: str = "results"
    plots: list[PlotSpec] | None = None
    examples: list[ExamplesSpec] = []
    formats: list[Literal["png", "pdf", "svg"]] = ["png", "pdf"]
    style: Literal["paper", "wide"] = "paper"


@dataclass(frozen=True)
class ScenarioOrigin:
    """Where a loaded scenario came from (recorded in the manifest of its runs)."""

    file: str
    profile: str | None
    overrides: list[str]


class Scenario(_Strict):
    """A whole scenario file (after its profile and ``--set`` overrides are applied); ``origin`` says
    which file, profile and overrides :func:`load_scenario` made it from (``None`` when built in code)."""

    _origin: ScenarioOrigin | None = PrivateAttr(default=None)

    @property
    def origin(self) -> ScenarioOrigin | None:
        return self._origin

    name: str = Field(..., pattern=_NAME)
    description: str = ""
    seed: NonNegativeInt = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    snr: SnrGrid
    stop: StopRule = StopRule()
    schemes: list[SchemeSpec] = Field(..., min_length=1)
    channels: list[ChannelSpec] = Field(..., min_length=1)
    train_channel: ChannelSpec = ChannelSpec(name="awgn", type="awgn")
    scheme_defaults: dict[str, dict[str, Any]] = {}
    train_precision: Precision = "float32"
    outputs: Outputs = Outputs()
    profiles: dict[str, dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthands(cls, data: Any) -> Any:
        """Channel presets named by a string; ``channel: X`` for a single channel;
        ``scheme_defaults[type]`` merged under the ``params`` of every scheme of that type."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        defaults = data.get("scheme_defaults")
        if isinstance(defaults, dict) and isinstance(data.get("schemes"), list):
            data["schemes"] = [
                {**s, "params": _deep_merge(defaults[s["type"]], s.get("params") or {})}
                if isinstance(s, dict) and isinstance(defaults.get(s.get("type")), dict)
                else s
                for s in data["schemes"]
            ]
        if "channel" in data:  # `--set channel=tdl-a`: one channel replaces the list
            data["channels"] = [data.pop("channel")]
        presets = registry.channel_presets()

        def expand(c: Any) -> Any:
            return {"name": c, "type": presets[c][0], "params": presets[c][1]} if isinstance(c, str) and c in presets else c

        chans = data.get("channels")
        if isinstance(chans, str):
            chans = [chans]
        if isinstance(chans, list):
            data["channels"] = [expand(c) for c in chans]
        if "train_channel" in data:
            data["train_channel"] = expand(data["train_channel"])
        return data

    @model_validator(mode="after")
    def _unique_names(self):
        for kind, items in (("schemes", self.schemes), ("channels", self.channels)):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind} names must be unique, found {', '.join(dup)} more than once")
        return self

    def reference_problems(self, written: Scenario | None = None) -> list[str]:
        """Names in ``schemes[i].channels`` and ``outputs`` that name no scheme or channel of this
        scenario, one line each, except those of ``written`` (the file before ``--set``: names an
        override removed, which :meth:`prune_references` drops)."""
        names, channel_names = {s.name for s in self.schemes}, {c.name for c in self.channels}
        if written is not None:
            names |= {s.name for s in written.schemes}
            channel_names |= {c.name for c in written.channels}
        problems = [f"schemes[{i}].channels names no channel of this scenario: {', '.join(unknown)}"
                    for i, scheme in enumerate(self.schemes)
                    if (unknown := [c for c in scheme.channels or [] if c not in channel_names])]
        for i, ex in enumerate(self.outputs.examples):
            if unknown := [s for s in ex.schemes if s not in names]:
                problems.append(f"outputs.examples[{i}].schemes names no scheme of this scenario: {', '.join(unknown)}")
            if ex.channel not in channel_names:
                problems.append(f"outputs.examples[{i}].channel names no channel of this scenario: {ex.channel}")
        for i, plot in enumerate(self.outputs.plots or []):
            if unknown := [s for s in plot.schemes or [] if s not in names]:
                problems.append(f"outputs.plots[{i}].schemes names no scheme of this scenario: {', '.join(unknown)}")
            if unknown := [c for c in plot.channels or [] if c not in channel_names]:
                problems.append(f"outputs.plots[{i}].channels names no channel of this scenario: {', '.join(unknown)}")
        return problems

    def prune_references(self) -> None:
        """Drop the names that ``--set`` left without a scheme or channel (``--set channel=tdl-a`` on a
        file whose schemes and figures name ``awgn``): a scheme keeps the channels it names that remain,
        and runs on every channel of the run when none remains (the what-if: the same schemes over the
        new channel; a ``channels: []`` that leaves a scheme out stays); a figure keeps its schemes and
        channels that remain; an example figure without its channel is not drawn."""
        names, channel_names = {s.name for s in self.schemes}, {c.name for c in self.channels}
        for scheme in self.schemes:
            if scheme.channels:
                scheme.channels = [c for c in scheme.channels if c in channel_names] or None
        for plot in self.outputs.plots or []:
            if plot.schemes is not None:
                plot.schemes = [s for s in plot.schemes if s in names]
            if plot.channels is not None:
                plot.channels = [c for c in plot.channels if c in channel_names]
        if self.outputs.plots is not None:
            self.outputs.plots = [p for p in self.outputs.plots if p.schemes != [] and p.channels != []]
        examples = [ex.model_copy(update={"schemes": [s for s in ex.schemes if s in names]})
                    for ex in self.outputs.examples if ex.channel in channel_names]
        self.outputs.examples = [ex for ex in examples if ex.schemes]

    def stop_for(self, scheme: SchemeSpec) -> StopRule:
        return self.stop.model_copy(update=scheme.stop.model_dump(exclude_none=True))

    def snr_points(self, scheme: SchemeSpec) -> list[float]:
        return (scheme.snr or self.snr).points()

    def digest(self) -> str:
        """Hash of everything that determines the results (descriptions, labels, outputs and profiles
        excluded: they change no number)."""
        d = self.model_dump(mode="json", exclude={
            "profiles": True, "outputs": True, "description": True, "schemes": {"__all__": {"label"}}})
        for stop in [d["stop"]] + [s["stop"] for s in d["schemes"]]:
            for key in _NEWER_STOP_KEYS:
                if stop.get(key) is None:
                    stop.pop(key, None)
        for scheme in d["schemes"]:
            if scheme.get("channels") is None:  # added later, like the stop keys above
                scheme.pop("channels", None)
        if d["train_precision"] == "float32":  # likewise
            del d["train_precision"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- loading


def _named(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, dict) and "name" in i for i in items)


_ALTERNATIVES = ({"values"}, {"start", "stop", "step"})
"""Keys of a mapping's alternative forms (an SNR grid is ``values`` or ``start/stop/step``): a patch
that gives one form replaces the other."""


def _deep_merge(base: Any, over: Any) -> Any:
    """``over`` merged into ``base``: mappings key by key (a form in :data:`_ALTERNATIVES` replaces
    the other); lists of named items (schemes, channels given as mappings) item by item by ``name``,
    new names appended; anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for form in _ALTERNATIVES:
            if form & over.keys():
                for other in _ALTERNATIVES:
                    if other is not form:
                        for k in other:
                            out.pop(k, None)
        for k, v in over.items():
            out[k] = _deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if _named(base) and _named(over):
        patches = {i["name"]: i for i in over}
        out = [_deep_merge(i, patches.pop(i["name"])) if i["name"] in patches else copy.deepcopy(i) for i in base]
        return out + [copy.deepcopy(i) for i in over if i["name"] in patches]
    return copy.deepcopy(over)


def _step(node: Any, key: str) -> Any:
    """Child of ``node`` by dict key, list index, or (in a list of named items) by name."""
    if isinstance(node, list):
        if key.lstrip("-").isdigit():
            return int(key)
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("name") == key or item == key:
                return i
        raise KeyError(key)
    return key


def apply_override(data: dict, assignment: str) -> dict:
    """Apply ``a.b.c=value`` (value parsed as YAML) to a raw scenario dict; returns a new dict.

    List items are addressed by index or by their ``name`` (``schemes.ldpc-qpsk.params.k=1024``).
    """
    if "=" not in assignment:
        raise ValueError(f"--set {assignment!r}: expected key.path=value")
    path, raw = assignment.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ValueError(f"--set {assignment!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ValueError(f"--set {assignment!r}: the value is not valid YAML ({getattr(err, 'problem', err)}); "
                         "quote it for the shell, e.g. --set 'snr.values=[0, 2, 4]'") from None
    out = copy.deepcopy(data)
    node = out
    for depth, key in enumerate(keys):
        try:
            k = _step(node, key)
        except KeyError:
            raise ValueError(f"--set {assignment!r}: no item named {key!r} in {'.'.join(keys[:depth])}") from None
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not -len(node) <= k < len(node):
                raise ValueError(f"--set {assignment!r}: index {k} out of range in {'.'.join(keys[:depth])}")
            if last:
                node[k] = value
            else:
                node = node[k]
        elif isinstance(node, dict):
            if last:
                node[k] = value
            else:
                node = node.setdefault(k, {})
        else:
            raise ValueError(f"--set {assignment!r}: {'.'.join(keys[:depth])} is not a mapping or a list")
    return out


def _bounded_repr() -> reprlib.Repr:
    """How an error line quotes what it found: bounded, so a YAML alias bomb cannot blow up a message."""
    quote = reprlib.Repr()
    quote.maxlevel, quote.maxlist, quote.maxtuple, quote.maxdict = 2, 6, 6, 6
    quote.maxstring = quote.maxother = 80
    return quote


_QUOTE = _bounded_repr()


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _errors(source: str, err: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        path = _loc(e["loc"])
        if prefix:
            path = prefix + ("" if path == "(top level)" else ("" if path.startswith("[") else ".") + path)
        msg = e["msg"].removeprefix("Value error, ")
        found = e.get("input")
        shown = "" if e["type"] in ("missing",) or isinstance(found, dict) else f" (found {_QUOTE.repr(found)})"
        lines.append(f"{source}: {path}: {msg}{shown}")
    return lines


def _check_components(source: str, data: dict) -> list[str]:
    """Validate each scheme's and channel's ``params`` (raw dicts) against its registered model."""
    problems = []
    data = Scenario._expand_shorthands(data)
    located = [(f"schemes[{i}]", s, registry.schemes()) for i, s in enumerate(_as_list(data.get("schemes")))]
    located += [(f"channels[{i}]", c, registry.channels()) for i, c in enumerate(_as_list(data.get("channels")))]
    if "train_channel" in data:
        located.append(("train_channel", data["train_channel"], registry.channels()))
    for where, spec, table in located:
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            continue  # the scenario model reports it
        entry = table.get(spec["type"])
        if entry is None:
            known = ", ".join(sorted(table))
            problems.append(f"{source}: {where}.type: expected one of {known} (found {spec['type']!r})")
            continue
        try:
            entry.params.model_validate(spec.get("params") or {})
        except ValidationError as err:
            problems += _errors(source, err, prefix=f"{where}.params")
    return problems


#: the stop keys that apply to one kind of primary only
STOP_KEY_KIND = {"target_errors": "rate", "stop_sweep_below": "rate", "target_half_width": "mean"}


def stop_key_problems(source: str, index: int, spec: SchemeSpec, primary: str, kind: str) -> list[str]:
    """One line per key of a scheme's own ``stop`` that does not fit its primary (``kind``: ``rate``
    or ``mean``): ``target_errors`` and ``stop_sweep_below`` need a rate, ``target_half_width`` a
    mean. Keys of the scenario-level ``stop`` are never refused: they apply to the schemes they fit."""
    lines = []
    for key, needs in STOP_KEY_KIND.items():
        value = getattr(spec.stop, key)
        if value is not None and needs != kind:
            use = "target_half_width" if kind == "mean" else "target_errors"
            lines.append(f"{source}: schemes[{index}].stop.{key}: expected no {key} for scheme {spec.name!r}, "
                         f"whose primary {primary!r} is a {kind} (use {use}) (found {value!r})")
    return lines


def _check_stop_keys(source: str, scenario: Scenario) -> list[str]:
    """:func:`stop_key_problems` for the schemes whose class declares its primary and rates (the
    others are checked when the runner builds them)."""
    from linksim.schemes.base import Mean

    problems = []
    for i, spec in enumerate(scenario.schemes):
        entry = registry.schemes().get(spec.type)
        cls = entry.factory if entry is not None else None
        primary, rates = getattr(cls, "primary", ""), getattr(cls, "rates", {})
        if isinstance(primary, str) and isinstance(rates, dict) and primary in rates:
            kind = "mean" if isinstance(rates[primary], Mean) else "rate"
            problems += stop_key_problems(source, i, spec, primary, kind)
    return problems


def _as_list(x: Any) -> list:
    return x if isinstance(x, list) else []


def _read_yaml(path: Path) -> dict:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{source}: cannot read: {err.strerror}"]) from None
    except UnicodeDecodeError as err:
        raise ConfigError([f"{source}: byte {err.start}: expected a UTF-8 text (YAML) file, found byte "
                           f"0x{err.object[err.start]:02x} (a binary or differently encoded file?)"]) from None
    if "\x00" in text:
        raise ConfigError([f"{source}: byte {text.index(chr(0))}: expected a YAML text file, found a NUL byte "
                           "(a binary file?)"])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError([f"{source}: {where}: invalid YAML: {getattr(err, 'problem', err)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level): expected a mapping of scenario keys, found {type(data).__name__}"])
    return _unshared(data, source)


#: more mappings, lists and values than a scenario file has any use for (an alias bomb has billions)
_MAX_NODES = 200_000


def _unshared(data: dict, source: str) -> dict:
    """``data`` with every YAML alias (``*name``) made a copy of its anchor, so that ``--set`` on one
    place (``scheme_defaults.deepjscc.width``) never changes another that shares the anchor.

    :raises ConfigError: the file expands to more than :data:`_MAX_NODES` nodes.
    """
    count = 0

    def copy_of(node):
        nonlocal count
        count += 1
        if count > _MAX_NODES:
            raise ConfigError([f"{source}: (top level): expected at most {_MAX_NODES:,} keys and values once YAML "
                               "aliases are expanded, found more (aliases of aliases?)"])
        if isinstance(node, dict):
            return {k: copy_of(v) for k, v in node.items()}
        if isinstance(node, list):
            return [copy_of(v) for v in node]
        return node

    return copy_of(data)


def baseline_dirs(scenario_path: Path) -> list[Path]:
    """Where ``baseline:`` presets are looked up: ``$LINKSIM_BASELINES``, then ``baselines/`` beside
    the scenario's folder (the repository layout), then beside the scenario file."""
    env = os.environ.get("LINKSIM_BASELINES")
    here = scenario_path.resolve().parent
    return ([Path(env)] if env else []) + [here.parent / "baselines", here / "baselines"]


def _expand_baselines(source: str, data: dict, dirs: list[Path]) -> tuple[dict, list[str]]:
    """Replace ``baseline: NAME`` in scheme entries by the preset's type, label and params."""
    schemes = data.get("schemes")
    if not isinstance(schemes, list):
        return data, []
    problems, out = [], []
    for i, entry in enumerate(schemes):
        name = entry.get("baseline") if isinstance(entry, dict) else None
        if name is None:
            out.append(entry)
            continue
        file = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").is_file()), None)
        if file is None:
            known = sorted({f.stem for d in dirs if d.is_dir() for f in d.glob("*.yaml")})
            problems.append(f"{source}: schemes[{i}].baseline: expected one of {', '.join(known) or 'no presets'} "
                            f"in {', '.join(map(str, dirs))} (found {name!r})")
            out.append(entry)
            continue
        try:
            preset = _read_yaml(file)
        except ConfigError as err:
            problems += err.lines
            out.append(entry)
            continue
        unknown = set(preset) - {"type", "label", "params", "description"}
        if unknown:
            problems.append(f"{file}: {', '.join(sorted(unknown))}: expected only type, label, params, description")
        merged = {"type": preset.get("type"), "label": preset.get("label"), **entry}
        merged["params"] = _deep_merge(preset.get("params") or {}, entry.get("params") or {})
        out.append(merged)
    return {**data, "schemes": out}, problems


def _as_written(source: str, data: dict, path: Path, scenario: Scenario, overrides) -> Scenario:
    """The scenario before ``--set`` (its profile applied): a name of it that an override removed is no
    error in :meth:`Scenario.reference_problems`, a name of neither (a typo in the file or in the
    override) is; ``scenario`` itself when there are no overrides (or the file is only valid with them)."""
    if not overrides:
        return scenario
    try:
        return Scenario.model_validate(_expand_baselines(source, data, baseline_dirs(path))[0])
    except ValidationError:
        return scenario


def load_scenario(path: str | Path, profile: str | None = None, overrides: list[str] = ()) -> Scenario:
    """Read, merge the profile, apply ``--set`` overrides, validate.

    :raises ConfigError: with one line per problem; nothing has run yet.
    """
    path = Path(path)
    source = str(path)
    data = _read_yaml(path)
    if profile is not None:
        profiles = data.get("profiles") or {}
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError([f"{source}: profiles.{profile}: no such profile (expected one of: {known})"])
        data = _deep_merge(data, profiles[profile])
    as_written = data
    for assignment in overrides:
        try:
            data = apply_override(data, assignment)
        except ValueError as err:
            raise ConfigError([f"{source}: {err}"]) from None
    data, problems = _expand_baselines(source, data, baseline_dirs(path))
    problems += _check_components(source, data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        problems = _errors(source, err) + problems
    else:
        problems += _check_stop_keys(source, scenario)
        written = _as_written(source, as_written, path, scenario, overrides)
        problems += [f"{source}: {line}" for line in scenario.reference_problems(written)]
        scenario.prune_references()  # what --set removed (a channel, a scheme) leaves the figures naming it
    if problems:
        raise ConfigError(problems)
    scenario._origin = ScenarioOrigin(str(path), profile, list(overrides))
    return scenario
