"""``cifar10`` on batches pickled like the real ones, and refusing pickles that run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from innx.data import open_dataset
from innx.errors import DataError

if TYPE_CHECKING:
    from conftest import Cifar


@pytest.mark.parametrize("cifar", [2, 4, 5], indirect=True, ids=lambda p: f"protocol{p}")
@pytest.mark.parametrize("split", ["train", "test"])
def test_reads_images_labels_and_class_names(cifar: Cifar, split: str) -> None:
    ds = open_dataset(f"cifar10:{cifar.root},split={split}")
    data = np.concatenate(cifar.data[split])
    assert len(ds) == len(data) and ds.classes is not None and ds.classes[3] == "cat"
    for i in range(len(ds)):
        x, label, attributes = ds[i]
        assert np.array_equal(x.numpy().reshape(-1), data[i])  # R, G, B planes in order
        assert label == cifar.labels[split][i] and attributes.tolist() == [label]


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_runs_code_is_refused(cifar: Cifar, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": Exploit(marker)}
    (cifar.folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: refusing to load (posix|os)\.system"):
        open_dataset(f"cifar10:{cifar.root},split=test")
    assert not marker.exists()


def test_missing_files_are_named(cifar: Cifar) -> None:
    (cifar.folder / "data_batch_3").unlink()
    (cifar.folder / "batches.meta").unlink()
    with pytest.raises(DataError) as err:
        open_dataset(f"cifar10:{cifar.root}")
    message = str(err.value)
    assert "cifar-10-batches-py/data_batch_3, " in message and "batches.meta" in message
    assert "data_batch_1" not in message and "cifar-10-python.tar.gz" in message


def test_a_batch_without_data_is_refused(cifar: Cifar) -> None:
    (cifar.folder / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}, protocol=2))
    with pytest.raises(DataError, match=r"test_batch has no uint8 \[N, 3072\] 'data' array"):
        open_dataset(f"cifar10:{cifar.root},split=test")
