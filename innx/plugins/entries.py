"""The records of the plugin system: what a declared plugin is, what became of it, and names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Literal

GROUPS: tuple[str, ...] = ("innx.backbones", "innx.autoencoders", "innx.datasets", "innx.commands")
"""The entry-point groups innx reads, in the order they are reported."""

BUILTIN_DIST = "innx"
"""Distribution name of innx itself; its entries are never disabled by ``INNX_PLUGINS``."""

ENV_VAR = "INNX_PLUGINS"

KINDS = {
    "innx.backbones": "backbone",
    "innx.autoencoders": "autoencoder",
    "innx.datasets": "dataset",
    "innx.commands": "command",
}

Status = Literal["ok", "failed", "duplicate", "disabled"]
"""``ok`` loaded; ``failed`` raised on import or was rejected; ``duplicate`` its name is claimed by
more than one distribution; ``disabled`` left out by ``INNX_PLUGINS``."""


@dataclass(frozen=True)
class PluginEntry:
    """One declared plugin: ``name`` in ``group``, provided by distribution ``dist`` at ``version``.

    ``value`` is the entry-point target (``"package.module:attribute"``); for objects registered
    in-process it is the object's import path as far as it is known.
    """

    group: str
    name: str
    value: str
    dist: str
    version: str

    @property
    def builtin(self) -> bool:
        """Whether innx itself provides this entry."""
        return normalise(self.dist) == BUILTIN_DIST

    @property
    def label(self) -> str:
        """``"dist version"``, as used in messages."""
        return f"{self.dist} {self.version}"


@dataclass(frozen=True)
class PluginStatus:
    """What became of one :class:`PluginEntry`; ``error`` is the one-line message when not ok."""

    entry: PluginEntry
    status: Status
    error: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Flat, JSON-ready form: the entry's fields plus ``status`` and ``error``."""
        e = self.entry
        return {
            "group": e.group,
            "name": e.name,
            "value": e.value,
            "dist": e.dist,
            "version": e.version,
            "status": self.status,
            "error": self.error,
        }


def normalise(name: str) -> str:
    """PEP 503 form of a distribution or entry name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def one_line(exc: BaseException) -> str:
    """``"ExcType: message"`` on one line, for messages about a plugin that failed."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def provider(ep: EntryPoint) -> tuple[str, str]:
    """Name and version of the distribution declaring ``ep``; ``"unknown"`` where its metadata
    is too broken to say (such a plugin must not break discovery of the others)."""
    try:
        return ep.dist.name or "unknown", ep.dist.version or "unknown"  # type: ignore[union-attr]
    except Exception:
        return "unknown", "unknown"


def join_words(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
