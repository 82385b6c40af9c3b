"""``3dshapes:FILE``: the 3D Shapes dataset from its public HDF5 file.

``FILE`` is ``3dshapes.h5`` (https://github.com/deepmind/3d-shapes), holding ``images`` uint8
``[N, 64, 64, 3]`` and ``labels`` float64 ``[N, 6]``: floor hue, wall hue, object hue, scale,
shape, orientation. Attributes keep that order; ``shape`` is categorical (cube, cylinder, sphere,
capsule) and is the label, the others are continuous (their values in the file). Items are RGB
``[3, 64, 64]``.

The file is opened lazily, once per process (an HDF5 handle must not cross a fork): opening the
dataset only checks the two arrays' shapes; labels are read on first access.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from innx.data.base import (
    CATEGORICAL,
    CONTINUOUS,
    Attribute,
    ImageDataset,
    Item,
    check_index,
    hash_json,
)
from innx.data.files import local_file
from innx.data.spec import Options, need_location
from innx.errors import DataError
from innx.h5files import ProcessFile

SHAPES = ("cube", "cylinder", "sphere", "capsule")
ATTRIBUTES = (
    Attribute("floor_hue", CONTINUOUS),
    Attribute("wall_hue", CONTINUOUS),
    Attribute("object_hue", CONTINUOUS),
    Attribute("scale", CONTINUOUS),
    Attribute("shape", CATEGORICAL, SHAPES),
    Attribute("orientation", CONTINUOUS),
)
SHAPE_COLUMN = 4
HOW = (
    "download 3dshapes.h5 from https://console.cloud.google.com/storage/browser/3d-shapes "
    "(see https://github.com/deepmind/3d-shapes) and give its path"
)


class Shapes3DDataset(ImageDataset):
    """3D Shapes from ``file``; see the module docstring.

    Example::

        >>> import h5py, tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> f = Path(tmp.name, "3dshapes.h5")
        >>> with h5py.File(f, "w") as h5:
        ...     _ = h5.create_dataset("images", data=np.zeros((2, 64, 64, 3), np.uint8))
        ...     _ = h5.create_dataset("labels", data=[[0, 0.1, 0.2, 1.0, 3, -30], [0] * 6])
        >>> ds = Shapes3DDataset(f)
        >>> x, label, attributes = ds[0]
        >>> x.shape, ds.classes[label], attributes[SHAPE_COLUMN].item()
        (torch.Size([3, 64, 64]), 'capsule', 3.0)
        >>> tmp.cleanup()
    """

    name = "3dshapes"
    classes = SHAPES
    attributes = ATTRIBUTES
    channels = 3

    def __init__(self, file: str | os.PathLike[str]) -> None:
        self.path = local_file("3dshapes", file, HOW)
        self.root = str(self.path)
        self.spec = f"3dshapes:{self.root}"
        self._h5 = ProcessFile(self.path)
        self._labels: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None
        h5 = self._file()
        try:
            for key in ("images", "labels"):
                if key not in h5:
                    raise DataError(
                        f"{self.path} has no dataset '{key}' (it holds {', '.join(sorted(h5))}); "
                        "is it 3dshapes.h5? " + HOW
                    )
            images, labels = h5["images"], h5["labels"]
            if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
                raise DataError(
                    f"{self.path}: 'images' must be uint8 [N, H, W, 3], not {images.shape}"
                )
            if labels.shape != (images.shape[0], 6):
                raise DataError(
                    f"{self.path}: 'labels' must be [{images.shape[0]}, 6], not {labels.shape}"
                )
            self.n, self.height, self.width = images.shape[:3]
            self.image_size = (self.height, self.width)
        finally:
            self._close()

    def _file(self) -> Any:
        """The open HDF5 file of this process (:class:`~innx.h5files.ProcessFile`)."""
        try:
            return self._h5.get()
        except OSError as exc:
            raise DataError(f"cannot open {self.path} as HDF5 ({exc}); download it again") from exc

    def _close(self) -> None:
        self._h5.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_labels": None}  # read again in the worker

    def labels(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """``(labels int64 [N], attributes float32 [N, 6])``, read on first call."""
        if self._labels is None:
            values = np.asarray(self._file()["labels"][:], dtype=np.float64)
            shape = values[:, SHAPE_COLUMN]
            labels = shape.astype(np.int64)
            if (labels != shape).any() or (labels < 0).any() or (labels >= len(SHAPES)).any():
                raise DataError(f"{self.path}: the shape label (column 5) must be 0, 1, 2 or 3")
            self._labels = labels, values.astype(np.float32)
        return self._labels

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, self.n)
        labels, attributes = self.labels()
        image = np.asarray(self._file()["images"][i], dtype=np.uint8)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return x, int(labels[i]), torch.from_numpy(attributes[i].copy())

    def fingerprint(self) -> str:
        """sha256 of the file size, the images' shape and the bytes of ``labels`` (23 MB for the
        real file); the 5.9 GB of images are not read."""
        values = np.ascontiguousarray(self._file()["labels"][:], dtype=np.float64)
        return hash_json(
            {
                "name": "3dshapes",
                "size": self.path.stat().st_size,
                "images": [self.n, self.height, self.width, 3],
                "labels": hashlib.sha256(values.tobytes()).hexdigest(),
            }
        )


def open_3dshapes(location: str | None = None, **options: str) -> Shapes3DDataset:
    """Factory of ``3dshapes:FILE`` (no options)."""
    path = need_location("3dshapes", location, "FILE (3dshapes.h5)")
    Options("3dshapes", options, path).spec()
    return Shapes3DDataset(path)
