"""``mnist`` and ``colormnist`` on IDX files, gzipped (train) and raw (test)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from innx.data import open_dataset
from innx.errors import ConfigError, DataError

if TYPE_CHECKING:
    from conftest import Mnist


@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_reads_images_and_labels(mnist: Mnist, split: str) -> None:
    ds = open_dataset(f"mnist:{mnist.root},split={split}")
    assert len(ds) == len(mnist.labels[split]) and ds.channels == 1 and ds.image_size == (28, 28)
    assert ds.classes == tuple("0123456789")
    for i in range(len(ds)):
        x, label, attributes = ds[i]
        assert np.array_equal(x[0].numpy(), mnist.images[split][i])
        assert label == mnist.labels[split][i] and attributes.tolist() == [label]


def test_missing_files_are_named_with_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        open_dataset(f"mnist:{tmp_path},split=test")
    message = str(err.value)
    assert f"{tmp_path}/MNIST/raw/t10k-images-idx3-ubyte (or .gz)" in message
    assert f"{tmp_path}/MNIST/raw/t10k-labels-idx1-ubyte (or .gz)" in message
    assert "download MNIST" in message and "place the files there" in message


def test_labels_and_images_must_agree(mnist: Mnist) -> None:
    raw = mnist.root / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">IIB", 0x801, 1, 3))
    with pytest.raises(DataError, match=r"holds 1 labels but .* 5 images"):
        open_dataset(f"mnist:{mnist.root},split=test")


def test_truncated_and_swapped_files(mnist: Mnist) -> None:
    raw = mnist.root / "MNIST" / "raw"
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    ds = open_dataset(f"mnist:{mnist.root},split=test")  # images are read lazily
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte holds .* truncated"):
        ds[0]
    with gzip.open(raw / "train-labels-idx1-ubyte.gz", "rb") as f:
        labels = f.read()
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(labels)
    with pytest.raises(DataError, match=r"not an MNIST images file"):
        open_dataset(f"mnist:{mnist.root}")


def test_bad_split(mnist: Mnist) -> None:
    with pytest.raises(ConfigError, match=r"split='val' .* expected one of: train, test"):
        open_dataset(f"mnist:{mnist.root},split=val")


def test_colormnist_follows_the_paper_recipe(mnist: Mnist) -> None:
    ds = open_dataset(f"colormnist:{mnist.root},seed=7")
    assert ds.spec == f"colormnist:{mnist.root},split=train,seed=7,colors=paper"
    assert [a.name for a in ds.attributes] == ["digit", "color_r", "color_g", "color_b"]
    assert ds.channels == 3 and ds.classes == tuple("0123456789")
    for i in range(len(ds)):
        x, label, attributes = ds[i]
        c = attributes[1:].double().numpy()
        assert c.min() >= 0 and c.max() < 1 and label == mnist.labels["train"][i]
        m = mnist.images["train"][i].astype(np.float64) / 255
        p = 2 * m - 1  # the digit in [-1, 1], multiplied by c as in CompVis/iin
        expected = np.rint(255 * (p[None] * c[:, None, None] + 1) / 2)
        assert np.abs(x.numpy().astype(np.float64) - expected).max() <= 1


def test_colormnist_is_deterministic_per_seed_and_index(mnist: Mnist) -> None:
    a = open_dataset(f"colormnist:{mnist.root},seed=1")
    b = open_dataset(f"colormnist:{mnist.root},seed=1")
    c = open_dataset(f"colormnist:{mnist.root},seed=2")
    order = [5, 0, 3]
    assert all(torch.equal(a[i][2], b[i][2]) for i in reversed(order))
    assert not torch.equal(a[0][2], c[0][2])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_colormnist_independent_colours(mnist: Mnist) -> None:
    ds = open_dataset(f"colormnist:{mnist.root},colors=independent,split=test")
    names = ["digit", "fg_r", "fg_g", "fg_b", "bg_r", "bg_g", "bg_b"]
    assert [a.name for a in ds.attributes] == names
    x, _, attributes = ds[0]
    fg, bg = attributes[1:4].double().numpy(), attributes[4:].double().numpy()
    m = mnist.images["test"][0].astype(np.float64) / 255
    expected = np.rint(255 * (bg[:, None, None] + m[None] * (fg - bg)[:, None, None]))
    assert np.abs(x.numpy() - expected).max() <= 1
