"""Concept interventions of ``innx analyze``: how the classifier's prediction moves when one
concept of an image is swapped through ``e`` (a causal, per-concept sensitivity of the model, what
TCAV estimates with directional derivatives, measured here by intervention).

For each block ``F`` of ``e`` (each named factor, and the residual as a control) and each analyzed
row ``x`` with a donor row ``d`` (:func:`donors`):

- ``zhat' = e(zbar_x)`` with its block ``e_F`` replaced by ``e_F(zbar_d)``, decoded as
  ``D(e⁻¹(zhat'))`` and classified;
- ``effect``: the share of rows whose prediction on that image differs from the prediction on the
  unswapped ``D(e⁻¹(e(zbar_x)))`` (not on the image itself: the autoencoder's reconstruction error
  is no effect of the swap), with a bootstrap interval over rows;
- ``follows_donor``: the share of rows whose prediction on the swap equals the donor's own
  (unswapped) prediction, read against ``donor_same``, the share of rows whose donor was already
  predicted as the row itself.

If the concepts carry what the classifier uses, swapping the residual moves the prediction
little. :func:`measure` is the pure measurement; :func:`report_entry` gathers its inputs from a
:class:`~innx.ops.pipeline.Pipeline` for the report (``report["interventions"]``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from innx.data.base import AttributeKind
from innx.errors import InnxError, ShapeError, first_line
from innx.flows import SemanticFlow
from innx.flows.semantic import RESIDUAL
from innx.ops.analyze.estimators import bootstrap_interval
from innx.ops.analyze.layer import Networks, predict
from innx.ops.pipeline import Pipeline

CATEGORICAL = "categorical"
RULE = (
    "a row's donor is another analyzed row, drawn by seed: for a categorical factor one with "
    "another value, for a continuous one one whose value differs by at least the factor's "
    "inter-quartile range over the analyzed rows (any other value when that range is 0), for "
    "the residual any other row; a row without such a donor is left out (n)"
)


@dataclass(frozen=True)
class Intervention:
    """What swapping one block did over the ``n`` rows that had a donor: ``effect`` (with its
    bootstrap ``interval``), ``follows_donor`` and ``donor_same`` (see the module docstring);
    NaN for ``n = 0``."""

    effect: float
    interval: tuple[float, float]
    follows_donor: float
    donor_same: float
    n: int


def donors(values: np.ndarray, gap: float, seed: int | Sequence[int]) -> np.ndarray:
    """A donor for each row of ``values`` ``[N]``: the position int64 ``[N]`` of another row
    whose value differs from the row's by at least ``gap`` (by anything when ``gap`` is 0),
    drawn uniformly among those from ``np.random.default_rng(seed)``; -1 when there is none.

    >>> donors(np.array([0.0, 0.0, 1.0]), 0.0, seed=0)[:2]  # the two 0s can only take the 1
    array([2, 2])
    >>> donors(np.array([3.0, 3.0]), 0.0, seed=0)  # no other value: no donor
    array([-1, -1])
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ShapeError(f"donors needs finite values [N], got shape {values.shape}")
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    if gap > 0:  # rows at or below v − gap, and at or above v + gap
        below = np.searchsorted(ordered, values - gap, side="right")
        above = np.searchsorted(ordered, values + gap, side="left")
    else:
        below = np.searchsorted(ordered, values, side="left")
        above = np.searchsorted(ordered, values, side="right")
    count = below + (len(values) - above)
    pick = np.floor(np.random.default_rng(seed).random(len(values)) * count).astype(np.int64)
    pick = np.minimum(pick, np.maximum(count - 1, 0))
    at = np.where(pick < below, pick, above + pick - below)
    return np.where(count > 0, order[np.minimum(at, len(values) - 1)], -1)


def other_rows(n: int, seed: int | Sequence[int]) -> np.ndarray:
    """A donor for each of ``n`` rows: any other row, drawn uniformly (the residual's donors)."""
    if n < 2:
        return np.full(n, -1, np.int64)
    pick = np.random.default_rng(seed).integers(0, n - 1, n)
    return pick + (pick >= np.arange(n))


def spread(kind: str, values: np.ndarray) -> float:
    """The gap a donor's value must have: 0 for a categorical factor (another value), the
    inter-quartile range of ``values`` for a continuous one."""
    if kind == CATEGORICAL:
        return 0.0
    low, high = np.quantile(np.asarray(values, np.float64), [0.25, 0.75])
    return float(high - low)


