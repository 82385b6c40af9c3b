"""Plugins: what is installed in the ``innx.*`` entry-point groups, loaded lazily and once.

This module is the whole plugin surface of innx. A plugin is an installed distribution that
declares entry points in one of :data:`GROUPS`, for example in its ``pyproject.toml``::

    [project.entry-points."innx.backbones"]
    my-net = "my_package.backbone:make_my_net"

    [project.entry-points."innx.commands"]
    hello = "my_package.cli:app"      # a typer.Typer (``innx hello ...``) or a function

Rules, and why:

- **Lazy, once.** Nothing is imported when innx is imported. The entry points are read on first
  use of the :func:`registry` and each plugin is imported the first time it is asked for; both
  results (including failures) are cached for the life of the process.
- **A broken plugin breaks only itself.** A plugin whose import raises is recorded as a failure;
  asking for it raises :class:`~innx.errors.PluginError` naming its distribution and the fix,
  everything else keeps working, and ``innx plugins`` reports it.
- **Names are owned by the core.** Two distributions declaring the same name in the same group
  make that name unusable (loading it is an error naming both); other names are unaffected.
- **``INNX_PLUGINS`` limits what loads.** Unset or empty: everything. ``none``: no third-party
  plugin. A comma list (``INNX_PLUGINS=innx-timm,my-net``): only entries whose distribution name
  (case-insensitive, ``-``/``_``/``.`` equivalent) or entry-point name is listed. Entries of the
  ``innx`` distribution itself always load. Disabled entries stay listed, they are just not loaded,
  and do not take part in duplicate detection, so the variable also settles a name clash.
- **One path for everything.** Built-in entries (declared by the ``innx`` distribution) and
  in-process objects added with :meth:`Registry.register` (tests, notebooks) go through the same
  checks as third-party plugins.

Example::

    from innx.plugins import registry

    factory = registry().load("innx.backbones", "my-net")   # PluginError if missing or broken
    for status in registry().report():                      # loads every enabled plugin
        print(status.entry.group, status.entry.name, status.status, status.error)
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from innx.errors import PluginError

__all__ = [
    "BUILTIN_DIST",
    "GROUPS",
    "PluginEntry",
    "PluginStatus",
    "Registry",
    "Status",
    "registry",
]

GROUPS: tuple[str, ...] = ("innx.backbones", "innx.autoencoders", "innx.datasets", "innx.commands")
"""The entry-point groups innx reads, in the order they are reported."""

BUILTIN_DIST = "innx"
"""Distribution name of innx itself; its entries are never disabled by ``INNX_PLUGINS``."""

ENV_VAR = "INNX_PLUGINS"

_KINDS = {
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
        return _normalise(self.dist) == BUILTIN_DIST

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


_MISSING: Any = object()


@dataclass
class _Slot:
    """A candidate for ``(group, name)`` and what is known of it so far (mutable, internal)."""

    entry: PluginEntry
    enabled: bool
    ep: EntryPoint | None = None
    obj: Any = _MISSING
    error: str | None = None
    cause: BaseException | None = field(default=None, repr=False)


def _normalise(name: str) -> str:
    """PEP 503 form of a distribution or entry name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def _one_line(exc: BaseException) -> str:
    """``"ExcType: message"`` on one line, for messages about a plugin that failed."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _provider(ep: EntryPoint) -> tuple[str, str]:
    """Name and version of the distribution declaring ``ep``; ``"unknown"`` where its metadata
    is too broken to say (such a plugin must not break discovery of the others)."""
    try:
        return ep.dist.name or "unknown", ep.dist.version or "unknown"  # type: ignore[union-attr]
    except Exception:
        return "unknown", "unknown"


def _join(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class Registry:
    """The plugins installed in :data:`GROUPS`, discovered on first use and loaded on demand.

    Use the process-wide instance from :func:`registry`; build a fresh one only in tests.
    Thread-safe; every method may trigger discovery, none raises for a plugin other than the
    one asked for.

    Example::

        reg = Registry()
        reg.register("innx.datasets", "noise", make_noise, dist="my-notebook")
        reg.load("innx.datasets", "noise") is make_noise   # True
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._slots: dict[str, dict[str, list[_Slot]]] | None = None
        self._registered: list[tuple[PluginEntry, Any]] = []
        self._filter: str | None = None
        self._allowed: set[str] | None = None
        self._scans = 0

    # -- discovery -------------------------------------------------------------------------------

    @property
    def scans(self) -> int:
        """How many times this registry has read the entry points: once, then once more after each
        :meth:`reset` that is followed by a use."""
        return self._scans

    @property
    def selection(self) -> str | None:
        """The ``INNX_PLUGINS`` value in force at discovery (``None`` when unset: everything)."""
        self._state()
        return self._filter

    def reset(self) -> None:
        """Forget discovery, loaded objects and failures; the next use reads entry points and
        ``INNX_PLUGINS`` again. In-process registrations are kept (undo them with
        :meth:`unregister`). Meant for tests that change ``sys.path`` or the environment."""
        with self._lock:
            self._slots = None
            self._filter = None
            self._allowed = None

    def _state(self) -> dict[str, dict[str, list[_Slot]]]:
        with self._lock:
            if self._slots is None:
                self._slots = self._scan()
            return self._slots

    def _scan(self) -> dict[str, dict[str, list[_Slot]]]:
        raw = os.environ.get(ENV_VAR, "").strip()
        self._filter = raw or None
        if not raw:
            self._allowed = None
        elif raw.lower() == "none":
            self._allowed = set()
        else:
            self._allowed = {_normalise(w) for w in raw.split(",") if w.strip()}
        self._scans += 1
        slots: dict[str, dict[str, list[_Slot]]] = {group: {} for group in GROUPS}
        for group in GROUPS:
            for ep in entry_points(group=group):
                entry = PluginEntry(group, ep.name, ep.value, *_provider(ep))
                self._add(slots, _Slot(entry, self._enabled(entry), ep=ep))
        for entry, obj in self._registered:
            self._add(slots, _Slot(entry, self._enabled(entry), obj=obj))
        return slots

    def _enabled(self, entry: PluginEntry) -> bool:
        """Whether ``INNX_PLUGINS`` (as read at discovery) lets ``entry`` load."""
        if self._allowed is None or entry.builtin:
            return True
        return bool({_normalise(entry.dist), _normalise(entry.name)} & self._allowed)

    @staticmethod
    def _add(slots: dict[str, dict[str, list[_Slot]]], slot: _Slot) -> None:
        """Add a candidate; a later one from the same distribution replaces the earlier one
        (``importlib.metadata`` already drops a distribution shadowed on ``sys.path``)."""
        candidates = slots[slot.entry.group].setdefault(slot.entry.name, [])
        dist = _normalise(slot.entry.dist)
        candidates[:] = [s for s in candidates if _normalise(s.entry.dist) != dist]
        candidates.append(slot)

    # -- in-process registration ----------------------------------------------------------------

    def register(
        self,
        group: str,
        name: str,
        obj: object,
        *,
        dist: str = BUILTIN_DIST,
        version: str | None = None,
    ) -> PluginEntry:
        """Add ``obj`` as plugin ``name`` in ``group``, as if distribution ``dist`` declared it.

        It then behaves exactly like an installed entry point: it can be disabled by
        ``INNX_PLUGINS`` (unless ``dist`` is ``innx``) and clashes with a same-named entry of
        another distribution. Returns the entry, for :meth:`unregister`.
        """
        self._check_group(group)
        if version is None:
            from innx import __version__

            version = __version__ if _normalise(dist) == BUILTIN_DIST else "0"
        module = getattr(obj, "__module__", None) or "?"
        qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
        entry = PluginEntry(group, name, f"{module}:{qualname}", dist, version)
        with self._lock:
            self._registered.append((entry, obj))
            if self._slots is not None:
                self._add(self._slots, _Slot(entry, self._enabled(entry), obj=obj))
        return entry

    def unregister(self, entry: PluginEntry) -> None:
        """Undo :meth:`register`; a no-op for an entry that is not registered."""
        with self._lock:
            self._registered = [(e, o) for e, o in self._registered if e != entry]
            if self._slots is not None:
                candidates = self._slots[entry.group].get(entry.name, [])
                candidates[:] = [s for s in candidates if s.entry != entry]
                if not candidates:
                    self._slots[entry.group].pop(entry.name, None)

    @contextmanager
    def registered(
        self,
        group: str,
        name: str,
        obj: object,
        *,
        dist: str = BUILTIN_DIST,
        version: str | None = None,
    ) -> Iterator[PluginEntry]:
        """:meth:`register` for the duration of a ``with`` block (test fixtures)."""
        entry = self.register(group, name, obj, dist=dist, version=version)
        try:
            yield entry
        finally:
            self.unregister(entry)

    # -- queries ---------------------------------------------------------------------------------

    def entries(self, group: str) -> list[PluginEntry]:
        """Every entry declared in ``group`` (disabled and duplicate ones too), by name then dist."""
        self._check_group(group)
        with self._lock:
            slots = self._state()[group]
            return sorted(
                (s.entry for candidates in slots.values() for s in candidates),
                key=lambda e: (e.name, _normalise(e.dist)),
            )

    def names(self, group: str) -> list[str]:
        """The names in ``group`` that are enabled (they may still fail to load), sorted."""
        self._check_group(group)
        with self._lock:
            slots = self._state()[group]
            return sorted(n for n, cs in slots.items() if any(s.enabled for s in cs))

    def load(self, group: str, name: str) -> Any:
        """The object plugin ``name`` of ``group`` points to, importing it on first use.

        Raises :class:`PluginError` when the name is unknown, disabled, claimed by two
        distributions, or its import failed (the failure is cached; it is not retried).
        """
        self._check_group(group)
        kind = _KINDS[group]
        with self._lock:
            candidates = self._state()[group].get(name, [])
            enabled = [s for s in candidates if s.enabled]
            if not enabled:
                if candidates:
                    dists = _join(sorted({s.entry.dist for s in candidates}, key=str.lower))
                    raise PluginError(
                        f"{kind} '{name}' from {dists} is disabled by {ENV_VAR}={self._filter}; "
                        f"unset {ENV_VAR} or add {candidates[0].entry.dist} to it"
                    )
                names = self.names(group)
                hint = (
                    f"choose one of: {', '.join(names)}"
                    if names
                    else f"no {kind} plugin is installed; run 'innx plugins' to see what is"
                )
                raise PluginError(f"no {kind} named '{name}'; {hint}")
            if len(enabled) > 1:
                raise PluginError(self._duplicate_message(enabled))
            return self._load_slot(enabled[0])

    def _load_slot(self, slot: _Slot) -> Any:
        if slot.error is None and slot.obj is _MISSING:
            assert slot.ep is not None, "registered slots always hold their object"
            try:
                slot.obj = slot.ep.load()
            except (Exception, SystemExit) as exc:
                e = slot.entry
                slot.error = (
                    f"{_KINDS[e.group]} plugin '{e.name}' from {e.label} failed to load: "
                    f"{_one_line(exc)}; reinstall or uninstall {e.dist}"
                )
                slot.cause = exc
        if slot.error is not None:
            raise PluginError(slot.error) from slot.cause
        return slot.obj

    @staticmethod
    def _duplicate_message(enabled: list[_Slot]) -> str:
        e = enabled[0].entry
        labels = _join(sorted((s.entry.label for s in enabled), key=str.lower))
        both = "both " if len(enabled) == 2 else ""
        return f"{_KINDS[e.group]} '{e.name}' is provided by {both}{labels}; uninstall one of them"

    def load_all(self, group: str) -> dict[str, Any]:
        """Load every enabled, unambiguous plugin of ``group``; ``{name: object}`` of those that
        loaded. Failures are not raised; they are kept for :meth:`failures` and :meth:`report`."""
        loaded: dict[str, Any] = {}
        for name in self.names(group):
            try:
                loaded[name] = self.load(group, name)
            except PluginError:
                continue
        return loaded

    def reject(self, group: str, name: str, reason: str) -> None:
        """Mark the loaded plugin ``name`` as unusable, e.g. a command plugin that is not a
        command. From then on :meth:`load` raises a :class:`PluginError` built from ``reason``
        (a phrase such as ``"is a str, not a function"``) and the plugin is reported as failed."""
        self._check_group(group)
        with self._lock:
            for slot in self._state()[group].get(name, []):
                if slot.enabled and slot.error is None:
                    e = slot.entry
                    slot.error = (
                        f"{_KINDS[group]} plugin '{name}' from {e.label} {reason}; "
                        f"uninstall {e.dist} or ask its authors for a fix"
                    )
                    slot.obj = _MISSING

    def _statuses(self) -> list[PluginStatus]:
        """The status of every entry whose fate is known (not of plugins not yet asked for)."""
        out: list[PluginStatus] = []
        with self._lock:
            state = self._state()
            for group in GROUPS:
                for name in sorted(state[group]):
                    candidates = sorted(state[group][name], key=lambda s: _normalise(s.entry.dist))
                    enabled = [s for s in candidates if s.enabled]
                    duplicate = self._duplicate_message(enabled) if len(enabled) > 1 else None
                    for slot in candidates:
                        if not slot.enabled:
                            out.append(PluginStatus(slot.entry, "disabled"))
                        elif duplicate is not None:
                            out.append(PluginStatus(slot.entry, "duplicate", duplicate))
                        elif slot.error is not None:
                            out.append(PluginStatus(slot.entry, "failed", slot.error))
                        elif slot.obj is not _MISSING:
                            out.append(PluginStatus(slot.entry, "ok"))
        return out

    def report(self) -> list[PluginStatus]:
        """Load every enabled plugin of every group and say what became of each entry, in
        :data:`GROUPS` order, then by name and distribution. Never raises for a plugin."""
        for group in GROUPS:
            self.load_all(group)
        return self._statuses()

    def failures(self) -> list[PluginStatus]:
        """Entries known so far to be unusable: ``failed`` (tried and broken) or ``duplicate``.
        Plugins not asked for yet are not imported; call :meth:`report` for the full picture."""
        return [s for s in self._statuses() if s.error is not None]

    @staticmethod
    def _check_group(group: str) -> None:
        if group not in _KINDS:
            raise PluginError(f"unknown plugin group '{group}'; choose one of: {', '.join(GROUPS)}")


_DEFAULT = Registry()


def registry() -> Registry:
    """The process-wide :class:`Registry` that innx itself uses."""
    return _DEFAULT
