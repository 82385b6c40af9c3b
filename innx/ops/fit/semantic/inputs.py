"""What the semantic fit reads: one store field as flat vectors, and batches of attribute pairs.

:class:`InputTable` holds the field the INN ``e`` is fitted to (``latents`` by default, or a
layer, flattened) in memory when its stored bytes fit :data:`~innx.train.batches.
MEMORY_CAP`; above the cap each batch's rows are read from the file (one sorted read per
batch). :class:`PairBatches` turns a :class:`~innx.data.pairs.PairSampler` (a fresh draw per step)
or fixed :class:`~innx.data.pairs.Pairs` (a seeded permutation per epoch) into the shared loop's
batches ``(za, zb, factor)``; batch ``s`` depends only on the seed and ``s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from innx.data.pairs import FactorSpec, Pairs, PairSampler, read_pairs_csv
from innx.errors import ConfigError
from innx.flows import estimate_factor_sizes
from innx.flows.semantic import RESIDUAL
from innx.h5files import STORE_READ, ProcessFile
from innx.ops.fit.semantic.options import SemanticFit, input_field
from innx.store.checked import CheckedDataset
from innx.store.view import ActivationStore
from innx.train.batches import MEMORY_CAP, hold_in_memory
from innx.train.distributed import SINGLE, Part
from innx.train.split import split_store_rows

VALIDATION_PAIRS = 4096
PAIRS_PER_VALIDATION_ROW = 8  # a small store gets fewer held-out pairs: more would repeat rows
ESTIMATE_PAIRS = 8192
ESTIMATE_STEP = 1 << 40
"""The sampler's step for the pairs that estimate block sizes: one no training reaches."""

PairBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``za`` and ``zb`` float32 ``[B, d]`` and the factor labels int64 ``[B]``."""


class InputTable:
    """Rows of one store field as float32 vectors ``[d]`` (a layer's feature map flattened)."""

    def __init__(
        self,
        path: Path,
        field: str,
        *,
        in_memory: bool | None = None,
        cap_bytes: int = MEMORY_CAP,
    ) -> None:
        self.path = Path(path)
        with ActivationStore(self.path) as store:
            self.name = store.dataset_name(field)
            dataset = store.dataset(self.name)
            self.n = int(dataset.shape[0])
            self.dim = math.prod(dataset.shape[1:])
            stored = self.n * self.dim * dataset.dtype.itemsize
            self.in_memory = hold_in_memory(stored, in_memory, cap_bytes)
            self._memory = self._flat(dataset[...]) if self.in_memory else None
        self._file = ProcessFile(self.path, **STORE_READ)

    def take(self, rows: np.ndarray) -> torch.Tensor:
        """The vectors of store ``rows`` (any order, repeats allowed): float32 ``[len(rows), d]``."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._memory is not None:
            return self._memory[torch.from_numpy(rows)]
        unique, where = np.unique(rows, return_inverse=True)
        vectors = CheckedDataset(self._file.get()[self.name], self.path)[unique]
        return self._flat(vectors)[torch.from_numpy(where.ravel())]

    def _flat(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).float().reshape(len(array), self.dim)

    def close(self) -> None:
        self._file.close()


class PairBatches:
    """Global batches of ``batch_size`` pairs per step, each process taking its ``part``."""

    def __init__(
        self,
        table: InputTable,
        source: PairSampler | Pairs,
        batch_size: int,
        seed: int,
        *,
        part: Part = SINGLE,
    ) -> None:
        part.share(batch_size)  # a batch that does not split over the processes fails here
        if isinstance(source, Pairs) and batch_size > len(source):
            raise ConfigError(
                f"batch size {batch_size} is larger than the {len(source)} training pairs; "
                f"choose --batch-size {len(source)} or less"
            )
        self.table, self.source = table, source
        self.batch_size, self.seed, self.part = batch_size, seed, part
        rows = len(source.rows) if isinstance(source, PairSampler) else len(source)
        self.steps_per_epoch = max(1, rows // batch_size)

    def pairs(self, step: int) -> Pairs:
        """The global batch of pairs of ``step``."""
        if isinstance(self.source, PairSampler):
            return self.source.sample(step, self.batch_size)
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.source))
        return self.source.take(order[offset * self.batch_size : (offset + 1) * self.batch_size])

    def global_batch(self, step: int) -> PairBatch:
        return self.load(self.pairs(step))

    def batch(self, step: int) -> PairBatch:
        share = self.part.share(self.batch_size)
        return self.load(self.pairs(step).take(np.arange(share.start, share.stop)))

    def batches(self, start: int, stop: int) -> Iterator[PairBatch]:
        for step in range(start, stop):
            yield self.batch(step)

    def load(self, pairs: Pairs) -> PairBatch:
        """The vectors of both rows of each pair, and the labels."""
        both = self.table.take(np.concatenate([pairs.a, pairs.b]))
        return both[: len(pairs)], both[len(pairs) :], torch.from_numpy(pairs.factor)


@dataclass
class SemanticInputs:
    """Everything the fit reads from the store before training: the input vectors, the row
    split, the training pairs (a sampler, or fixed pairs from a CSV), held-out pairs, and the
    named factors' attribute values."""

    table: InputTable
    fingerprint: str
    train_rows: np.ndarray
    val_rows: np.ndarray
    train: PairSampler | Pairs
    val: Pairs
    attributes: dict[str, tuple[str, np.ndarray]]  # name → (kind, values per store row)
    latents_fingerprint: str | None = None  # on latents: what other stores must share to use e

    def close(self) -> None:
        self.table.close()


def parse_dims(dims: tuple[int, ...], names: list[str], dim: int) -> dict[str, int]:
    """Block sizes from ``--dims``: one per factor (the residual gets the rest) or one more for
    the residual (then they must add up to ``dim``)."""
    if len(dims) not in (len(names), len(names) + 1):
        raise ConfigError(
            f"--dims has {len(dims)} sizes for {len(names)} factors; give {len(names)} "
            f"(the residual gets the rest) or {len(names) + 1} (the residual last)"
        )
    if any(d < 1 for d in dims[: len(names)]) or (len(dims) > len(names) and dims[-1] < 0):
        raise ConfigError(f"--dims must be positive sizes, got {','.join(map(str, dims))}")
    total = sum(dims)
    if len(dims) == len(names) and total > dim:
        raise ConfigError(
            f"--dims add up to {total}, more than the {dim} dimensions of the input; make the "
            f"factor sizes add up to at most {dim}"
        )
    if len(dims) == len(names) + 1 and total != dim:
        raise ConfigError(
            f"--dims add up to {total}, but factors and residual must add up to {dim} "
            "(the input's size)"
        )
    residual = dim - sum(dims[: len(names)])
    return {**dict(zip(names, dims, strict=False)), RESIDUAL: residual}


def block_sizes(
    fit: SemanticFit, inputs: SemanticInputs, say: Callable[[str], None]
) -> dict[str, int]:
    """The block sizes from ``--dims``, or estimated from pairs (and said)."""
    if fit.dims is not None:
        return parse_dims(fit.dims, fit.names, inputs.table.dim)
    sizes = estimate_sizes(fit, inputs)
    say(f"block sizes estimated from pairs: {sizes}")
    return sizes


def estimate_sizes(fit: SemanticFit, inputs: SemanticInputs) -> dict[str, int]:
    """Block sizes estimated from up to :data:`ESTIMATE_PAIRS` positive training pairs."""
    if isinstance(inputs.train, PairSampler):
        pairs = inputs.train.sample(ESTIMATE_STEP, ESTIMATE_PAIRS)
    else:
        pairs = inputs.train
    positive = pairs.take(np.flatnonzero(pairs.factor > 0)[:ESTIMATE_PAIRS])
    za = inputs.table.take(positive.a)
    zb = inputs.table.take(positive.b)
    if not (torch.isfinite(za).all() and torch.isfinite(zb).all()):
        raise ConfigError(
            f"{fit.store}: the {fit.on} of some rows are not finite (NaN or inf); "
            "re-extract the store (innx extract --fail-on-nonfinite finds them)"
        )
    try:
        return estimate_factor_sizes(za, zb, torch.from_numpy(positive.factor), fit.names)
    except ValueError as err:
        raise ConfigError(f"cannot estimate the block sizes: {err}; pass --dims instead") from err


def factor_attributes(
    store: ActivationStore, specs: list[FactorSpec]
) -> dict[str, tuple[str, np.ndarray]]:
    """Per factor the store has values of: the kind it is treated as and its values per store
    row. The kind is the one the store recorded (at extraction, from the dataset) unless the
    spec states another (``digit:categorical``, ``age:continuous``; ``bins=``/``tol=`` ask for a
    continuous factor): the override is applied here, at fit time, and recorded with the run
    (``fit.factors`` and the manifest's ``kinds``), not in the store, so that one store serves
    fits that read a factor either way without extracting again. Pairs, probes (accuracy or
    R²), swaps and ``innx analyze --semantic RUN`` all follow it."""
    known = store.attribute_names
    return {s.name: store.attribute(s.name, s.stated_kind) for s in specs if s.name in known}


def read_inputs(fit: SemanticFit) -> SemanticInputs:
    """Check the store against ``fit`` (one-line errors) and read what training needs."""
    field = input_field(fit.on)
    with ActivationStore(fit.store) as store:
        if field == "latents" and store.latents is None:
            raise ConfigError(
                f"{store.path} has no latents (autoencoder codes); run innx extract again with "
                "--autoencoder RUN, or fit e to a layer with --on layer:NAME"
            )
        if field != "latents":
            store.layer(field)  # a missing layer names the ones there are
        fingerprint = store.fingerprint()
        latents = store.latents_fingerprint() if field == "latents" else None
        index = store.index
        known = store.attribute_names
        missing = [name for name in fit.names if name not in known]
        if missing and fit.pairs is None:
            raise ConfigError(
                f"{fit.store} has no attribute {', '.join(map(repr, missing))}; its attributes "
                f"are: {', '.join(known) or 'none'} (or give explicit pairs with --pairs)"
            )
        attributes = factor_attributes(store, fit.specs)
    train_rows, val_rows = split_store_rows(index, fit.val_fraction, fit.seed)
    table = InputTable(Path(fit.store), field, in_memory=fit.in_memory)
    if fit.pairs is not None:
        pairs = read_pairs_csv(fit.pairs, fit.names, len(index), bad=np.flatnonzero(index == -1))
        order = np.random.default_rng([fit.seed, 1]).permutation(len(pairs))
        held = max(1, round(fit.val_fraction * len(pairs)))
        train: PairSampler | Pairs = pairs.take(np.sort(order[held:]))
        val = pairs.take(np.sort(order[:held]))
    else:
        specs = fit.specs
        kind_list: list[str] = [attributes[s.name][0] for s in specs]
        columns = np.stack([attributes[s.name][1] for s in specs], axis=1)
        train = PairSampler(
            train_rows, columns[train_rows], kind_list, specs, negative=fit.negative, seed=fit.seed
        )
        val_sampler = PairSampler(
            val_rows, columns[val_rows], kind_list, specs, negative=fit.negative, seed=fit.seed + 1
        )
        val = val_sampler.sample(0, min(VALIDATION_PAIRS, PAIRS_PER_VALIDATION_ROW * len(val_rows)))
    return SemanticInputs(table, fingerprint, train_rows, val_rows, train, val, attributes, latents)
