"""HDF5 files read where DataLoader workers may fork: :class:`ProcessFile`, opened on first use
in each process, and :data:`STORE_READ`, how innx opens its stores for reading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import h5py

STORE_READ: dict[str, Any] = {"locking": False, "rdcc_nbytes": 32 << 20}
"""No HDF5 file locks (see :mod:`innx.store.locking`: ``innx info`` reads a store being
written), and a chunk cache of 32 MiB, room for a few chunks of the largest layers."""


class ProcessFile:
    """An HDF5 file opened read-only on first use, once per process.

    An h5py handle must not cross a fork: a process forked from one that had the file open (a
    DataLoader worker) opens its own, and a pickled copy (a spawned worker) carries the path and
    the options only. ``options`` go to :class:`h5py.File`; h5py is imported on first use.

    >>> import tempfile, h5py
    >>> path = Path(tempfile.mkdtemp()) / "f.h5"
    >>> with h5py.File(path, "w") as f:
    ...     f["x"] = [1, 2, 3]
    >>> file = ProcessFile(path, **STORE_READ)
    >>> file.get()["x"][1], file.get() is file.get()
    (np.int64(2), True)
    >>> file.close()
    """

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        self.path = Path(path)
        self.options = options
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def get(self) -> h5py.File:
        """The open file of this process; an :class:`OSError` when it cannot be opened."""
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file = h5py.File(self.path, "r", **self.options)
            self._pid = os.getpid()
        return self._file

    def close(self) -> None:
        """Close this process's handle (a forked copy's handle is its parent's: left alone);
        idempotent, and :meth:`get` opens it again."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}
