"""Batches of store rows for the fits, in memory when they fit, else streamed: one policy for all data.

:class:`StoreBatches` serves the shared training loop (:mod:`innx.train.loop`): batch ``s``
depends only on the seed, ``s``, the rows, the batch size and the chunking, never on what was read
before, so a resumed run sees the same batches. :func:`hold_in_memory` is the one policy that
decides, for images (:mod:`innx.train.images`) and store rows alike, whether a fit's data is held
in memory or streamed. Training and validation rows are cut by :mod:`innx.train.split`.

The order of an epoch. The rows are cut into blocks of ``chunk_rows`` consecutive entries (one
contiguous read each); the epoch visits the blocks in an order permuted from ``(seed, epoch)``;
each run of ``window_chunks`` blocks forms a window whose rows are shuffled from
``(seed, epoch, window)``; the epoch's order is the windows' orders one after the other, and batch
``s`` is positions ``[o*B, (o+1)*B)`` of epoch ``e`` where ``e, o = divmod(s, steps_per_epoch)``
(the remainder of an epoch is dropped). Streaming holds one or two windows in memory (a batch may
straddle two). In memory the whole row set is one window: a full permutation per epoch, through
the same code.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from innx.errors import ConfigError
from innx.h5files import STORE_READ, ProcessFile
from innx.store.checked import CheckedDataset
from innx.store.view import ActivationStore
from innx.train.distributed import Part

MEMORY_CAP: int = 4 << 30
"""Bytes of training data a fit keeps in memory (images as ``uint8`` at the input size, store
arrays as stored, for the rows used); more is streamed from the dataset or the file."""


def hold_in_memory(nbytes: int, choice: bool | None = None, cap: int = MEMORY_CAP) -> bool:
    """The one in-memory-or-stream policy of every fit's data, images and store rows alike:
    ``choice`` when given (``--in-memory`` / ``--stream``), else whether ``nbytes`` fit ``cap``.

    >>> hold_in_memory(3 << 30), hold_in_memory(5 << 30), hold_in_memory(5 << 30, choice=True)
    (True, False, True)
    """
    return choice if choice is not None else nbytes <= cap


MIN_CHUNK_ROWS = 256
"""The default block of a streamed epoch has at least this many rows (or the HDF5 chunk length)."""

Spans = list[tuple[int, int]]


class StoreBatches:
    """Deterministic shuffled batches of some rows of a store, for the shared training loop.

    ``fields`` are ``"latents"``, ``"labels"``, ``"attributes"``, ``"index"``, ``"images"`` or layer
    names; a batch holds one tensor per field, float fields as float32 (layers stored as float16
    too), with the per-sample shapes kept: a spatial layer gives ``[B, C, H, W]``, latents
    ``[B, d]``, labels and index ``int64 [B]``. ``rows`` are sorted store rows (as from
    :func:`split_store_rows`); rows whose ``index`` is ``-1`` (skipped images) are left out.

    ``in_memory=None`` keeps the rows in memory when the fields' stored bytes for them are at most
    ``cap_bytes``, else streams them: the file is opened lazily in each process (the object pickles
    without it), each block is read as one contiguous slice and the wanted rows picked from it, so
    rows far apart (every tenth one, say) read ten times the data. A streamed batch mixes the rows
    of one window of blocks, so it is a random sample on a shuffled store (as ``innx extract``
    writes them) but not on one in a class-sorted dataset's order. Under ``torchrun`` every
    process reads the whole window and keeps its share (``part``) of each batch.
    ``chunk_rows`` defaults to the HDF5 chunk length of the first layer or latents field, at least
    :data:`MIN_CHUNK_ROWS`; a window holds ``window_chunks`` blocks.

    >>> import tempfile
    >>> from innx.store import LayerSpec, StoreLayout, StoreWriter
    >>> path = Path(tempfile.mkdtemp()) / "acts.h5"
    >>> layout = StoreLayout(n=10, layers=(LayerSpec("fc", "fc", (3,)),), attributes=(),
    ...                      has_labels=True, latent_dim=2, dtype="float16")
    >>> with StoreWriter.create(path, layout) as writer:
    ...     writer.write(np.arange(10), index=np.arange(10), labels=np.arange(10) % 2,
    ...                  attributes=np.zeros((10, 0)), layers={"fc": np.ones((10, 3))},
    ...                  latents=np.zeros((10, 2)))
    ...     writer.finish()
    >>> batches = StoreBatches(path, ["fc", "labels"], np.arange(10), batch_size=4, seed=0)
    >>> fc, labels = batches.batch(0)
    >>> batches.steps_per_epoch, fc.shape, fc.dtype, labels.dtype
    (2, torch.Size([4, 3]), torch.float32, torch.int64)
    >>> batches.close()
    """

    def __init__(
        self,
        path: Path,
        fields: Sequence[str],
        rows: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        part: Part = Part(),  # noqa: B008 (frozen, so sharing the default is safe)
        in_memory: bool | None = None,
        cap_bytes: int = MEMORY_CAP,
        chunk_rows: int | None = None,
        window_chunks: int = 16,
    ) -> None:
        if not fields:
            raise ConfigError("StoreBatches needs at least one field")
        if seed < 0:
            raise ConfigError(f"the seed must be non-negative, got {seed}")
        if batch_size < 1:
            raise ConfigError(f"the batch size must be at least 1, got {batch_size}")
        part.share(batch_size)  # a batch that does not split over the processes fails here
        if chunk_rows is not None and chunk_rows < 1:
            raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}")
        if window_chunks < 1:
            raise ConfigError(f"window_chunks must be at least 1, got {window_chunks}")
        self.path = Path(path)
        with ActivationStore(self.path) as store:
            self.names = [store.dataset_name(f) for f in fields]
            datasets = [store.file[name] for name in self.names]
            valid = store.index != -1
            row_bytes = sum(math.prod(d.shape[1:]) * d.dtype.itemsize for d in datasets)
            if chunk_rows is None:
                chunk_rows = max(MIN_CHUNK_ROWS, _chunk_length(datasets))
        self.rows = _check_rows(rows, valid.size)
        self.rows = self.rows[valid[self.rows]]
        if batch_size > self.rows.size:
            raise ConfigError(
                f"batch size {batch_size} is larger than the {self.rows.size} usable rows; "
                f"choose --batch-size {self.rows.size} or less"
            )
        self.fields = list(fields)
        self.batch_size = batch_size
        self.seed = seed
        self.part = part
        self.in_memory = hold_in_memory(row_bytes * self.rows.size, in_memory, cap_bytes)
        self.steps_per_epoch = self.rows.size // batch_size
        self.chunk_rows = chunk_rows
        self.n_blocks = -(-self.rows.size // chunk_rows)
        self.window_chunks = self.n_blocks if self.in_memory else window_chunks
        self._file = ProcessFile(self.path, **STORE_READ)
        self._memory: tuple[torch.Tensor, ...] | None = None
        self._windows: OrderedDict[tuple[int, int], tuple[tuple[torch.Tensor, ...], torch.Tensor]]
        self._windows = OrderedDict()
        self._plan: tuple[int, np.ndarray, np.ndarray] | None = None

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """This process's share of the global batch of ``step``: one tensor per field."""
        return self._batch(step, self.part.share(self.batch_size))

    def global_batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """The whole batch of ``step`` (every process's share), the same in every process."""
        return self._batch(step, slice(0, self.batch_size))

    def _batch(self, step: int, share: slice) -> tuple[torch.Tensor, ...]:
        if step < 0:
            raise ConfigError(f"steps count from 0, got {step}")
        epoch, offset = divmod(step, self.steps_per_epoch)
        start, stop = offset * self.batch_size + share.start, offset * self.batch_size + share.stop
        blocks, bounds = self._epoch(epoch)
        window = int(np.searchsorted(bounds, start, side="right")) - 1
        pieces = []
        while start < stop:
            data, order = self._window(epoch, window, blocks)
            end = min(stop, int(bounds[window + 1]))
            picked = order[start - bounds[window] : end - bounds[window]]
            pieces.append([t.index_select(0, picked) for t in data])
            start, window = end, window + 1
        columns = (
            pieces[0] if len(pieces) == 1 else [torch.cat(c) for c in zip(*pieces, strict=True)]
        )
        return tuple(_output(t) for t in columns)

    def batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """The batches of steps ``start … stop-1``, in order."""
        for step in range(start, stop):
            yield self.batch(step)

    def all(self, max_rows: int | None = None) -> tuple[torch.Tensor, ...]:
        """The rows in order (the first ``max_rows`` of them), one tensor per field, for
        validation; read contiguously. Not split by ``part``."""
        count = self.rows.size if max_rows is None else min(max_rows, self.rows.size)
        if count < 1:
            raise ConfigError(f"max_rows must be at least 1, got {max_rows}")
        if self.in_memory:
            return tuple(_output(t[:count].clone()) for t in self._load())
        return tuple(_output(t) for t in self._read(self._spans(0, count)))

    def close(self) -> None:
        """Close the file and drop what is held in memory (idempotent; reopens when used again)."""
        self._file.close()
        self._memory, self._plan = None, None
        self._windows.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_memory=None, _plan=None, _windows=OrderedDict())
        return state

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's block order and its windows' bounds (positions in the epoch's order)."""
        if self._plan is None or self._plan[0] != epoch:
            blocks = np.random.default_rng([self.seed, 0, epoch]).permutation(self.n_blocks)
            sizes = np.minimum((blocks + 1) * self.chunk_rows, self.rows.size)
            sizes -= blocks * self.chunk_rows
            cut = np.arange(0, self.n_blocks, self.window_chunks)
            bounds = np.concatenate([[0], np.cumsum(np.add.reduceat(sizes, cut))])
            self._plan = (epoch, blocks, bounds)
        return self._plan[1], self._plan[2]

    def _window(
        self, epoch: int, window: int, blocks: np.ndarray
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Data holding the window's rows, and the shuffled order of the window in that data."""
        key = (epoch, window)
        if key not in self._windows:
            mine = blocks[window * self.window_chunks : (window + 1) * self.window_chunks]
            spans = [
                (b * self.chunk_rows, min((b + 1) * self.chunk_rows, self.rows.size)) for b in mine
            ]
            size = sum(stop - start for start, stop in spans)
            rng = np.random.default_rng([self.seed, 1, epoch, window])
            shuffle = torch.from_numpy(rng.permutation(size))
            if self.in_memory:
                positions = np.concatenate([np.arange(start, stop) for start, stop in spans])
                self._windows[key] = (self._load(), torch.from_numpy(positions)[shuffle])
            else:
                self._windows[key] = (self._read(spans), shuffle)
            while len(self._windows) > 2:  # the current window and the next
                self._windows.popitem(last=False)
        return self._windows[key]

    def _load(self) -> tuple[torch.Tensor, ...]:
        if self._memory is None:
            self._memory = self._read(self._spans(0, self.rows.size))
        return self._memory

    def _spans(self, start: int, stop: int) -> Spans:
        return [(a, min(a + self.chunk_rows, stop)) for a in range(start, stop, self.chunk_rows)]

    def _read(self, spans: Spans) -> tuple[torch.Tensor, ...]:
        """The stored values of ``rows[a:b]`` for each span, one after the other, in their stored
        dtype; each span is one contiguous read of the file."""
        file = self._file.get()
        size = sum(stop - start for start, stop in spans)
        out = []
        for name in self.names:
            dataset = CheckedDataset(file[name], self.path)  # a damaged chunk: one line
            array = np.empty((size, *dataset.shape[1:]), dataset.dtype)
            at = 0
            for start, stop in spans:
                first, last = int(self.rows[start]), int(self.rows[stop - 1])
                if array.size == 0:
                    pass
                elif last - first == stop - start - 1:  # no gaps: straight into place
                    dataset.read_direct(
                        array, np.s_[first : last + 1], np.s_[at : at + stop - start]
                    )
                else:
                    array[at : at + stop - start] = dataset[first : last + 1][
                        self.rows[start:stop] - first
                    ]
                at += stop - start
            out.append(torch.from_numpy(array))
        return tuple(out)


def _chunk_length(datasets: Sequence[h5py.Dataset]) -> int:
    """The chunk length along N of the first layer or latents dataset (0 when not chunked)."""
    for dataset in datasets:
        if dataset.name.startswith(("/layers/", "/latents")):
            return int(dataset.chunks[0]) if dataset.chunks else 0
    return 0


def _check_rows(rows: np.ndarray, n: int) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
        raise ConfigError(f"rows must be a non-empty 1-D integer array, got shape {rows.shape}")
    rows = rows.astype(np.int64)
    if rows[0] < 0 or rows[-1] >= n or np.any(np.diff(rows) <= 0):
        raise ConfigError(
            f"rows must be increasing store rows within 0..{n - 1}; pass np.unique(rows)"
        )
    return rows


def _output(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor
