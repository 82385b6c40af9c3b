"""Reads that refuse a damaged chunk: :class:`CheckedDataset`.

Stores carry an HDF5 Fletcher-32 checksum on each chunk; h5py reports a chunk that fails it as
``OSError: Can't synchronously read data (filter returned failure during read)``, naming neither
the dataset nor the rows. A :class:`CheckedDataset` turns that into one line naming the store, the
dataset and the rows of the first chunk that fails (``acts.h5 is damaged: rows 256..511 of
layers/conv2 fail their checksum; …``), through a joined store the shard file too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from innx.errors import StoreError, first_line
from innx.store.layout import damaged


class CheckedDataset:
    """An ``h5py.Dataset`` whose reads refuse a damaged chunk in one line.

    Reading (``dataset[rows]``, ``np.asarray(dataset)``, :meth:`read_direct`) raises a
    :class:`StoreError` that names the store, the dataset and the rows of the first chunk that
    fails its checksum, instead of h5py's ``OSError``; everything else (``shape``, ``dtype``,
    ``attrs``, ``chunks``, ``name`` …) is the h5py dataset's.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "x.h5"
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("x", data=np.arange(6.0), chunks=(2,), fletcher32=True)
    >>> with h5py.File(path, "r") as f:
    ...     CheckedDataset(f["x"], path)[1:3].tolist(), CheckedDataset(f["x"], path).shape
    ([1.0, 2.0], (6,))
    """

    def __init__(self, dataset: h5py.Dataset, path: Path) -> None:
        self.dataset = dataset
        self.path = Path(path)

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "path"):  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.dataset[key]
        except (OSError, RuntimeError) as err:
            raise self._failure(err, key) from err

    def read_direct(self, dest: np.ndarray, source_sel: Any = None, dest_sel: Any = None) -> None:
        """h5py's ``read_direct``, checked."""
        try:
            self.dataset.read_direct(dest, source_sel, dest_sel)
        except (OSError, RuntimeError) as err:
            raise self._failure(err, source_sel) from err

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[...], dtype=dtype)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"<CheckedDataset {self.dataset.name} of {self.path}>"

    def _failure(self, err: BaseException, key: Any) -> StoreError:
        """The error for a read of ``key`` that failed with ``err``: the first block of rows
        (a chunk, in a shard for a joined store) in the rows read that fails on its own."""
        name = self.dataset.name.lstrip("/")
        lo, hi = _row_span(key, self.dataset.shape)
        for start, stop, shard in _blocks(self.dataset, self.path):
            if stop <= lo or start >= hi:
                continue
            try:
                self.dataset[start:stop]
            except (OSError, RuntimeError) as found:
                rows = f"row {start}" if stop - start == 1 else f"rows {start}..{stop - 1}"
                where = f" (in {shard})" if shard else ""
                if fails_checksum(found):
                    return damaged(self.path, f"{rows} of {name}{where} fail their checksum")
                return StoreError(
                    f"{self.path}: {rows} of {name}{where} cannot be read ({first_line(found)}); "
                    "check the disk, or extract it again (innx extract … --overwrite)"
                )
        return StoreError(
            f"{self.path}: {name} cannot be read ({first_line(err)}); "
            "check the disk, or extract it again (innx extract … --overwrite)"
        )


def fails_checksum(err: BaseException) -> bool:
    """Whether h5py's ``err`` is a chunk that failed its checksum (HDF5 reports the Fletcher-32
    filter failing: "filter returned failure during read")."""
    return isinstance(err, (OSError, RuntimeError, ValueError)) and "filter" in str(err)


def _row_span(key: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    """The rows ``[lo, hi)`` that a selection ``key`` of a dataset of ``shape`` reads."""
    n = shape[0] if shape else 1
    first = key[0] if isinstance(key, tuple) and key else key
    if isinstance(first, (int, np.integer)):
        row = int(first) + (n if first < 0 else 0)
        return row, row + 1
    if isinstance(first, slice):
        start, stop, step = first.indices(n)
        return (start, stop) if step > 0 else (stop + 1, start + 1)
    if isinstance(first, (list, np.ndarray)):
        rows = np.asarray(first)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.size:
            rows = np.where(rows < 0, rows + n, rows)
            return int(rows.min()), int(rows.max()) + 1
    return 0, n


def _blocks(dataset: h5py.Dataset, path: Path) -> Iterator[tuple[int, int, str | None]]:
    """Blocks of rows ``(start, stop, shard)`` read together: the chunks along N (of each
    shard file, for a virtual dataset), or all rows for a contiguous dataset."""
    n = dataset.shape[0] if dataset.shape else 1
    if dataset.is_virtual:
        for source in dataset.virtual_sources():
            low, high = source.vspace.get_select_bounds()
            start, stop = int(low[0]), int(high[0]) + 1
            try:
                with h5py.File(path.parent / source.file_name, "r", locking=False) as file:
                    chunks = file[source.dset_name].chunks
            except (OSError, KeyError):
                chunks = None
            step = chunks[0] if chunks else stop - start
            for a in range(start, stop, step):
                yield a, min(a + step, stop), source.file_name
        return
    step = dataset.chunks[0] if dataset.chunks else n
    for a in range(0, n, max(step, 1)):
        yield a, min(a + step, n), None
