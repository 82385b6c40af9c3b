"""HDF5 activation stores (format ``innx.activations`` version 1): the crash-safe writer.

One file per extraction, N rows, row ``i`` being one sample of the source dataset::

    /               attrs: format, version, innx_version, created, complete (bool), and as JSON
                    strings: dataset, backbone, preprocessing, extract, versions (and shards)
    /index          int64 [N]                 row → sample index in the source dataset
    /labels         int64 [N]                 when the dataset has labels
    /attributes     float32 [N, K]            attrs: names, kinds, categories (JSON)
    /layers/<name>  float32|float16 [N, *shape]   attrs: module, shape
    /latents        float32 [N, d]            attrs: autoencoder (run id)
    /images         uint8 [N, H, W, C]        thumbnails
    /done           bool [N]                  rows written
    /bad            int64 [M]                 dataset indices skipped as unreadable

Crash safety. :class:`StoreWriter` creates every dataset at full size up front, uncompressed,
allocated at creation (``ALLOC_TIME_EARLY``) and without timestamps, and closes the new file.
After that a write only puts raw bytes into space that is already allocated, so no HDF5 metadata
changes until :meth:`StoreWriter.finish`. Each
:meth:`StoreWriter.write` flushes its data before it marks its rows in ``/done`` (and flushes
again), so a process killed at any moment leaves a readable file whose ``done`` rows are right;
``--resume`` writes the others. Compressed chunks cannot be written in place (their size is known
only once written, and each write moves HDF5 metadata; a kill then damages the file), so a
compressed store is written uncompressed and compressed by :meth:`StoreWriter.finish` into a
temporary file that replaces it atomically. Data reach the operating system at each flush (enough
for a killed process); only the finished file is fsynced.

Integrity. Every chunked dataset carries an HDF5 Fletcher-32 checksum per chunk (readers refuse
a chunk that fails it, :class:`~innx.store.checked.CheckedDataset`). The checksum has a fixed
size, so a chunk rewritten in place keeps its offset and size. A new store is created sparse and
its space reserved (:mod:`innx.store.space`), so a store that does not fit fails at creation, and
is removed, and no row written later can meet a full disk.

Failed writes. A full disk, a read-only target or a failing device is a
:class:`~innx.writes.WriteError` in one line, raised by the call that met it (h5py reports it as
an ``OSError``, ``RuntimeError`` or ``ValueError``; the writer keeps its datasets open and HDF5's
chunk cache off, so no failure is left for a close in a finaliser to swallow). Rows are marked
``done`` only after their data is written, the store is marked complete only once everything
is, and a failure after creation leaves the store resumable (``--resume``), with no temporary
file left behind.

One writer at a time: see :mod:`innx.store.locking`. The layout is :mod:`innx.store.layout`, its
HDF5 datasets :mod:`innx.store.datasets`, joining shards :mod:`innx.store.shards`, reading
:mod:`innx.store.view`; readers open files with HDF5 locking off, so ``innx info`` works on a
store that is being written.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from innx.errors import StoreError, first_line
from innx.store.checked import CheckedDataset, fails_checksum
from innx.store.datasets import create_datasets
from innx.store.layout import StoreLayout, damaged
from innx.store.locking import WriteLock
from innx.store.metadata import file_signature, layout_differences, layout_signature
from innx.store.space import check_room, new_store_file
from innx.writes import is_write_failure, write_errno, write_failed, writing

RESUME = "run again with --resume"
"""How to go on after a write failed once the store exists."""


class StoreWriter:
    """Writes rows into a store, in any order of batches, and marks it complete at the end.

    >>> import tempfile
    >>> from innx.store import LayerSpec
    >>> path = Path(tempfile.mkdtemp()) / "acts.h5"
    >>> layout = StoreLayout(n=4, layers=(LayerSpec("conv1", "features.0", (3,)),),
    ...                      attributes=(), has_labels=False)
    >>> with StoreWriter.create(path, layout) as writer:
    ...     writer.write(np.arange(2, 4), index=np.array([7, 8]), labels=None,
    ...                  attributes=np.zeros((2, 0)), layers={"conv1": np.ones((2, 3))})
    ...     writer.pending().tolist()
    [0, 1]
    >>> with StoreWriter.resume(path, layout) as writer:
    ...     writer.write(np.arange(0, 2), index=np.array([5, 6]), labels=None,
    ...                  attributes=np.zeros((2, 0)), layers={"conv1": np.zeros((2, 3))})
    ...     writer.finish()
    >>> from innx.store import ActivationStore
    >>> with ActivationStore(path) as store:
    ...     store.index.tolist(), float(store.load("conv1").sum())
    ([5, 6, 7, 8], 6.0)
    """

    def __init__(self, path: Path, layout: StoreLayout, file: h5py.File, lock: WriteLock) -> None:
        """Use :meth:`create` or :meth:`resume`."""
        self.path = path
        self.layout = layout
        self._file: h5py.File | None = file
        self._lock = lock
        self._failed = False
        # Open once and kept: a temporary h5py handle flushes when it is collected, where h5py
        # swallows the error of a failed write.
        names = [name for name, _, _ in layout.datasets()]
        self._datasets = {name: file[name] for name in [*names, "bad"]}

    @classmethod
    def create(
        cls, path: str | Path, layout: StoreLayout, *, overwrite: bool = False
    ) -> StoreWriter:
        """A new store at ``path`` with every dataset created at full size, ``complete=False``;
        refused at once, and removed, when it does not fit on its disk."""
        path = Path(path)
        if not path.parent.is_dir():
            raise StoreError(f"folder {path.parent} does not exist; create it first")
        with writing(path, "run again"):
            lock = WriteLock(path)
        try:
            if path.is_dir():
                raise StoreError(f"{path} is a folder; pass a file name such as {path}/acts.h5")
            if path.exists() and not overwrite:
                raise StoreError(
                    f"{path} exists; pass --resume to finish it or --overwrite to replace it"
                )
            check_room(path, layout)
            file = new_store_file(path, layout, lambda new: create_datasets(new, layout, "none"))
        except BaseException:
            lock.release()
            raise
        return cls(path, layout, file, lock)

    @classmethod
    def resume(cls, path: str | Path, layout: StoreLayout) -> StoreWriter:
        """Reopen an unfinished store written with the same ``layout`` to write its pending rows."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path} does not exist, so there is nothing to resume; drop --resume")
        with writing(path, RESUME):
            lock = WriteLock(path)
        try:
            try:
                file = h5py.File(path, "r+", locking=False, rdcc_nbytes=0)
            except OSError as err:
                if write_errno(err) in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise write_failed(err, path, RESUME) from err
                raise StoreError(
                    f"{path} is damaged ({first_line(err)}); pass --overwrite to start over"
                ) from err
            try:
                stored = file_signature(path, file)  # checks the format and metadata
                if "shards" in file.attrs:
                    raise StoreError(f"{path} joins shard files; resume each shard instead")
                if bool(file.attrs.get("complete", False)):
                    raise StoreError(
                        f"{path} is complete; nothing to resume; pass --overwrite to extract again"
                    )
                differences = layout_differences(stored, layout_signature(layout))
                if differences:
                    raise StoreError(
                        f"cannot resume {path}: it was written for a different extraction "
                        f"({'; '.join(differences)}); pass --overwrite to start over"
                    )
            except BaseException:
                _close_quietly(file)
                raise
        except BaseException:
            lock.release()
            raise
        return cls(path, layout, file, lock)

    @property
    def file(self) -> h5py.File:
        if self._file is None:
            raise StoreError(f"the writer of {self.path} is closed")
        return self._file

    def pending(self) -> np.ndarray:
        """Rows not written yet: sorted ``int64 [P]``."""
        done = self._read("done")
        return np.flatnonzero(~done).astype(np.int64)

    def _read(self, name: str, rows: slice = slice(None)) -> np.ndarray:
        """Rows of dataset ``name``, checked against their checksums."""
        if self._file is None:
            raise StoreError(f"the writer of {self.path} is closed")
        return np.asarray(CheckedDataset(self._datasets[name], self.path)[rows])

    def write(
        self,
        rows: np.ndarray,
        *,
        index: np.ndarray,
        labels: np.ndarray | None,
        attributes: np.ndarray,
        layers: dict[str, np.ndarray],
        latents: np.ndarray | None = None,
        images: np.ndarray | None = None,
    ) -> None:
        """Write a batch of ``B`` contiguous rows ``start..stop-1`` and mark them done.

        ``index`` int ``[B]``, ``labels`` int ``[B]`` (``None`` without labels), ``attributes``
        ``[B, K]``, ``layers[name]`` ``[B, *shape]`` for every layer, ``latents`` ``[B, d]``,
        ``images`` uint8 ``[B, H, W, C]``; values are cast to the stored dtypes. Everything is
        checked before anything is written.
        """
        file = self.file
        if self._failed:
            raise StoreError(f"a write to {self.path} failed; close the writer and {RESUME}")
        start, stop = self._check_rows(rows)
        given: dict[str, Any] = {"index": index, "attributes": attributes}
        optional = {"labels": labels, "latents": latents, "images": images}
        unknown = sorted(set(layers) - {layer.name for layer in self.layout.layers})
        if unknown:
            names = ", ".join(layer.name for layer in self.layout.layers)
            raise StoreError(f"layers {', '.join(unknown)} are not in this store; it has {names}")
        given.update({f"layers/{name}": value for name, value in layers.items()})
        values: list[tuple[str, np.ndarray]] = []
        for name, shape, dtype in self.layout.datasets():
            if name == "done":
                continue
            value = given.get(name, optional.get(name))
            if value is None:
                raise StoreError(f"write() needs {name} (the store was created with it)")
            values.append((name, _cast(name, value, (stop - start, *shape[1:]), dtype)))
        for name, value in optional.items():
            if value is not None and name not in self._datasets:
                raise StoreError(f"this store has no {name}; pass {name}=None")
        with self._writing(f"rows {start}..{stop - 1}"):
            for name, value in values:
                self._datasets[name][start:stop] = value
            file.flush()  # the data are written before their rows are marked done
            self._datasets["done"][start:stop] = True
            file.flush()

    @contextmanager
    def _writing(self, rows: str) -> Iterator[None]:
        """Turn a failed write inside the block into one line (a :class:`WriteError`, or a
        damaged-store error for a chunk that failed its checksum when HDF5 read it back to
        write part of it); the writer then closes without writing more."""
        try:
            yield
        except BaseException as err:
            self._failed = True
            if fails_checksum(err):
                raise damaged(self.path, f"{rows} touch a chunk that fails its checksum") from err
            if is_write_failure(err):
                raise write_failed(err, self.path, RESUME) from err
            raise

    def _check_rows(self, rows: np.ndarray) -> tuple[int, int]:
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
            raise StoreError(f"rows must be a non-empty 1-D integer array, got {rows.shape}")
        start = int(rows[0])
        stop = start + rows.size
        if start < 0 or stop > self.layout.n or not np.array_equal(rows, np.arange(start, stop)):
            raise StoreError(
                f"rows must be contiguous and ascending within 0..{self.layout.n - 1}, "
                f"got {rows[0]}..{rows[-1]} ({rows.size} rows)"
            )
        return start, stop

    def record_bad(self, indices: Sequence[int]) -> None:
        """Append dataset indices that were skipped as unreadable to ``/bad``."""
        values = np.asarray(indices, dtype=np.int64).ravel()
        if values.size == 0:
            return
        with self._writing("the list of unreadable images"):
            bad = self._datasets["bad"]
            old = bad.shape[0]
            bad.resize((old + values.size,))
            bad[old:] = values
            self.file.flush()

    def finish(self) -> None:
        """Mark the store complete (every row must be written), close it, release the lock."""
        file = self.file
        missing = self.layout.n - int(np.count_nonzero(self._read("done")))
        if missing:
            raise StoreError(
                f"cannot finish {self.path}: {missing} of {self.layout.n} rows are not written "
                "yet; write pending() rows first"
            )
        if self.layout.compression == "none":
            with self._writing("the mark complete"):
                try:
                    file.attrs.modify("complete", True)
                    file.flush()
                except BaseException:
                    with suppress(Exception):  # never left set in a store that failed
                        file.attrs.modify("complete", False)
                    raise
        else:
            self._compress()
        self.close()

    def _compress(self) -> None:
        """Copy the finished rows into a compressed file and put it in place of this one."""
        file = self.file
        tmp = self.path.with_name(f".{self.path.name}.finishing")
        try:
            with self._writing("the compressed copy"):
                out = h5py.File(tmp, "w", locking=False, rdcc_nbytes=0)
                try:
                    create_datasets(out, self.layout, self.layout.compression)
                    for key, value in file.attrs.items():
                        out.attrs[key] = value
                    out.attrs["complete"] = True
                    for name, shape, dtype in self.layout.datasets():
                        step = 16 * self.layout.chunk_rows(shape[1:], dtype)
                        target = out[name]
                        for start in range(0, shape[0], step):
                            rows = slice(start, start + step)
                            target[rows] = self._read(name, rows)
                    out["bad"].resize(self._datasets["bad"].shape)
                    out["bad"][...] = self._read("bad")
                    out.close()
                except BaseException:
                    _close_quietly(out)
                    raise
                with open(tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
                file.close()
                os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Close without finishing (the store stays resumable); idempotent."""
        try:
            if self._file is not None:
                file, self._file = self._file, None
                self._datasets = {}
                if self._failed:
                    _close_quietly(file)
                else:
                    with self._writing("the store"):
                        file.close()
        finally:
            self._lock.release()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._failed = True  # close quietly: the error on its way out is the one to tell
        self.close()


def _cast(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise StoreError(
            f"/{name} expects a batch of shape {shape}, got {array.shape}; "
            "check the layer shapes the store was created with"
        )
    return array.astype(dtype, copy=False)


def _close_quietly(file: h5py.File) -> None:
    """Close ``file`` after a failure, which is the error to report, not this close's."""
    with suppress(Exception):
        file.close()
