"""``3dshapes`` on an HDF5 file with the real dataset names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from innx.data import open_dataset
from innx.errors import DataError

if TYPE_CHECKING:
    from conftest import Shapes3D


def test_images_and_factors(shapes3d: Shapes3D) -> None:
    ds = open_dataset(f"3dshapes:{shapes3d.path}")
    assert (
        len(ds) == 8
        and ds.image_size == (64, 64)
        and ds.classes == ("cube", "cylinder", "sphere", "capsule")
    )
    names = ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert [a.name for a in ds.attributes] == names and ds.attributes[4].kind == "categorical"
    for i in range(len(ds)):
        x, label, attributes = ds[i]
        assert np.array_equal(x.permute(1, 2, 0).numpy(), shapes3d.images[i])
        assert label == shapes3d.labels[i, 4]
        assert np.array_equal(attributes.numpy(), shapes3d.labels[i].astype(np.float32))


def test_workers_open_their_own_file(shapes3d: Shapes3D) -> None:
    ds = open_dataset(f"3dshapes:{shapes3d.path}")
    ds[0]  # the parent holds an open handle
    x = torch.cat([b[0] for b in DataLoader(ds, batch_size=3, num_workers=2)])
    assert np.array_equal(x.permute(0, 2, 3, 1).numpy(), shapes3d.images)


def test_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"3dshapes expects .*none.h5, not found; download 3dshapes.h5"
    ):
        open_dataset(f"3dshapes:{tmp_path / 'none.h5'}")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(DataError, match=r"has no dataset 'labels'"):
        open_dataset(f"3dshapes:{tmp_path / 'x.h5'}")
    (tmp_path / "y.h5").write_text("not hdf5")
    with pytest.raises(DataError, match=r"cannot open .*y.h5 as HDF5"):
        open_dataset(f"3dshapes:{tmp_path / 'y.h5'}")


def test_shape_label_must_be_a_class(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "z.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((1, 64, 64, 3), np.uint8))
        f.create_dataset("labels", data=[[0, 0, 0, 1, 2.5, 0]])
    ds = open_dataset(f"3dshapes:{tmp_path / 'z.h5'}")
    with pytest.raises(DataError, match=r"shape label .* must be 0, 1, 2 or 3"):
        ds[0]
