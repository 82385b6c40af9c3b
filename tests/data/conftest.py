"""Small datasets written in ``tmp_path`` in the real on-disk formats, by code independent of the
readers under test (``struct`` for IDX, ``pickle`` for CIFAR, text files for CelebA, ``np.savez``
and ``h5py`` for dSprites and 3D Shapes)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

CELEBA_NAMES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
CIFAR_CLASSES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """An IDX file: big-endian magic, one uint32 per dimension, the uint8 data."""
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


class Mnist:
    """An MNIST root: train split gzipped, test split raw."""

    def __init__(self, root: Path) -> None:
        rng = np.random.default_rng(0)
        self.root = root
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        self.images = {
            s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            for s, n in [("train", 12), ("test", 5)]
        }
        self.labels = {
            s: rng.integers(0, 10, len(a), dtype=np.uint8) for s, a in self.images.items()
        }
        for split, prefix, suffix in [("train", "train", ".gz"), ("test", "t10k", "")]:
            write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", self.images[split], 0x803)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", self.labels[split], 0x801)


@pytest.fixture
def mnist(tmp_path: Path) -> Mnist:
    return Mnist(tmp_path / "mnist")


class Cifar:
    """A CIFAR-10 root with 3 images per train batch and 4 test images, pickled like the real
    files (dicts with bytes keys, ``b'data'`` uint8 [N, 3072], ``b'labels'`` a list)."""

    def __init__(self, root: Path, protocol: int = 2) -> None:
        rng = np.random.default_rng(1)
        self.root = root
        self.folder = root / "cifar-10-batches-py"
        self.folder.mkdir(parents=True)
        self.data: dict[str, list[np.ndarray]] = {"train": [], "test": []}
        self.labels: dict[str, list[int]] = {"train": [], "test": []}
        names = [(f"data_batch_{i}", "train", 3) for i in range(1, 6)] + [("test_batch", "test", 4)]
        for name, split, n in names:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, n)]
            batch = {
                b"batch_label": name.encode(),
                b"labels": labels,
                b"data": data,
                b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
            }
            (self.folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
            self.data[split].append(data)
            self.labels[split] += labels
        meta = {b"label_names": CIFAR_CLASSES, b"num_cases_per_batch": 3, b"num_vis": 3072}
        (self.folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))


@pytest.fixture
def cifar(request: pytest.FixtureRequest, tmp_path: Path) -> Cifar:
    """Pickle protocol 2 (as the real files) unless parametrised indirectly with another."""
    return Cifar(tmp_path / "cifar", protocol=getattr(request, "param", 2))


class CelebA:
    """A CelebA root with 6 small JPEGs (3 train, 2 valid, 1 test) and the real 40 names."""

    def __init__(self, root: Path) -> None:
        rng = np.random.default_rng(2)
        self.root = root
        self.folder = root / "celeba"
        images = self.folder / "img_align_celeba"
        images.mkdir(parents=True)
        self.files = [f"{i:06d}.jpg" for i in range(1, 7)]
        self.values = rng.choice([-1, 1], size=(6, 40))
        self.partition = [0, 0, 1, 0, 2, 1]
        for f in self.files:
            Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(images / f)
        rows = [
            f"{f} " + " ".join(f"{v:2d}" for v in vals)
            for f, vals in zip(self.files, self.values, strict=True)
        ]
        text = f"{len(self.files)}\n{' '.join(CELEBA_NAMES)} \n" + "\n".join(rows) + "\n"
        (self.folder / "list_attr_celeba.txt").write_text(text)
        parts = "".join(f"{f} {p}\n" for f, p in zip(self.files, self.partition, strict=True))
        (self.folder / "list_eval_partition.txt").write_text(parts)


@pytest.fixture
def celeba(tmp_path: Path) -> CelebA:
    return CelebA(tmp_path / "celeba-root")


class DSprites:
    """A dSprites npz with the real keys (incl. a pickled ``metadata``), 10 images."""

    def __init__(self, path: Path) -> None:
        rng = np.random.default_rng(3)
        self.path = path
        n = 10
        self.imgs = rng.integers(0, 2, (n, 64, 64), dtype=np.uint8)
        self.classes = np.zeros((n, 6), dtype=np.int64)
        self.classes[:, 1] = rng.integers(0, 3, n)
        self.values = rng.random((n, 6))
        self.values[:, 0] = 1.0
        self.values[:, 1] = self.classes[:, 1] + 1
        metadata = np.array({"date": "April 2017", "description": "test"}, dtype=object)
        np.savez_compressed(
            path,
            imgs=self.imgs,
            latents_values=self.values,
            latents_classes=self.classes,
            metadata=metadata,
        )


@pytest.fixture
def dsprites(tmp_path: Path) -> DSprites:
    return DSprites(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")


class Shapes3D:
    """A 3dshapes.h5 with ``images`` uint8 [8, 64, 64, 3] and ``labels`` float64 [8, 6]."""

    def __init__(self, path: Path) -> None:
        rng = np.random.default_rng(4)
        self.path = path
        n = 8
        self.images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        self.labels = rng.random((n, 6))
        self.labels[:, 4] = rng.integers(0, 4, n)
        with h5py.File(path, "w") as f:
            f.create_dataset("images", data=self.images, chunks=(1, 64, 64, 3))
            f.create_dataset("labels", data=self.labels)


@pytest.fixture
def shapes3d(tmp_path: Path) -> Shapes3D:
    return Shapes3D(tmp_path / "3dshapes.h5")
