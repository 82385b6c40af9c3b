"""Attribute pairs for the semantic INN: which two rows share which concept.

A pair ``(a, b, F)`` says rows ``a`` and ``b`` share factor ``F`` (``1 … K``, in the order the
factors were named); ``-j`` says they share every factor but ``j`` (the residual included, as in
the loss of :func:`innx.flows.semantic_pair_nll`). Pairs come from a :class:`PairSampler` over the
attribute values of a store, or from a CSV file (:func:`read_pairs_csv`).

Two rows share a categorical factor when they hold the same category. A continuous factor is
matched either by quantile bin (``bins=K``, the default ``K = 8``) or by a tolerance (``tol=T``:
``|a − b| <= T``); a factor spec string chooses: ``scale``, ``scale:bins=4``, ``scale:tol=0.01``.
A spec may also state the factor's kind, overriding the one its attribute was recorded with
(:mod:`innx.data.kinds`): ``digit:categorical``, ``age:continuous``, ``age:continuous,bins=4``;
``bins=`` or ``tol=`` alone ask for a continuous factor too.

The sampler draws, for every pair, a factor uniformly, an anchor uniformly among the rows that
have a partner for that factor, and the partner uniformly among those partners (never the anchor
itself). Pairs of step ``s`` depend only on ``(seed, s)``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from innx.data.base import CATEGORICAL, CONTINUOUS, AttributeKind
from innx.data.kinds import parse_kind
from innx.errors import ConfigError, DataError

DEFAULT_BINS = 8
Rows = NDArray[np.int64]


@dataclass(frozen=True)
class FactorSpec:
    """A named factor, the kind it is stated to have (``None``: its attribute's own) and how two
    values of it count as shared (see the module docstring).

    >>> FactorSpec.parse("age:continuous,bins=4")
    FactorSpec(name='age', bins=4, tol=None, kind='continuous')
    >>> FactorSpec.parse("scale:tol=0.01").stated_kind
    'continuous'
    """

    name: str
    bins: int | None = None
    tol: float | None = None
    kind: AttributeKind | None = None

    @classmethod
    def parse(cls, text: str) -> FactorSpec:
        """``name`` with optional ``:`` and comma-separated options: a kind (``categorical``,
        ``continuous``) and ``bins=K`` or ``tol=T``."""
        name, _, options = text.partition(":")
        if not name:
            raise ConfigError(f"factor {text!r} has no name; write e.g. shape or scale:bins=8")
        kind: AttributeKind | None = None
        bins: int | None = None
        tol: float | None = None
        given: set[str] = set()
        for option in options.split(",") if options else []:
            key, has_value, value = option.partition("=")
            group = "matching" if has_value else "kind"
            if group in given:
                raise ConfigError(f"factor {text!r}: give at most one kind and one of bins=, tol=")
            given.add(group)
            if not has_value:
                kind = parse_kind(option, name)
                continue
            if key not in ("bins", "tol"):
                raise ConfigError(
                    f"factor {text!r}: unknown option {key!r}; use categorical, continuous, "
                    "bins=K or tol=T"
                )
            try:
                if key == "bins":
                    bins = int(value)
                    if bins < 2:
                        raise ValueError
                else:
                    tol = float(value)
                    if not tol >= 0:
                        raise ValueError
            except ValueError:
                need = "count >= 2" if key == "bins" else "value >= 0"
                raise ConfigError(f"factor {text!r}: {key} needs a {need}") from None
        if kind == CATEGORICAL and given == {"kind", "matching"}:
            raise ConfigError(
                f"factor {text!r}: bins= and tol= apply only to a continuous factor; write "
                f"{name}:categorical, or {name}:continuous with them"
            )
        return cls(name, bins, tol, kind)

    @property
    def stated_kind(self) -> AttributeKind | None:
        """The kind the spec asks for: its own, continuous when it bins or has a tolerance, or
        ``None`` (the attribute's recorded kind)."""
        if self.kind is None and (self.bins is not None or self.tol is not None):
            return CONTINUOUS
        return self.kind

    def __str__(self) -> str:
        options: list[str] = [self.kind] if self.kind is not None else []
        if self.bins is not None:
            options.append(f"bins={self.bins}")
        if self.tol is not None:
            options.append(f"tol={self.tol}")
        return f"{self.name}:{','.join(options)}" if options else self.name


@dataclass(frozen=True)
class Pairs:
    """Row indices ``a``, ``b`` and factor labels ``factor`` (all int64, one entry per pair)."""

    a: Rows
    b: Rows
    factor: Rows

    def __len__(self) -> int:
        return len(self.a)

    def take(self, selection: slice | NDArray[np.int64]) -> Pairs:
        return Pairs(self.a[selection], self.b[selection], self.factor[selection])


class _Partners:
    """For each position ``p`` of ``order``: its partners are ``order[lo[p] : hi[p]]`` but ``p``."""

    def __init__(self, order: Rows, lo: Rows, hi: Rows) -> None:
        self.order, self.lo, self.hi = order, lo, hi
        self.eligible = np.flatnonzero(hi - lo >= 2)  # positions with a partner

    def draw(self, rng: np.random.Generator, count: int) -> tuple[Rows, Rows]:
        p = self.eligible[rng.integers(0, len(self.eligible), count)]
        k = self.lo[p] + rng.integers(0, self.hi[p] - self.lo[p] - 1)
        k = k + (k >= p)  # skip the anchor itself
        return self.order[p], self.order[k]


class PairSampler:
    """Deterministic pairs over ``rows`` of a store, from the attribute values of those rows.

    ``values`` is float ``[len(rows), K]``, one column per factor in ``specs`` order; ``kinds``
    says which are ``categorical``. ``negative`` is the share of pairs labelled ``-j`` (the partner
    matches every factor but ``j`` and differs in ``j``); it needs at least two factors.
    """

    def __init__(
        self,
        rows: Sequence[int] | Rows,
        values: NDArray[np.floating],
        kinds: Sequence[str],
        specs: Sequence[FactorSpec],
        *,
        negative: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        table = np.asarray(values, dtype=np.float64)
        if table.shape != (len(self.rows), len(specs)) or len(kinds) != len(specs):
            raise ConfigError(
                f"pair sampler: values {table.shape} do not match {len(self.rows)} rows "
                f"and {len(specs)} factors"
            )
        if not 0.0 <= negative <= 1.0:
            raise ConfigError(f"--negative must lie in [0, 1], got {negative}")
        if negative > 0 and len(specs) < 2:
            raise ConfigError("negative pairs need at least two factors")
        self.specs = list(specs)
        self.negative = negative
        self.seed = seed
        self.codes = [
            _codes(table[:, k], kind, spec)
            for k, (kind, spec) in enumerate(zip(kinds, specs, strict=True))
        ]
        self.positive = [
            _shared(table[:, k], codes, spec)
            for k, (codes, spec) in enumerate(zip(self.codes, specs, strict=True))
        ]
        for spec, partners in zip(specs, self.positive, strict=True):
            if not len(partners.eligible):
                raise ConfigError(
                    f"no two rows share a value of factor {spec.name!r}; "
                    "use more rows, fewer bins or a larger tolerance"
                )
        self.negatives = [self._negative_partners(j) for j in range(len(specs))] if negative else []

    def _negative_partners(self, j: int) -> _Partners:
        """Partners of a ``-j`` pair: the same codes in every factor but ``j``, another in ``j``."""
        if self.specs[j].tol is not None or any(s.tol is not None for s in self.specs):
            raise ConfigError("negative pairs need categorical or binned factors, not tol=")
        others = np.stack([c for k, c in enumerate(self.codes) if k != j], axis=1)
        _, key = np.unique(others, axis=0, return_inverse=True)
        order = np.lexsort((self.codes[j], key.ravel()))
        key, own = key.ravel()[order], self.codes[j][order]
        group_lo = np.searchsorted(key, key, side="left")
        group_hi = np.searchsorted(key, key, side="right")
        combined = key.astype(np.int64) * (int(own.max()) + 1) + own
        same_lo = np.searchsorted(combined, combined, side="left")
        same_hi = np.searchsorted(combined, combined, side="right")
        partners = _NegativePartners(order, group_lo, group_hi, same_lo, same_hi)
        if not len(partners.eligible):
            raise ConfigError(
                f"no two rows differ only in factor {self.specs[j].name!r}, so no negative pairs "
                "can be drawn for it; set --negative 0"
            )
        return partners

    def sample(self, step: int, count: int) -> Pairs:
        """``count`` pairs for step ``step`` (the same for the same seed and step)."""
        rng = np.random.default_rng([self.seed, step])
        factor = rng.integers(0, len(self.specs), count)
        negative = rng.random(count) < self.negative if self.negative else np.zeros(count, bool)
        a = np.empty(count, np.int64)
        b = np.empty(count, np.int64)
        for j in range(len(self.specs)):
            for is_negative, partners in ((False, self.positive), (True, self.negatives)):
                chosen = np.flatnonzero((factor == j) & (negative == is_negative))
                if len(chosen):
                    pa, pb = partners[j].draw(rng, len(chosen))
                    a[chosen], b[chosen] = self.rows[pa], self.rows[pb]
        labels = np.where(negative, -(factor + 1), factor + 1)
        return Pairs(a, b, labels.astype(np.int64))


class _NegativePartners(_Partners):
    """Partners in the same group ``[lo, hi)`` but outside the anchor's own run ``[same_lo,
    same_hi)`` of equal codes in factor ``j``."""

    def __init__(self, order: Rows, lo: Rows, hi: Rows, same_lo: Rows, same_hi: Rows) -> None:
        self.order, self.lo, self.hi = order, lo, hi
        self.same_lo, self.same_hi = same_lo, same_hi
        self.eligible = np.flatnonzero((hi - lo) - (same_hi - same_lo) >= 1)

    def draw(self, rng: np.random.Generator, count: int) -> tuple[Rows, Rows]:
        p = self.eligible[rng.integers(0, len(self.eligible), count)]
        same = self.same_hi[p] - self.same_lo[p]
        k = self.lo[p] + rng.integers(0, self.hi[p] - self.lo[p] - same)
        k = k + np.where(k >= self.same_lo[p], same, 0)  # skip the anchor's own run
        return self.order[p], self.order[k]


def _codes(values: NDArray[np.float64], kind: str, spec: FactorSpec) -> Rows:
    """Integer codes such that equal codes share the factor (tol factors: unused, zeros)."""
    if kind == "categorical":
        if spec.bins is not None or spec.tol is not None:
            raise ConfigError(
                f"factor {spec.name!r} is categorical; bins= and tol= apply only to continuous factors"
            )
        codes = values.astype(np.int64)
    elif spec.tol is not None:
        codes = np.zeros(len(values), np.int64)
    else:
        bins = spec.bins or DEFAULT_BINS
        edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
        codes = np.searchsorted(edges, values, side="right").astype(np.int64)
    distinct = len(np.unique(values if kind != "categorical" else codes))
    if distinct < 2:
        raise ConfigError(
            f"factor {spec.name!r} takes {distinct} value(s) on these rows; a factor needs at "
            "least two values to be learned"
        )
    return codes


def _shared(values: NDArray[np.float64], codes: Rows, spec: FactorSpec) -> _Partners:
    if spec.tol is not None:
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        lo = np.searchsorted(ordered, ordered - spec.tol, side="left")
        hi = np.searchsorted(ordered, ordered + spec.tol, side="right")
        return _Partners(order, lo, hi)
    order = np.argsort(codes, kind="stable")
    groups = codes[order]
    lo = np.searchsorted(groups, groups, side="left")
    hi = np.searchsorted(groups, groups, side="right")
    return _Partners(order, lo, hi)


def read_pairs_csv(
    path: str | Path, names: Sequence[str], n_rows: int, bad: Rows | None = None
) -> Pairs:
    """Pairs from a CSV of ``a,b,factor`` (a header line is optional).

    ``a`` and ``b`` are store rows in ``[0, n_rows)``; ``factor`` is a factor name, ``-name``
    (shares every factor but that one) or a label in ``-K … K``. Rows in ``bad`` (images that
    were skipped) are refused, as is anything out of range, with the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pairs file {path} does not exist; write a CSV with columns a,b,factor")
    position = {name: k for k, name in enumerate(names, start=1)}
    refused = set(np.asarray(bad if bad is not None else [], dtype=np.int64).tolist())
    a, b, factor = [], [], []
    with open(path, newline="") as handle:
        for line, record in enumerate(csv.reader(handle), start=1):
            if not record or all(not field.strip() for field in record):
                continue
            if line == 1 and [f.strip().lower() for f in record] == ["a", "b", "factor"]:
                continue
            if len(record) != 3:
                raise DataError(f"{path}:{line}: expected 3 columns a,b,factor, got {len(record)}")
            try:
                ra, rb = int(record[0]), int(record[1])
            except ValueError:
                raise DataError(f"{path}:{line}: rows must be integers, got {record[:2]}") from None
            for row in (ra, rb):
                if not 0 <= row < n_rows:
                    raise DataError(
                        f"{path}:{line}: row {row} is out of range; the store has rows 0…{n_rows - 1}"
                    )
                if row in refused:
                    raise DataError(
                        f"{path}:{line}: row {row} is an image that extract skipped as bad"
                    )
            a.append(ra)
            b.append(rb)
            factor.append(_label(record[2].strip(), position, path, line))
    if not a:
        raise DataError(f"{path} holds no pairs; write lines a,b,factor")
    return Pairs(np.array(a, np.int64), np.array(b, np.int64), np.array(factor, np.int64))


def _label(text: str, position: dict[str, int], path: Path, line: int) -> int:
    sign, name = (-1, text[1:]) if text.startswith("-") else (1, text)
    if name in position:
        return sign * position[name]
    try:
        label = int(text)
    except ValueError:
        label = None
    if label is None or label == 0 or abs(label) > len(position):
        raise DataError(
            f"{path}:{line}: factor {text!r} is not one of {', '.join(position)} "
            f"(or a label in ±1…{len(position)})"
        )
    return label
