"""``dsprites:FILE``: the dSprites dataset from its public ``.npz`` file.

``FILE`` is ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (https://github.com/deepmind/dsprites-dataset),
holding ``imgs`` uint8 ``[N, 64, 64]`` (0/1), ``latents_values`` float64 ``[N, 6]`` and
``latents_classes`` int64 ``[N, 6]`` (colour, shape, scale, orientation, x, y), plus a pickled
``metadata`` object that is never loaded (``allow_pickle=False``; only the three arrays are read).

Factors: ``shape`` (categorical square/ellipse/heart, also the label), ``scale``,
``orientation``, ``x``, ``y`` (continuous, their ``latents_values``); the constant colour is
dropped. Items are grey ``[1, 64, 64]`` with values 0 and 255.

The real file holds 737 280 images (3 GB unpacked): nothing is read when the dataset is opened
but the array headers; the latents and the images (kept bit-packed, 1/8 of the size) are read on
first access, once per process. Touch one item before starting DataLoader workers to share them.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO, Any

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

SHAPES = ("square", "ellipse", "heart")
ATTRIBUTES = (
    Attribute("shape", CATEGORICAL, SHAPES),
    Attribute("scale", CONTINUOUS),
    Attribute("orientation", CONTINUOUS),
    Attribute("x", CONTINUOUS),
    Attribute("y", CONTINUOUS),
)
KEYS = ("imgs", "latents_values", "latents_classes")
HOW = (
    "download dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz from "
    "https://github.com/deepmind/dsprites-dataset and give its path"
)
_CHUNK = 8192  # images decompressed at a time


def _read_header(fp: IO[bytes], path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` member ``fp``."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fp)
        return np.lib.format.read_array_header_2_0(fp)
    except ValueError as exc:
        raise DataError(f"{path}: '{key}' is not a numpy array ({exc}); download it again") from exc


class DSpritesDataset(ImageDataset):
    """dSprites from ``file``; see the module docstring.

    Example::

        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> f = Path(tmp.name, "dsprites.npz")
        >>> latents = np.array([[1, 2, 0.5, 0.0, 0.25, 0.75]])
        >>> np.savez_compressed(f, imgs=np.ones((1, 64, 64), np.uint8), latents_values=latents,
        ...                     latents_classes=np.array([[0, 2, 0, 0, 8, 24]]))
        >>> ds = DSpritesDataset(f)
        >>> x, label, attributes = ds[0]
        >>> x.shape, int(x.max()), ds.classes[label], attributes.tolist()
        (torch.Size([1, 64, 64]), 255, 'heart', [2.0, 0.5, 0.0, 0.25, 0.75])
        >>> tmp.cleanup()
    """

    name = "dsprites"
    classes = SHAPES
    attributes = ATTRIBUTES
    channels = 1

    def __init__(self, file: str | os.PathLike[str]) -> None:
        self.path = local_file("dsprites", file, HOW)
        self.root = str(self.path)
        self.spec = f"dsprites:{self.root}"
        headers = {}
        with self._zip() as archive:
            names = set(archive.namelist())
            absent = [k for k in KEYS if f"{k}.npy" not in names]
            if absent:
                raise DataError(
                    f"{self.path} has no {', '.join(absent)} (it holds "
                    f"{', '.join(sorted(n.removesuffix('.npy') for n in names))}); "
                    "is it the dSprites npz? " + HOW
                )
            for key in KEYS:
                with archive.open(f"{key}.npy") as fp:
                    headers[key] = _read_header(fp, self.path, key)
        shape, fortran, dtype = headers["imgs"]
        if len(shape) != 3 or dtype != np.uint8 or fortran:
            raise DataError(f"{self.path}: 'imgs' must be uint8 [N, H, W] in C order, not {shape}")
        for key in KEYS[1:]:
            if headers[key][0] != (shape[0], 6):
                raise DataError(
                    f"{self.path}: '{key}' must be [{shape[0]}, 6], not {headers[key][0]}"
                )
        self.n, self.height, self.width = shape
        self.image_size = (self.height, self.width)
        self._latents: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None
        self._packed: NDArray[np.uint8] | None = None

    def _zip(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path} is not an .npz file ({exc}); download it again") from exc

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_latents"] = state["_packed"] = None  # reloaded lazily in the worker
        return state

    def latents(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """``(labels int64 [N], attributes float32 [N, 5])``, read on first call."""
        if self._latents is None:
            with np.load(self.path, allow_pickle=False) as npz:
                classes = np.asarray(npz["latents_classes"])
                values = np.asarray(npz["latents_values"])
            labels = classes[:, 1].astype(np.int64)
            if labels.size and (labels.min() < 0 or labels.max() >= len(SHAPES)):
                raise DataError(f"{self.path}: shape classes must be 0, 1 or 2; download it again")
            attributes = np.concatenate([labels[:, None], values[:, 2:]], axis=1)
            self._latents = labels, attributes.astype(np.float32)
        return self._latents

    def packed_images(self) -> NDArray[np.uint8]:
        """The images bit-packed along width, uint8 ``[N, H, W / 8]``, read on first call."""
        if self._packed is None:
            h, w = self.height, self.width
            packed = np.empty((self.n, h, (w + 7) // 8), dtype=np.uint8)
            with self._zip() as archive, archive.open("imgs.npy") as fp:
                _read_header(fp, self.path, "imgs")
                for start in range(0, self.n, _CHUNK):
                    count = min(_CHUNK, self.n - start)
                    data = fp.read(count * h * w)
                    if len(data) != count * h * w:
                        raise DataError(f"{self.path}: 'imgs' is truncated; download it again")
                    chunk = np.frombuffer(data, dtype=np.uint8).reshape(count, h, w)
                    if chunk.max(initial=0) > 1:
                        raise DataError(f"{self.path}: 'imgs' must hold only 0 and 1")
                    packed[start : start + count] = np.packbits(chunk, axis=2)
            self._packed = packed
        return self._packed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, self.n)
        labels, attributes = self.latents()
        bits = np.unpackbits(self.packed_images()[i], axis=1, count=self.width)
        x = torch.from_numpy(bits * np.uint8(255))[None]
        return x, int(labels[i]), torch.from_numpy(attributes[i].copy())

    def fingerprint(self) -> str:
        """sha256 of the file's size and the CRC-32 and size of each array it holds (read from
        the zip directory: instant, and any change to an array changes its CRC)."""
        with self._zip() as archive:
            members = sorted((i.filename, i.CRC, i.file_size) for i in archive.infolist())
        return hash_json({"name": "dsprites", "size": self.path.stat().st_size, "arrays": members})


def open_dsprites(location: str | None = None, **options: str) -> DSpritesDataset:
    """Factory of ``dsprites:FILE`` (no options)."""
    path = need_location("dsprites", location, "FILE (dsprites_ndarray_..._64x64.npz)")
    Options("dsprites", options, path).spec()
    return DSpritesDataset(path)
