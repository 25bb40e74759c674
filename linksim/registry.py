"""Name -> factory registries for schemes, channels (and their named presets), bit channels and datasets.

A new scheme is one module that decorates its class with :func:`register_scheme`, plus a YAML
entry; the engine only ever looks things up here.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel

__all__ = [
    "Entry",
    "plain_summary",
    "register_scheme",
    "register_channel",
    "register_channel_preset",
    "register_bit_channel",
    "register_dataset",
    "schemes",
    "channels",
    "channel_presets",
    "bit_channels",
    "datasets",
]


@dataclass(frozen=True)
class Entry:
    """A registered factory: ``factory(params)`` builds the object from a validated ``params`` model."""

    name: str
    factory: Callable[..., Any]
    params: type[BaseModel]
    doc: str = ""

    def build(self, params: dict[str, Any] | BaseModel | None = None) -> Any:
        """The object, from raw ``params`` validated against :attr:`params` (or an instance of it)."""
        validated = params if isinstance(params, self.params) else self.params.model_validate(params or {})
        return self.factory(validated)


@dataclass
class _Registries:
    schemes: dict[str, Entry] = field(default_factory=dict)
    channels: dict[str, Entry] = field(default_factory=dict)
    channel_presets: dict[str, tuple[str, dict]] = field(default_factory=dict)
    bit_channels: dict[str, Entry] = field(default_factory=dict)
    datasets: dict[str, Callable[..., Any]] = field(default_factory=dict)


_REG = _Registries()
# linksim.channels.binary is loaded on its own: it imports linksim.link, which imports linksim.channels.
_BUILTIN_PACKAGES = ("linksim.channels", "linksim.channels.binary", "linksim.schemes", "linksim.data")


_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")


def plain_summary(doc: str | None) -> str:
    """The first paragraph of a docstring as one line of plain text (what ``linksim list`` prints):
    reStructuredText roles reduced to their target (``:class:`~a.b.C``` -> ``C``, without the tilde
    the whole path), inline literals unquoted."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    plain = _ROLE.sub(lambda m: m.group(2).split(".")[-1] if m.group(1) else m.group(2), paragraph)
    return plain.replace("``", "")


def _register(table: dict[str, Entry], kind: str, name: str, params: type[BaseModel]):
    def deco(factory):
        if name in table and table[name].factory is not factory:
            raise ValueError(f"{kind} {name!r} is registered twice")
        table[name] = Entry(name, factory, params, plain_summary(factory.__doc__))
        return factory

    return deco


def register_scheme(name: str, params: type[BaseModel]):
    """Class decorator: make a :class:`~linksim.schemes.base.Scheme` available as ``type: name``."""
    return _register(_REG.schemes, "scheme", name, params)


def register_channel(name: str, params: type[BaseModel]):
    """Class decorator: make a :class:`~linksim.channels.base.Channel` available as ``type: name``."""
    return _register(_REG.channels, "channel", name, params)


def register_channel_preset(name: str, channel_type: str, params: dict | None = None) -> None:
    """A named channel configuration usable as a plain string in a scenario (``channels: [tdl-a]``)."""
    _REG.channel_presets[name] = (channel_type, dict(params or {}))


def register_bit_channel(name: str, params: type[BaseModel]):
    """Class decorator: make a :class:`~linksim.channels.binary.BitChannel` available as ``type: name``."""
    return _register(_REG.bit_channels, "bit channel", name, params)


def register_dataset(name: str, loader: Callable[..., Any]) -> None:
    _REG.datasets[name] = loader


def _load_builtins(packages: tuple[str, ...] = _BUILTIN_PACKAGES) -> _Registries:
    for pkg in packages:
        importlib.import_module(pkg)
    return _REG


def schemes() -> dict[str, Entry]:
    return _load_builtins().schemes


def channels() -> dict[str, Entry]:
    return _load_builtins().channels


def channel_presets() -> dict[str, tuple[str, dict]]:
    return _load_builtins().channel_presets


def bit_channels() -> dict[str, Entry]:
    return _load_builtins().bit_channels


def datasets() -> dict[str, Callable[..., Any]]:
    # the datasets' package only: a module that validates a DataParams default while it is being
    # imported (linksim.link.packing) must not pull in the schemes that import it
    return _load_builtins(("linksim.data",)).datasets
