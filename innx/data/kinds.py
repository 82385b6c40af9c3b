"""Attribute kinds: the rule that types a column of text, and an attribute read as the other kind.

A column of text (``attributes.csv`` of a ``folder:`` dataset) is **categorical** when any of its
values is not a number, or when every value is a whole number and there are at most
:data:`MAX_INTEGER_CATEGORIES` distinct ones (digits 0–9, a class id, a count of objects); it is
**continuous** otherwise (fractions, or many distinct integers such as an age in years).

A user who knows better states the kind where a factor is named (``innx fit semantic --factor
digit:categorical``, ``innx analyze --factor age:continuous``); :func:`as_kind` then reads the
stored values as that kind, or says in one line why they cannot be.

Example::

    >>> column_attribute("digit", ["3", "1", "3"])
    (Attribute(name='digit', kind='categorical', categories=('1', '3')), array([1., 0., 1.]))
    >>> column_attribute("scale", ["0.5", "1.25", "2"])[0].kind
    'continuous'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from innx.data.base import CATEGORICAL, CONTINUOUS, Attribute, AttributeKind
from innx.errors import ConfigError

MAX_INTEGER_CATEGORIES = 32
"""A column of whole numbers with at most this many distinct values is categorical."""
KINDS: tuple[AttributeKind, ...] = (CATEGORICAL, CONTINUOUS)


def parse_kind(text: str, name: str) -> AttributeKind:
    """``text`` as a kind of attribute ``name``; a one-line :class:`ConfigError` otherwise."""
    for kind in KINDS:
        if text == kind:
            return kind
    raise ConfigError(
        f"unknown kind {text!r} for {name!r}; write {name}:categorical or {name}:continuous"
    )


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def column_attribute(name: str, cells: Sequence[str]) -> tuple[Attribute, NDArray[np.float64]]:
    """The attribute a column of text ``cells`` describes and its values ``float64 [N]``: the
    category index of each cell (categories sorted: by value for whole numbers, ``"3"`` for
    ``3.0``; as text otherwise) or the number itself; see the module docstring for the rule."""
    numbers = [_number(c) for c in cells]
    if any(x is None for x in numbers):
        categories = tuple(sorted(set(cells)))
        code = {c: i for i, c in enumerate(categories)}
        indices = np.array([code[c] for c in cells], np.float64)
        return Attribute(name, CATEGORICAL, categories), indices
    values = np.array(numbers, dtype=np.float64)
    distinct = np.unique(values)
    if len(distinct) <= MAX_INTEGER_CATEGORIES and bool(np.all(distinct == np.round(distinct))):
        categories = tuple(str(int(v)) for v in distinct)
        return Attribute(name, CATEGORICAL, categories), _index(distinct, values)
    return Attribute(name, CONTINUOUS), values


def as_kind(
    name: str,
    values: NDArray[np.floating],
    stored: str,
    categories: Sequence[str],
    wanted: AttributeKind,
    rows: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """The values ``[N]`` of attribute ``name`` as a store or dataset holds them (``stored``
    kind: category indices into ``categories``, or numbers) read as ``wanted``:

    - the same kind: the values themselves;
    - categorical → continuous: the number each category names (category ``"7"`` → 7.0);
    - continuous → categorical: the index of each value among the sorted distinct values of
      ``rows`` (a mask; default every row), which must be whole numbers.

    A :class:`ConfigError` in one line, with the fix, when the values cannot be read so.
    """
    array = np.asarray(values, dtype=np.float64)
    if stored == wanted:
        return array
    if wanted == CONTINUOUS:
        numbers = [_number(c) for c in categories]
        text = [c for c, x in zip(categories, numbers, strict=True) if x is None]
        if text:
            raise ConfigError(
                f"attribute {name!r} cannot be continuous: its categories are not all numbers "
                f"({', '.join(text[:3])}{', …' if len(text) > 3 else ''}); name it without "
                ":continuous, bins= or tol="
            )
        lookup = np.array(numbers, dtype=np.float64)
        return lookup[np.clip(array.astype(np.int64), 0, max(len(lookup) - 1, 0))]
    taken = array if rows is None else array[rows]
    distinct = np.unique(taken)
    fractional = distinct[distinct != np.round(distinct)]
    if len(fractional) or not np.all(np.isfinite(distinct)):
        example = fractional[0] if len(fractional) else distinct[~np.isfinite(distinct)][0]
        raise ConfigError(
            f"attribute {name!r} cannot be categorical: it holds values that are not whole "
            f"numbers (e.g. {example:g}); name it without :categorical (continuous factors pair "
            "by quantile bins, bins=K, or by a tolerance, tol=T)"
        )
    return _index(distinct, array)


def _index(distinct: NDArray[np.float64], values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The index of each of ``values`` in the sorted ``distinct`` (the nearest at or above)."""
    found = np.searchsorted(distinct, values)
    return np.clip(found, 0, max(len(distinct) - 1, 0)).astype(np.float64)
