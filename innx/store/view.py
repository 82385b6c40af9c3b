"""Reading activation stores (and joins of shards): :class:`ActivationStore`, and its rows as a
torch dataset, in memory or streamed from the file (:mod:`innx.store.torch_rows`).

A torch dataset's item ``i`` is a tuple with one tensor per field, in the order asked for: layers
``[*shape]`` (their stored dtype), ``latents`` ``[d]``, ``attributes`` ``[K]``, ``images`` uint8
``[H, W, C]``, ``labels`` and ``index`` int64 scalars. The format is described in
:mod:`innx.store.activations`.

Every read of a row checks it (:class:`~innx.store.checked.CheckedDataset`): a chunk that fails
its checksum is one line naming the store, the dataset and the rows. Stores written before
checksums read as before.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from innx.data.base import CATEGORICAL, AttributeKind, hash_json
from innx.data.kinds import as_kind
from innx.errors import ConfigError, StoreError, first_line
from innx.h5files import STORE_READ
from innx.store.checked import CheckedDataset
from innx.store.layout import FIELDS, FORMAT, damaged
from innx.store.metadata import read_meta
from innx.store.torch_rows import MemoryDataset, StreamingDataset

FINGERPRINT_ROWS = 64
"""Rows read from each end of every per-row dataset for :meth:`ActivationStore.fingerprint`."""


class ActivationStore:
    """Read a store (or a join of shards): layers, latents, labels, attributes, images.

    Refuses an incomplete store unless ``allow_incomplete`` (its rows with ``done`` false hold
    garbage). Small per-row arrays are read into memory; layers, latents and images are
    ``h5py.Dataset`` views, or arrays through :meth:`load`.

    >>> import tempfile
    >>> from innx.store import LayerSpec, StoreLayout, StoreWriter
    >>> path = Path(tempfile.mkdtemp()) / "acts.h5"
    >>> layout = StoreLayout(n=2, layers=(LayerSpec("fc", "fc", (3,)),), attributes=(),
    ...                      has_labels=True, latent_dim=2)
    >>> with StoreWriter.create(path, layout) as writer:
    ...     writer.write(np.arange(2), index=np.arange(2), labels=np.array([1, 0]),
    ...                  attributes=np.zeros((2, 0)), layers={"fc": np.ones((2, 3))},
    ...                  latents=np.zeros((2, 2)))
    ...     writer.finish()
    >>> with ActivationStore(path) as store:
    ...     store.layer_names, store.labels.tolist(), store.latents.shape
    (['fc'], [1, 0], (2, 2))
    """

    def __init__(self, path: str | Path, *, allow_incomplete: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise StoreError(f"{self.path} does not exist; make it with innx extract")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not an activation store (.h5 file)")
        try:
            self.file = h5py.File(self.path, "r", **STORE_READ)
        except OSError as err:
            raise StoreError(
                f"{self.path} is not a readable HDF5 file ({first_line(err)}); "
                "pass an activation store made by innx extract"
            ) from err
        try:
            meta = read_meta(self.path, self.file)
            self.metadata: dict[str, Any] = {
                "innx_version": self.file.attrs.get("innx_version"),
                "created": self.file.attrs.get("created"),
                **meta.metadata,
            }
            self.layer_names: list[str] = [name for name, _, _ in meta.layers]
            self.attribute_names: list[str] = meta.attribute_names
            self.attribute_kinds: list[str] = meta.attribute_kinds
            self.attribute_categories: list[list[str]] = meta.attribute_categories
            self._check_shards()
            self.n = meta.n
            self.complete = bool(self.file.attrs.get("complete", False))
            self.done_count = self._count_done()
            if not self.complete and not allow_incomplete:
                raise StoreError(
                    f"{self.path} is incomplete ({self.done_count} of {self.n} rows); "
                    "finish it with innx extract … --resume"
                )
        except BaseException:
            self.file.close()
            raise

    def _count_done(self) -> int:
        """Rows written. A store being written may be read while a chunk of ``done`` is half
        rewritten (its checksum then fails): read again before calling it damaged."""
        for attempt in range(3):
            try:
                return int(np.count_nonzero(self.dataset("done")[...]))
            except StoreError:
                if self.complete or attempt == 2:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def _check_shards(self) -> None:
        shards = self.metadata.get("shards") or []
        missing = [s for s in shards if not (self.path.parent / s).is_file()]
        if missing:
            raise StoreError(
                f"{self.path} joins shard files that are missing: {', '.join(missing)}; "
                "keep the shard files next to it"
            )

    def layer(self, name: str) -> CheckedDataset:
        """Layer ``name``: ``[N, *shape]`` dataset."""
        if name not in self.layer_names:
            raise StoreError(
                f"layer {name!r} is not in {self.path}; choose one of: {', '.join(self.layer_names)}"
            )
        return CheckedDataset(self.file["layers"][name], self.path)

    def dataset(self, name: str) -> CheckedDataset:
        """A dataset of the store whose reads are checked (:class:`CheckedDataset`): a field
        (``"latents"``, ``"labels"`` …), a layer name, or an HDF5 path (``"layers/conv2"``,
        ``"done"``, ``"bad"``). Read through this, not ``store.file[...]``."""
        if name not in FIELDS and name not in self.layer_names:
            found = self.file.get(name)
            if isinstance(found, h5py.Dataset):
                return CheckedDataset(found, self.path)
        return CheckedDataset(self.file[self.dataset_name(name)], self.path)

    def layer_info(self) -> list[dict[str, Any]]:
        """One dict per layer: name, module, shape (per sample), dtype, chunks, compression."""
        out = []
        for name in self.layer_names:
            dataset = self.layer(name)
            out.append(
                {
                    "name": name,
                    "module": str(dataset.attrs.get("module", "")),
                    "shape": list(dataset.shape[1:]),
                    "dtype": str(dataset.dtype),
                    "chunks": list(dataset.chunks) if dataset.chunks else None,
                    "compression": dataset.compression,
                }
            )
        return out

    def fingerprint(self) -> str:
        """A sha256 naming this extraction without reading all of it: when it was made, from
        what (dataset, backbone, weights, options), the shapes of what it holds, and the bytes of
        its first and last rows (two stores made in the same second still differ). Runs trained
        on a store record it; a resume refuses a store with another fingerprint."""
        latents = self.latents
        return hash_json(
            {
                "metadata": self.metadata,
                "n": self.n,
                "layers": self.layer_info(),
                "latents": None
                if latents is None
                else [latents.shape[1], *map(str, latents.attrs.values())],
                "sample": self._ends_digest(self._datasets()),
            }
        )

    def latents_fingerprint(self) -> str | None:
        """A sha256 of what ``e`` reads from this store, whatever backbone it holds: the dataset,
        the latents' shape and attributes, and the bytes of their first and last rows with the
        rows' attributes. Two stores extracted from the same dataset with the same autoencoder
        share it, so an ``e`` fitted on one serves both; ``None`` without latents."""
        latents = self.latents
        if latents is None:
            return None
        attributes = self.file.get("attributes")
        read = [latents, *([attributes] if isinstance(attributes, h5py.Dataset) else [])]
        return hash_json(
            {
                "dataset": self.metadata.get("dataset"),
                "n": self.n,
                "latents": [latents.shape[1], *map(str, latents.attrs.values())],
                "attributes": [self.attribute_names, self.attribute_kinds],
                "sample": self._ends_digest(read),
            }
        )

    def _ends_digest(self, datasets: Iterable[CheckedDataset | h5py.Dataset]) -> str:
        """sha256 of the first and last :data:`FINGERPRINT_ROWS` rows of every per-row dataset."""
        sample = hashlib.sha256()
        for dataset in datasets:
            if dataset.shape and dataset.shape[0] == self.n:
                for rows in (slice(0, FINGERPRINT_ROWS), slice(-FINGERPRINT_ROWS, None)):
                    sample.update(np.ascontiguousarray(dataset[rows]).tobytes())
        return sample.hexdigest()

    def _optional(self, name: str) -> CheckedDataset | None:
        dataset = self.file.get(name)
        return CheckedDataset(dataset, self.path) if isinstance(dataset, h5py.Dataset) else None

    @property
    def latents(self) -> CheckedDataset | None:
        """Autoencoder codes ``zbar``: ``float32 [N, d]``, or ``None``."""
        return self._optional("latents")

    @property
    def images(self) -> CheckedDataset | None:
        """Thumbnails: ``uint8 [N, H, W, C]``, or ``None``."""
        return self._optional("images")

    @cached_property
    def labels(self) -> np.ndarray | None:
        """Class labels ``int64 [N]``, or ``None`` for an unlabelled dataset."""
        dataset = self._optional("labels")
        return None if dataset is None else dataset[...]

    @cached_property
    def attributes(self) -> np.ndarray:
        """Attribute values ``float32 [N, K]`` (categorical ones hold category indices)."""
        return np.asarray(self.dataset("attributes")[...])

    def attribute(
        self, name: str, kind: AttributeKind | None = None
    ) -> tuple[AttributeKind, np.ndarray]:
        """Attribute ``name`` as ``(kind, values float64 [N])``: as recorded at extraction, or
        read as ``kind`` when given (:func:`innx.data.kinds.as_kind`: category ``"7"`` → 7.0, or
        whole numbers → category indices over the rows that were read). A stated kind belongs to
        a fit or an analysis, not to the store, so one store serves either reading; a
        :class:`ConfigError` says when the values cannot be read as ``kind``. Values a store
        cannot hold (NaN, or a categorical code that is no category's index) are refused in one
        line naming a row: the store is damaged."""
        if name not in self.attribute_names:
            raise StoreError(
                f"{self.path} has no attribute {name!r}; its attributes are: "
                f"{', '.join(self.attribute_names) or 'none'}"
            )
        k = self.attribute_names.index(name)
        recorded = cast(AttributeKind, self.attribute_kinds[k])  # checked when opened
        values = self.attributes[:, k].astype(np.float64)
        rows = self.index != -1
        categories = self.attribute_categories[k]
        self._check_values(name, values, rows, recorded == CATEGORICAL, len(categories))
        if kind is None:
            return recorded, values
        return kind, as_kind(name, values, recorded, categories, kind, rows=rows)

    def _check_values(
        self, name: str, values: np.ndarray, rows: np.ndarray, categorical: bool, count: int
    ) -> None:
        """Refuse, in ``rows`` (a mask: the rows that hold a sample), a value that is NaN or
        infinite, or, ``categorical``, a code that is not a whole number in ``0..count-1``
        (``count`` 0, no categories recorded: any whole number ``>= 0``)."""
        taken = values[rows]
        bad = ~np.isfinite(taken)
        why = ""
        if categorical and not bad.any():
            bad = (taken != np.round(taken)) | (taken < 0)
            if count:
                bad |= taken >= count
            span = f"0..{count - 1}" if count else "a whole number >= 0"
            why = f", which is not a category index ({span})"
        if bad.any():
            row = int(np.flatnonzero(rows)[np.flatnonzero(bad)[0]])
            value = "NaN" if np.isnan(values[row]) else f"{values[row]:g}"
            raise damaged(self.path, f"attribute {name!r} holds {value} at row {row}{why}")

    @cached_property
    def index(self) -> np.ndarray:
        """Sample index in the source dataset of each row: ``int64 [N]``."""
        return np.asarray(self.dataset("index")[...])

    @cached_property
    def bad(self) -> np.ndarray:
        """Dataset indices skipped as unreadable: ``int64 [M]`` (often empty)."""
        dataset = self._optional("bad")
        return np.zeros(0, np.int64) if dataset is None else np.asarray(dataset[...])

    def dataset_name(self, field_name: str) -> str:
        """The HDF5 path of a field: ``"latents"`` → ``"latents"``, a layer → ``"layers/<name>"``."""
        if field_name in FIELDS:
            if field_name not in self.file:
                raise StoreError(
                    f"{self.path} has no {field_name}; extract again with them to use them"
                )
            return field_name
        return self.layer(field_name).name.lstrip("/")

    def load(self, name: str) -> np.ndarray:
        """A layer, ``"latents"``, ``"images"`` (or another per-row field) fully in memory."""
        return np.asarray(self.dataset(name)[...])

    def torch_dataset(
        self, fields: Sequence[str], *, in_memory: bool | None = None, cap_bytes: int = 2 << 30
    ) -> Dataset[tuple[torch.Tensor, ...]]:
        """A map-style torch dataset whose item ``i`` is one tensor per field, in order.

        ``in_memory=None`` loads everything when the fields take at most ``cap_bytes``, else
        streams: the dataset holds only the path and opens the file lazily in each process
        (DataLoader workers). Fields: ``"latents"``, ``"labels"``, ``"attributes"``,
        ``"images"``, ``"index"`` or a layer name.
        """
        if not fields:
            raise ConfigError("torch_dataset needs at least one field")
        names = [self.dataset_name(f) for f in fields]
        if in_memory is None:
            in_memory = sum(self.file[name].nbytes for name in names) <= cap_bytes
        if in_memory:
            return MemoryDataset([np.asarray(self.dataset(name)[...]) for name in names])
        return StreamingDataset(self.path, names, self.n)

    def _datasets(self) -> Iterator[CheckedDataset]:
        for name in ("index", "labels", "attributes"):
            if name in self.file:
                yield self.dataset(name)
        for name in self.layer_names:
            yield self.layer(name)
        for name in ("latents", "images", "done", "bad"):
            if name in self.file:
                yield self.dataset(name)

    def summary(self) -> dict[str, Any]:
        """JSON-able description: path, format, completeness, metadata, datasets, size on disk."""
        shards = [self.path.parent / s for s in self.metadata.get("shards") or []]
        return {
            "path": str(self.path),
            "format": FORMAT,
            "version": int(self.file.attrs["version"]),
            "complete": self.complete,
            "rows": {"done": self.done_count, "total": self.n},
            "metadata": self.metadata,
            "datasets": [
                {
                    "name": dataset.name.lstrip("/"),
                    "shape": list(dataset.shape),
                    "dtype": str(dataset.dtype),
                    "chunks": list(dataset.chunks) if dataset.chunks else None,
                    "compression": dataset.compression,
                    "virtual": dataset.is_virtual,
                }
                for dataset in self._datasets()
            ],
            "size_bytes": self.path.stat().st_size + sum(s.stat().st_size for s in shards),
        }

    def close(self) -> None:
        """Close the file (idempotent)."""
        self.file.close()

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
