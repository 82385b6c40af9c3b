"""A store's rows as a torch dataset: :class:`MemoryDataset` (arrays in memory) and
:class:`StreamingDataset` (rows read from the file on demand, checked as they are read); made by
:meth:`innx.store.view.ActivationStore.torch_dataset`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from innx.data.base import check_index
from innx.store.checked import CheckedDataset


class MemoryDataset(Dataset[tuple[torch.Tensor, ...]]):
    """Arrays of ``N`` rows held in memory, one per field.

    >>> ds = MemoryDataset([np.zeros((3, 2), np.float32), np.arange(3)])
    >>> len(ds), [t.shape for t in ds[1]]
    (3, [torch.Size([2]), torch.Size([])])
    """

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self.tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        i = check_index(i, len(self))
        return tuple(t[i] for t in self.tensors)


class StreamingDataset(Dataset[tuple[torch.Tensor, ...]]):
    """Rows read from the file on demand; pickles as its path, for DataLoader workers.

    The HDF5 file is opened lazily, once per process (h5py handles cannot cross processes),
    read-only and without HDF5 file locking.
    """

    def __init__(self, path: Path, names: Sequence[str], n: int) -> None:
        self.path = Path(path)
        self.names = list(names)
        self.n = n
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.n

    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r", locking=False, rdcc_nbytes=32 << 20)
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        i = check_index(i, self.n)
        file = self._open()
        return tuple(
            torch.from_numpy(np.asarray(CheckedDataset(file[name], self.path)[i]))
            for name in self.names
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state
