"""``kept`` and the ceilings of ``innx analyze``: the named factors read off images and off ``e``.

- :func:`train_reader`: a judge (:class:`~innx.ops.fit.semantic.judge.AttributeJudge`) trained on the
  store's real thumbnails of rows that are not analyzed, and its readings of the analyzed rows'
  images and of their reconstructions ``D(zbar)``.
- :func:`kept`: per factor, how often invariance samples ``D(t⁻¹(v | z))`` still show the
  original's value, as the judge reads them, normalised so that 1 is as often as a plain
  reconstruction and 0 is chance (:mod:`innx.ops.analyze.estimators`), with a bootstrap interval
  over rows. It needs no ``e``.
- :func:`ceilings`: per factor, the share of ``e``'s block for it that lies between the factor's
  values over the store: what a layer that knew the factor and nothing else would explain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from innx.data.base import AttributeKind
from innx.flows import SemanticFlow
from innx.ops.analyze import estimators as est
from innx.ops.analyze.layer import concept_blocks
from innx.ops.fit.semantic.judge import AttributeJudge, as_images, train_judge
from innx.ops.pipeline import Pipeline

CATEGORICAL = "categorical"
CEILING_ROWS = 10_000
"""Store rows (a seeded choice) over which the ceilings are computed."""
CONTINUOUS_BINS = 16
"""Quantile bins of a continuous factor for its ceiling."""


@dataclass(frozen=True)
class Reader:
    """A judge of the named ``factors`` and what it reads on the analyzed rows: the rows' true
    values (``truth``, ``[N]`` each), its readings of their images (``real``) and of their
    reconstructions (``recon``), and the chance level of each categorical factor."""

    judge: AttributeJudge
    factors: list[str]
    kinds: dict[str, str]
    truth: dict[str, Tensor]
    real: dict[str, Tensor]
    recon: dict[str, Tensor]
    chance: dict[str, float]
    trained_on: int

    def hits(self, name: str, readings: Tensor) -> Tensor:
        """Whether ``readings`` ``[N, K]`` of a categorical factor equal the rows' values."""
        return readings == self.truth[name][:, None].long()

    def score(self, name: str, readings: Tensor) -> float:
        """The judge's accuracy on ``readings`` ``[N, K]`` (categorical) or the adjusted R² of the
        readings on the truth (continuous)."""
        if self.kinds[name] == CATEGORICAL:
            return float(self.hits(name, readings).double().mean())
        truth = self.truth[name]
        return est.kept_continuous(truth, readings, readings[:, 0]).samples


def train_reader(
    pipe: Pipeline,
    factors: Sequence[str],
    kinds: Mapping[str, AttributeKind],
    rows: np.ndarray,
    recon_images: Tensor,
    *,
    steps: int,
    max_rows: int,
    seed: int,
    say: Callable[[str], None],
    decoded_too: bool = False,
) -> Reader:
    """Train a judge of ``factors`` on up to ``max_rows`` real thumbnails of store rows other than
    ``rows`` (a seeded choice), and read the ``rows``' images and ``recon_images`` with it. A
    factor is read as ``kinds`` states, else as the store recorded it."""
    store = pipe.store
    assert store.images is not None
    columns = {f: store.attribute(f, kinds.get(f)) for f in factors}
    treated: dict[str, str] = {f: kind for f, (kind, _) in columns.items()}
    values = {f: column for f, (_, column) in columns.items()}
    valid = np.flatnonzero(store.index != -1)
    others = np.setdiff1d(valid, rows)
    if others.size < 2:
        others = valid  # a tiny store: the judge sees the analyzed rows too
    rng = np.random.default_rng([seed, 11])
    taught = np.sort(rng.permutation(others)[:max_rows])
    images = as_images(store.images[taught])
    if decoded_too:  # the judge also learns the autoencoder's rendering of the same rows
        assert store.latents is not None
        decoded = pipe.decode(torch.from_numpy(store.latents[taught]).float())
        images, taught = torch.cat([images, decoded.cpu()]), np.concatenate([taught, taught])
    labels = {f: values[f][taught] for f in factors if treated[f] == CATEGORICAL}
    continuous = {f: values[f][taught] for f in factors if treated[f] != CATEGORICAL}
    what = "real thumbnails and their reconstructions" if decoded_too else "real thumbnails"
    say(f"training the judge of {', '.join(factors)} on {len(taught)} {what}")
    judge = train_judge(
        images, labels, continuous=continuous, seed=seed, steps=steps, device=pipe.device
    )
    real = as_images(store.images[np.unique(rows)])[np.unique(rows, return_inverse=True)[1]]
    truth = {f: torch.from_numpy(values[f][rows].astype(np.float64)) for f in factors}
    chance = {
        f: est.chance_agreement(values[f][valid]) for f in factors if treated[f] == CATEGORICAL
    }
    read = judge.predict(real, batch=pipe.batch_size)
    recon = judge.predict(recon_images, batch=pipe.batch_size)
    return Reader(
        judge,
        list(factors),
        treated,
        truth,
        {f: read[f][:, None] for f in factors},
        {f: recon[f][:, None] for f in factors},
        chance,
        len(taught),
    )


