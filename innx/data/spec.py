"""Spec strings: how a dataset is named on the command line, and how it is opened.

A spec is ``name[:args]``; ``args`` are comma separated, items with ``=`` are options (strings),
at most one item without ``=`` is the location (a path)::

    shapes                         # every option at its default
    shapes:n=20000,size=32,seed=0
    folder:/data/imgs
    mnist:ROOT,split=test

``name`` is looked up in the ``innx.datasets`` entry-point group (built-ins register there like
plugins) and the factory it points to is called as ``factory(location, **options)``. A factory
reads its options through :class:`Options`, which turns bad values and unknown options into a
:class:`~innx.errors.ConfigError` that lists what is valid, and builds the dataset's canonical
spec (every option spelled out, the location absolute) so that ``open_dataset(ds.spec)`` reopens
the same data. Locations cannot contain commas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from innx.data.base import ImageDataset
from innx.errors import ConfigError, PluginError

GROUP = "innx.datasets"
"""The entry-point group of dataset factories."""


@dataclass(frozen=True)
class Spec:
    """A parsed spec string: dataset ``name``, optional ``location`` and string ``options``.

    Example::

        >>> parse_spec("mnist:/data,split=test")
        Spec(name='mnist', location='/data', options={'split': 'test'})
        >>> str(Spec("shapes", None, {"n": "10"}))
        'shapes:n=10'
    """

    name: str
    location: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        items = ([self.location] if self.location is not None else []) + [
            f"{k}={v}" for k, v in self.options.items()
        ]
        return f"{self.name}:{','.join(items)}" if items else self.name


def parse_spec(spec: str) -> Spec:
    """Split ``name[:location][,key=value]...`` into a :class:`Spec`; ``ConfigError`` when it is
    malformed (empty name, two locations, an option given twice or without a key)."""
    name, _, args = spec.strip().partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(
            f"dataset spec {spec!r} has no dataset name; write name[:args], e.g. shapes:n=1000"
        )
    location: str | None = None
    options: dict[str, str] = {}
    for item in args.split(",") if args.strip() else []:
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            if location is not None:
                raise ConfigError(
                    f"dataset spec {spec!r} names two locations ({location!r} and {item!r}); "
                    "give one path, options as key=value (paths cannot contain commas)"
                )
            location = item
        elif not key:
            raise ConfigError(f"dataset spec {spec!r} has an option without a name: {item!r}")
        elif key in options:
            raise ConfigError(f"dataset spec {spec!r} sets option {key!r} twice; keep one")
        else:
            options[key] = value.strip()
    return Spec(name, location, options)


def dataset_names() -> list[str]:
    """The names of the registered datasets (built-in and plugins), sorted."""
    from innx.plugins import registry

    return registry().names(GROUP)


def open_dataset(spec: str) -> ImageDataset:
    """The dataset a spec string names, e.g. ``open_dataset("shapes:n=100")``.

    Raises :class:`~innx.errors.ConfigError` for an unknown name or option and a bad option value,
    :class:`~innx.errors.DataError` when the data is missing or malformed, and
    :class:`~innx.errors.PluginError` when the plugin providing the name fails to load.
    """
    from innx.plugins import registry

    parsed = parse_spec(spec)
    names = dataset_names()
    if parsed.name not in names:
        raise ConfigError(
            f"unknown dataset {parsed.name!r}; choose one of: {', '.join(names)} "
            "(run 'innx plugins' to see plugins that are disabled or failed to load)"
        )
    factory = registry().load(GROUP, parsed.name)
    dataset = factory(parsed.location, **parsed.options)
    if not isinstance(dataset, ImageDataset):
        raise PluginError(
            f"dataset plugin {parsed.name!r} returned a {type(dataset).__name__}, not an "
            "innx ImageDataset; ask its authors for a fix"
        )
    return dataset


class Options:
    """The options of one spec as a factory reads them: typed, checked, and spelled out again.

    Each ``get_*`` call reads one option (or its default), checks it and records its canonical
    value; :meth:`spec` then refuses options nobody read (listing the valid ones) and returns the
    canonical spec string.

    Example::

        >>> opts = Options("shapes", {"n": "100"})
        >>> opts.get_int("n", 20000, min=1), opts.get_int("seed", 0, min=0)
        (100, 0)
        >>> opts.spec()
        'shapes:n=100,seed=0'
        >>> Options("shapes", {"m": "1"}).spec()
        Traceback (most recent call last):
        innx.errors.ConfigError: dataset 'shapes' has no option 'm'; valid options: none
    """

    def __init__(self, dataset: str, options: Mapping[str, str], location: str | None = None):
        self.dataset = dataset
        self.options = dict(options)
        self.location = location
        self.canonical: dict[str, str] = {}

    def _raw(self, key: str) -> str | None:
        value = self.options.get(key)
        return None if value is None else value.strip()

    def _bad(self, key: str, value: str, expected: str) -> ConfigError:
        return ConfigError(
            f"option {key}={value!r} of dataset {self.dataset!r} is not valid; expected {expected}"
        )

    def get_int(
        self, key: str, default: int, *, min: int | None = None, max: int | None = None
    ) -> int:
        """Option ``key`` as an int in ``[min, max]`` (bounds optional)."""
        raw = self._raw(key)
        lo = "" if min is None else f" >= {min}"
        hi = "" if max is None else f" <= {max}"
        expected = f"an integer{lo}{' and' if lo and hi else ''}{hi}"
        if raw is None:
            value = default
        else:
            try:
                value = int(raw)
            except ValueError:
                raise self._bad(key, raw, expected) from None
        if (min is not None and value < min) or (max is not None and value > max):
            raise self._bad(key, str(value), expected)
        self.canonical[key] = str(value)
        return value

    def get_float(
        self, key: str, default: float, *, min: float | None = None, max: float | None = None
    ) -> float:
        """Option ``key`` as a finite float in ``[min, max]`` (bounds optional)."""
        raw = self._raw(key)
        expected = "a number" + ("" if min is None else f" >= {min}")
        expected += "" if max is None else f" <= {max}"
        if raw is None:
            value = default
        else:
            try:
                value = float(raw)
            except ValueError:
                raise self._bad(key, raw, expected) from None
        if (
            value != value
            or value in (float("inf"), float("-inf"))
            or (min is not None and value < min)
            or (max is not None and value > max)
        ):
            raise self._bad(key, str(value), expected)
        self.canonical[key] = repr(value)
        return value

    def get_choice(self, key: str, choices: Sequence[str], default: str) -> str:
        """Option ``key`` as one of ``choices``."""
        raw = self._raw(key)
        value = default if raw is None else raw
        if value not in choices:
            raise self._bad(key, value, f"one of: {', '.join(choices)}")
        self.canonical[key] = value
        return value

    def get_str(self, key: str, default: str) -> str:
        """Option ``key`` as a non-empty string (checked by the caller)."""
        raw = self._raw(key)
        value = default if raw is None else raw
        if not value:
            raise self._bad(key, value, "a non-empty value")
        self.canonical[key] = value
        return value

    def spec(self) -> str:
        """The canonical spec: ``name:location,key=value,...`` with every option read so far, in
        the order it was read; ``ConfigError`` for an option that was given but never read."""
        unknown = [k for k in self.options if k not in self.canonical]
        if unknown:
            valid = ", ".join(self.canonical) or "none"
            raise ConfigError(
                f"dataset {self.dataset!r} has no option {unknown[0]!r}; valid options: {valid}"
            )
        return str(Spec(self.dataset, self.location, self.canonical))


def no_location(dataset: str, location: str | None, example: str) -> None:
    """Refuse a location for a dataset that takes none (a generated one)."""
    if location is not None:
        raise ConfigError(
            f"dataset {dataset!r} takes no path, but got {location!r}; "
            f"options are written key=value, e.g. {example}"
        )


def need_location(dataset: str, location: str | None, what: str) -> str:
    """The location as an absolute path; ``ConfigError`` saying what to give when it is missing.

    ``what`` describes the expected path, e.g. ``"ROOT (the folder holding MNIST/raw)"``.
    """
    if location is None or not location.strip():
        raise ConfigError(f"dataset {dataset!r} needs a path: write {dataset}:{what}")
    return os.path.abspath(Path(location.strip()).expanduser())
