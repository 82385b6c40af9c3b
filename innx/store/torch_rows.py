"""A store's rows as a torch dataset: :class:`MemoryDataset` (arrays in memory) and
:class:`StreamingDataset` (rows read from the file on demand, checked as they are read); made by
:meth:`innx.store.view.ActivationStore.torch_dataset`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from innx.data.base import check_index
from innx.h5files import STORE_READ, ProcessFile
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

    The HDF5 file is opened on first use in each process (:class:`~innx.h5files.ProcessFile`).
    """

    def __init__(self, path: Path, names: Sequence[str], n: int) -> None:
        self.path = Path(path)
        self.names = list(names)
        self.n = n
        self._file = ProcessFile(self.path, **STORE_READ)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        i = check_index(i, self.n)
        file = self._file.get()
        return tuple(
            torch.from_numpy(np.asarray(CheckedDataset(file[name], self.path)[i]))
            for name in self.names
        )
