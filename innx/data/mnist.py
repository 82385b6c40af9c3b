"""``mnist:ROOT`` and ``colormnist:ROOT``: MNIST digits from torchvision's on-disk layout.

Files (raw IDX or gzipped, never downloaded here)::

    ROOT/MNIST/raw/train-images-idx3-ubyte[.gz]   ROOT/MNIST/raw/train-labels-idx1-ubyte[.gz]
    ROOT/MNIST/raw/t10k-images-idx3-ubyte[.gz]    ROOT/MNIST/raw/t10k-labels-idx1-ubyte[.gz]

Option ``split=train|test`` (default train). ``mnist`` items are grey ``[1, 28, 28]``, label and
the single attribute ``digit`` being the digit.

``colormnist`` colours each digit, as the colourful MNIST of the IIN code (Esser, Rombach & Ommer,
CVPR 2020, ``CompVis/iin``) does: there, a digit image ``p`` in ``[-1, 1]`` is multiplied by a
colour ``c ~ U[0, 1]^3``, which paints the stroke ``(1 + c) / 2`` and the background the
complementary ``(1 - c) / 2``. Options:

- ``colors=paper`` (default): that recipe; attributes ``digit``, ``color_r``, ``color_g``,
  ``color_b`` (the components of ``c``);
- ``colors=independent``: stroke and background colours drawn independently, ``U[0, 1]^3`` each;
  attributes ``digit``, ``fg_r``, ``fg_g``, ``fg_b``, ``bg_r``, ``bg_g``, ``bg_b``;
- ``seed`` (default 0): image ``i`` takes its colours from ``numpy.random.default_rng([seed, i])``,
  so it is the same in any order, batch or worker.

Pixels are ``round(255 * (bg + m * (fg - bg)))`` with ``m`` the digit's grey level in ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from innx.data.base import CATEGORICAL, CONTINUOUS, Attribute, ImageDataset, Item, check_index
from innx.data.base import hash_json as _hash_json
from innx.data.files import LazyImages, first_existing, missing_files, read_bytes
from innx.data.idx import read_idx, read_idx_header
from innx.data.spec import Options, need_location
from innx.errors import DataError

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
DIGITS = tuple(str(d) for d in range(10))
HOW = (
    "download MNIST (https://yann.lecun.com/exdb/mnist/, or torchvision.datasets.MNIST(ROOT, "
    "download=True) on a machine with internet) and place the files there"
)


def find_mnist(root: str, split: str) -> tuple[Path, Path]:
    """The images and labels files of ``split`` under ``root`` (raw preferred over ``.gz``)."""
    raw = Path(root, "MNIST", "raw")
    found = [first_existing([raw / name, raw / f"{name}.gz"]) for name in SPLITS[split]]
    missing = [
        f"{raw / name} (or .gz)" for name, p in zip(SPLITS[split], found, strict=True) if p is None
    ]
    if missing:
        raise missing_files(f"mnist:{root} (split={split})", missing, HOW)
    images, labels = found
    assert images is not None and labels is not None
    return images, labels


class MnistDataset(LazyImages, ImageDataset):
    """MNIST ``split`` from ``root``: grey digits ``[1, 28, 28]``, label = attribute ``digit``.

    Labels are read when the dataset is opened; images on first access, once per process.

    Example::

        >>> import gzip, struct, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> raw = Path(tmp.name, "MNIST", "raw"); raw.mkdir(parents=True)
        >>> images = struct.pack(">IIII", 0x803, 2, 28, 28) + bytes(2 * 28 * 28)
        >>> _ = (raw / "t10k-images-idx3-ubyte").write_bytes(images)
        >>> with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        ...     _ = f.write(struct.pack(">IIBB", 0x801, 2, 7, 1))
        >>> ds = MnistDataset(tmp.name, split="test")
        >>> len(ds), ds[0][0].shape, ds[0][1]
        (2, torch.Size([1, 28, 28]), 7)
        >>> tmp.cleanup()
    """

    name = "mnist"
    classes = DIGITS
    attributes: tuple[Attribute, ...] = (Attribute("digit", CATEGORICAL, DIGITS),)
    channels = 1

    def __init__(self, root: str, split: str = "train") -> None:
        self.root, self.split = os.path.abspath(root), split
        root = self.root
        self.spec = f"{self.name}:{root},split={split}"
        self.images_path, self.labels_path = find_mnist(root, split)
        magic, shape = read_idx_header(self.images_path)
        if magic != IMAGES_MAGIC or len(shape) != 3:
            raise DataError(
                f"{self.images_path} is not an MNIST images file (IDX magic 0x{magic:08x}, "
                f"shape {shape}); is it the right file?"
            )
        labels = read_idx(self.labels_path, LABELS_MAGIC)
        if labels.shape != shape[:1]:
            raise DataError(
                f"{self.labels_path} holds {labels.shape[0]} labels but {self.images_path} "
                f"{shape[0]} images; download both again"
            )
        if labels.size and int(labels.max()) > 9:
            raise DataError(f"{self.labels_path} holds labels above 9; is it MNIST?")
        self.labels = labels.astype(np.int64)
        self.image_size = (shape[1], shape[2])

    def read_images(self) -> NDArray[np.uint8]:
        """All images, uint8 ``[N, H, W]``."""
        array = read_idx(self.images_path, IMAGES_MAGIC)
        if array.shape[0] != len(self.labels):
            raise DataError(f"{self.images_path} changed since it was opened; reopen it")
        return array.astype(np.uint8, copy=False)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, len(self.labels))
        label = int(self.labels[i])
        x = self._render(i, self.images()[i])
        return x, label, torch.tensor([label, *self._factors(i)], dtype=torch.float32)

    def _render(self, index: int, digit: NDArray[np.uint8]) -> torch.Tensor:
        return torch.from_numpy(digit.copy())[None]

    def _factors(self, index: int) -> list[float]:
        return []

    def _description(self) -> dict[str, object]:
        return {"split": self.split}

    def fingerprint(self) -> str:
        """sha256 of the labels file's content, the images file's size and header, and the
        options; the 47 MB of images are not read."""
        return _hash_json(
            {
                "name": self.name,
                "labels": hashlib.sha256(read_bytes(self.labels_path)).hexdigest(),
                "images": [self.images_path.stat().st_size, read_idx_header(self.images_path)],
                **self._description(),
            }
        )


COLOR_MODES = ("paper", "independent")


class ColorMnistDataset(MnistDataset):
    """MNIST digits in colour, deterministic per index from ``seed``; see the module docstring.

    Example::

        >>> import struct, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> raw = Path(tmp.name, "MNIST", "raw"); raw.mkdir(parents=True)
        >>> _ = (raw / "train-images-idx3-ubyte").write_bytes(
        ...     struct.pack(">IIII", 0x803, 1, 28, 28) + bytes([255]) * 28 * 28)
        >>> _ = (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">IIB", 0x801, 1, 3))
        >>> ds = ColorMnistDataset(tmp.name, seed=0)
        >>> x, label, attributes = ds[0]
        >>> x.shape, label, [a.name for a in ds.attributes]
        (torch.Size([3, 28, 28]), 3, ['digit', 'color_r', 'color_g', 'color_b'])
        >>> tmp.cleanup()
    """

    name = "colormnist"
    channels = 3

    def __init__(
        self, root: str, split: str = "train", seed: int = 0, colors: str = "paper"
    ) -> None:
        super().__init__(root, split)
        self.seed, self.colors = seed, colors
        self.spec = f"colormnist:{self.root},split={split},seed={seed},colors={colors}"
        names = ["color_r", "color_g", "color_b"]
        if colors == "independent":
            names = ["fg_r", "fg_g", "fg_b", "bg_r", "bg_g", "bg_b"]
        self.attributes = (MnistDataset.attributes[0], *(Attribute(n, CONTINUOUS) for n in names))

    def _colors(self, index: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(fg, bg)`` colours in ``[0, 1]^3`` of image ``index``, from its float32 factors."""
        f = np.array(self._factors(index), dtype=np.float32).astype(np.float64)
        if self.colors == "paper":
            return (1.0 + f) / 2.0, (1.0 - f) / 2.0
        return f[:3], f[3:]

    def _factors(self, index: int) -> list[float]:
        k = 3 if self.colors == "paper" else 6
        u = np.random.default_rng([self.seed, index]).random(k).astype(np.float32)
        return [float(v) for v in u]

    def _render(self, index: int, digit: NDArray[np.uint8]) -> torch.Tensor:
        fg, bg = self._colors(index)
        m = digit.astype(np.float64)[None] / 255.0  # [1, H, W]
        rgb = np.rint(255.0 * (bg[:, None, None] + m * (fg - bg)[:, None, None]))
        return torch.from_numpy(rgb.astype(np.uint8))

    def _description(self) -> dict[str, object]:
        return {"split": self.split, "seed": self.seed, "colors": self.colors, "recipe": 1}


def open_mnist(location: str | None = None, **options: str) -> MnistDataset:
    """Factory of ``mnist:ROOT,split=train|test``."""
    root = need_location("mnist", location, "ROOT (the folder holding MNIST/raw)")
    opts = Options("mnist", options, root)
    split = opts.get_choice("split", tuple(SPLITS), "train")
    opts.spec()
    return MnistDataset(root, split)


def open_colormnist(location: str | None = None, **options: str) -> ColorMnistDataset:
    """Factory of ``colormnist:ROOT,split=train|test,seed=0,colors=paper|independent``."""
    root = need_location("colormnist", location, "ROOT (the folder holding MNIST/raw)")
    opts = Options("colormnist", options, root)
    split = opts.get_choice("split", tuple(SPLITS), "train")
    seed = opts.get_int("seed", 0, min=0, max=2**63 - 1)
    colors = opts.get_choice("colors", COLOR_MODES, "paper")
    opts.spec()
    return ColorMnistDataset(root, split, seed, colors)