@torch.no_grad()
def measure(
    e: SemanticFlow,
    zbar: Tensor,
    values: Mapping[str, tuple[str, np.ndarray]],
    decode: Callable[[Tensor], Tensor],
    classify: Callable[[Tensor], Tensor],
    *,
    seed: int,
    draws: int,
    batch: int = 256,
) -> dict[str, Intervention]:
    """Swap each block of ``e`` named in ``values`` (``{factor: (kind, values [N])}``) and the
    residual (when ``e`` has one) between the rows ``zbar`` ``[N, d]`` and their donors
    (:func:`donors`, :func:`other_rows`); ``decode`` maps codes to images, ``classify`` images to
    predicted classes ``[B]``. ``draws`` resamples of the rows make each interval. Deterministic
    for a ``seed``."""
    if zbar.dim() != 2 or len(zbar) < 2:
        raise ShapeError(f"interventions need codes [N >= 2, d], got {tuple(zbar.shape)}")
    n = len(zbar)
    param = next(e.parameters())
    zhat = torch.cat([e(zbar[i : i + batch].to(param))[0].cpu() for i in range(0, n, batch)])

    def predicted(codes: Tensor) -> Tensor:
        found = []
        for i in range(0, len(codes), batch):
            images = decode(e.inverse(codes[i : i + batch].to(param)))
            found.append(classify(images).reshape(-1).cpu())
        return torch.cat(found) if found else torch.zeros(0, dtype=torch.long)

    base = predicted(zhat)
    blocks = e.split(zhat)
    # each block's donors from its own stream, by name: the same whichever factors are measured
    chosen = {name: donors(v, spread(kind, v), _stream(seed, name))
              for name, (kind, v) in values.items()}  # fmt: skip
    if blocks[RESIDUAL].shape[1]:
        chosen[RESIDUAL] = other_rows(n, _stream(seed, RESIDUAL))
    out = {}
    for name, donor in chosen.items():
        if len(donor) != n:
            raise ShapeError(f"factor {name!r} has {len(donor)} values for {n} rows")
        rows = np.flatnonzero(donor >= 0)
        took = torch.from_numpy(donor[rows])
        at = torch.from_numpy(rows)
        swapped = {b: block[at] for b, block in blocks.items()}
        swapped[name] = blocks[name][took]
        found = predicted(e.merge(swapped))
        out[name] = _intervention(found, base[at], base[took], seed=seed, draws=draws)
    return out


def _stream(seed: int, name: str) -> list[int]:
    return [seed, 17, zlib.crc32(name.encode())]


def _intervention(
    found: Tensor, own: Tensor, donor: Tensor, *, seed: int, draws: int
) -> Intervention:
    n = len(found)
    if n == 0:
        return Intervention(math.nan, (math.nan, math.nan), math.nan, math.nan, 0)
    changed = (found != own).double()
    interval = bootstrap_interval(
        lambda index: float(changed[index].mean()), n, draws=draws, seed=seed
    )
    follows, same = (found == donor).double().mean(), (donor == own).double().mean()
    return Intervention(float(changed.mean()), interval, float(follows), float(same), n)


def report_entry(
    pipe: Pipeline,
    e: SemanticFlow | None,
    factors: Sequence[str],
    kinds: Mapping[str, AttributeKind],
    rows: np.ndarray,
    zbar: Tensor,
    nets: Networks,
    *,
    classifier_run: str | None,
    seed: int,
    draws: int,
    say: Callable[[str], None] = lambda _message: None,
) -> dict[str, Any]:
    """The report's ``interventions``: :func:`measure` on the analyzed ``rows`` with the
    pipeline's autoencoder and the classifier of ``nets`` (or of ``classifier_run`` when
    preservation was skipped), or ``available: False`` and the ``reason``."""
    out: dict[str, Any] = {"available": False, "reason": None, "rule": RULE, "rows": len(rows)}
    if e is None:
        return {**out, "reason": "no semantic run: pass --semantic RUN to swap its concepts"}
    classifier = nets.classifier
    if classifier is None and classifier_run is not None:
        try:
            _ = pipe.autoencoder
            classifier = pipe.load_backbone(classifier_run)
        except InnxError as err:
            return {**out, "reason": first_line(err)}
    if classifier is None:
        reason = nets.classifier_reason or nets.reason or "no classifier; pass --classifier RUN"
        return {**out, "reason": reason}
    names = pipe.store.attribute_names
    values = {}
    for name in factors:
        if name in names:
            kind, column = pipe.store.attribute(name, kinds.get(name))
            values[name] = (kind, column[rows])
    found = measure(
        e,
        zbar,
        values,
        pipe.decode,
        lambda images: predict(classifier, images, batch=pipe.batch_size, device=pipe.device),
        seed=seed,
        draws=draws,
        batch=pipe.batch_size,
    )
    cells = {name: _cell(found[name], kind) for name, (kind, _) in values.items()}
    residual = _cell(found[RESIDUAL], None) if RESIDUAL in found else None
    shown = ", ".join(f"{name} {cell.effect:.2f}" for name, cell in found.items())
    say(f"interventions: share of predictions a swap changes: {shown}")
    left_out = [name for name in factors if name not in values]
    return {
        **out,
        "available": True,
        "factors": cells,
        "residual": residual,
        "left_out": {name: "the store has no values of it" for name in left_out},
    }


def _cell(found: Intervention, kind: str | None) -> dict[str, Any]:
    return {
        "effect": {"value": found.effect, "interval": list(found.interval)},
        "follows_donor": found.follows_donor,
        "donor_same": found.donor_same,
        "n": found.n,
        "kind": kind,
    }