def kept(
    reader: Reader, readings: dict[str, Tensor], *, draws: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Per factor, *kept* of the invariance samples whose judge ``readings`` are ``[N, K]``:
    ``value`` with its bootstrap ``interval`` over rows, the raw ``samples`` and
    ``reconstructions`` scores, ``chance`` and the ``measure`` (accuracy or R²)."""
    out: dict[str, dict[str, Any]] = {}
    for name in reader.factors:
        if reader.kinds[name] == CATEGORICAL:
            hits = reader.hits(name, readings[name])
            recon = reader.hits(name, reader.recon[name])[:, 0]
            chance = reader.chance[name]
            found = est.kept_categorical(hits, recon, chance)
            interval = est.kept_interval(
                est.kept_categorical, hits, recon, chance=chance, draws=draws, seed=seed
            )
        else:
            args = (reader.truth[name], readings[name].double(), reader.recon[name][:, 0].double())
            found = est.kept_continuous(*args)
            interval = est.kept_interval(est.kept_continuous, *args, draws=draws, seed=seed)
        out[name] = {
            "value": found.value,
            "interval": list(interval),
            "samples": found.samples,
            "reconstructions": found.reconstructions,
            "chance": found.chance,
            "measure": found.measure,
        }
    return out


@torch.no_grad()
def ceilings(
    pipe: Pipeline,
    e: SemanticFlow,
    factors: Sequence[str],
    kinds: Mapping[str, AttributeKind],
    *,
    seed: int,
    draws: int,
) -> dict[str, dict[str, Any]]:
    """Per factor of ``e`` that the store has values of: the between-category share of its block
    over up to :data:`CEILING_ROWS` store rows (continuous factors in :data:`CONTINUOUS_BINS`
    quantile bins), with its bootstrap interval. A factor is read as ``kinds`` states, else as
    the store recorded it."""
    store = pipe.store
    names = store.attribute_names
    known = [f for f in factors if f in names]
    if not known:
        return {}
    valid = np.flatnonzero(store.index != -1)
    rows = np.sort(np.random.default_rng([seed, 13]).permutation(valid)[:CEILING_ROWS])
    zbar = torch.from_numpy(np.asarray(store.latents[rows])).float()  # type: ignore[index]
    blocks = concept_blocks(e, zbar[:, None], known, batch=pipe.batch_size, device=pipe.device)
    out = {}
    for name in known:
        kind, column = store.attribute(name, kinds.get(name))
        values = column[rows]
        if kind == CATEGORICAL:
            groups = torch.from_numpy(values.astype(np.int64))
        else:
            groups = est.quantile_groups(values, CONTINUOUS_BINS)
        block = blocks[name][:, 0]
        low, high = est.between_interval(block, groups, draws=draws, seed=seed)
        out[name] = {"value": est.between_share(block, groups), "interval": [low, high]}
    return out
