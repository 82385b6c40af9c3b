"""The registry: discovers the ``innx.*`` entry points once and loads plugins on demand."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from innx.errors import PluginError
from innx.plugins.entries import (
    BUILTIN_DIST,
    ENV_VAR,
    GROUPS,
    KINDS,
    PluginEntry,
    PluginStatus,
    join_words,
    normalise,
    one_line,
    provider,
)

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
            self._allowed = {normalise(w) for w in raw.split(",") if w.strip()}
        self._scans += 1
        slots: dict[str, dict[str, list[_Slot]]] = {group: {} for group in GROUPS}
        for group in GROUPS:
            for ep in entry_points(group=group):
                entry = PluginEntry(group, ep.name, ep.value, *provider(ep))
                self._add(slots, _Slot(entry, self._enabled(entry), ep=ep))
        for entry, obj in self._registered:
            self._add(slots, _Slot(entry, self._enabled(entry), obj=obj))
        return slots

    def _enabled(self, entry: PluginEntry) -> bool:
        """Whether ``INNX_PLUGINS`` (as read at discovery) lets ``entry`` load."""
        if self._allowed is None or entry.builtin:
            return True
        return bool({normalise(entry.dist), normalise(entry.name)} & self._allowed)

    @staticmethod
    def _add(slots: dict[str, dict[str, list[_Slot]]], slot: _Slot) -> None:
        """Add a candidate; a later one from the same distribution replaces the earlier one
        (``importlib.metadata`` already drops a distribution shadowed on ``sys.path``)."""
        candidates = slots[slot.entry.group].setdefault(slot.entry.name, [])
        dist = normalise(slot.entry.dist)
        candidates[:] = [s for s in candidates if normalise(s.entry.dist) != dist]
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

            version = __version__ if normalise(dist) == BUILTIN_DIST else "0"
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
                key=lambda e: (e.name, normalise(e.dist)),
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
        kind = KINDS[group]
        with self._lock:
            candidates = self._state()[group].get(name, [])
            enabled = [s for s in candidates if s.enabled]
            if not enabled:
                if candidates:
                    dists = join_words(sorted({s.entry.dist for s in candidates}, key=str.lower))
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
                    f"{KINDS[e.group]} plugin '{e.name}' from {e.label} failed to load: "
                    f"{one_line(exc)}; reinstall or uninstall {e.dist}"
                )
                slot.cause = exc
        if slot.error is not None:
            raise PluginError(slot.error) from slot.cause
        return slot.obj

    @staticmethod
    def _duplicate_message(enabled: list[_Slot]) -> str:
        e = enabled[0].entry
        labels = join_words(sorted((s.entry.label for s in enabled), key=str.lower))
        both = "both " if len(enabled) == 2 else ""
        return f"{KINDS[e.group]} '{e.name}' is provided by {both}{labels}; uninstall one of them"

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
                        f"{KINDS[group]} plugin '{name}' from {e.label} {reason}; "
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
                    candidates = sorted(state[group][name], key=lambda s: normalise(s.entry.dist))
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
        if group not in KINDS:
            raise PluginError(f"unknown plugin group '{group}'; choose one of: {', '.join(GROUPS)}")


_DEFAULT = Registry()


def registry() -> Registry:
    """The process-wide :class:`Registry` that innx itself uses."""
    return _DEFAULT
