"""``cifar10:ROOT``: CIFAR-10 from the python version's batches, in torchvision's layout.

Files (never downloaded here)::

    ROOT/cifar-10-batches-py/data_batch_1 ... data_batch_5   (split=train, 50 000 images)
    ROOT/cifar-10-batches-py/test_batch                      (split=test, 10 000 images)
    ROOT/cifar-10-batches-py/batches.meta                    (class names)

Each batch is a pickled dict: ``b'data'`` uint8 ``[N, 3072]`` (the R, G, B planes of a 32×32
image), ``b'labels'`` a list of ``N`` ints. Pickles can run arbitrary code, so they are read with
:class:`SafeUnpickler`, which only rebuilds numpy arrays and dtypes and refuses every other
global. Items are ``[3, 32, 32]``; the label is also the single attribute ``class``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from innx.data.base import CATEGORICAL, Attribute, ImageDataset, Item, check_index, hash_json
from innx.data.files import LazyImages, missing_files
from innx.data.spec import Options, need_location
from innx.errors import DataError

FOLDER = "cifar-10-batches-py"
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
META = "batches.meta"
HOW = (
    "download 'CIFAR-10 python version' (https://www.cs.toronto.edu/~kriz/cifar.html) and "
    "unpack cifar-10-python.tar.gz into {root}"
)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol 2 pickles written by Python 3
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only numpy arrays, dtypes and plain Python data.

    Example::

        >>> import pickle
        >>> SafeUnpickler.loads(pickle.dumps({b"data": np.arange(3, dtype=np.uint8)}))
        {b'data': array([0, 1, 2], dtype=uint8)}
        >>> SafeUnpickler.loads(pickle.dumps(print))
        Traceback (most recent call last):
        _pickle.UnpicklingError: refusing to load builtins.print: only numpy arrays are allowed
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only numpy arrays are allowed"
        )

    @classmethod
    def loads(cls, data: bytes) -> Any:
        """Unpickle ``data`` (Python 2 strings become ``bytes``)."""
        return cls(io.BytesIO(data), encoding="bytes").load()


def _get(batch: dict[Any, Any], key: str) -> Any:
    """``batch[key]`` whether keys are bytes (Python 2 pickles) or str."""
    return batch[key.encode()] if key.encode() in batch else batch.get(key)


def read_batch(path: Path) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """``(data uint8 [N, 3, 32, 32], labels int64 [N])`` of one CIFAR-10 batch file."""
    try:
        batch = SafeUnpickler.loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"cannot read {path}: {exc}; it is not a CIFAR-10 batch, download it again"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    data = _get(batch, "data") if isinstance(batch, dict) else None
    labels = _get(batch, "labels") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path} has no uint8 [N, 3072] 'data' array; download it again")
    if data.shape[1] != 3 * 32 * 32 or labels is None or len(labels) != data.shape[0]:
        raise DataError(
            f"{path} does not hold N images of 3072 bytes and N labels; download it again"
        )
    label_array = np.asarray(labels, dtype=np.int64)
    if label_array.size and (label_array.min() < 0 or label_array.max() > 9):
        raise DataError(f"{path} has labels outside 0..9; download it again")
    return data.reshape(-1, 3, 32, 32), label_array


def read_classes(path: Path) -> tuple[str, ...]:
    """The ten class names from ``batches.meta``."""
    try:
        meta = SafeUnpickler.loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as exc:
        raise DataError(f"cannot read {path}: {exc}; download it again") from exc
    names = _get(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise DataError(f"{path} has no list of 10 'label_names'; download it again")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


class Cifar10Dataset(LazyImages, ImageDataset):
    """CIFAR-10 ``split`` from ``root``: ``[3, 32, 32]`` images with their class.

    Labels are read when the dataset is opened; images on first access, once per process.

    Example::

        >>> import pickle, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> d = Path(tmp.name, "cifar-10-batches-py"); d.mkdir()
        >>> names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
        ...          b"horse", b"ship", b"truck"]
        >>> _ = (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
        >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 5]}
        >>> _ = (d / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
        >>> ds = Cifar10Dataset(tmp.name, split="test")
        >>> len(ds), ds[1][0].shape, ds.classes[ds[1][1]]
        (2, torch.Size([3, 32, 32]), 'dog')
        >>> tmp.cleanup()
    """

    name = "cifar10"
    channels = 3
    image_size = (32, 32)

    def __init__(self, root: str, split: str = "train") -> None:
        self.root, self.split = os.path.abspath(root), split
        self.spec = f"cifar10:{self.root},split={split}"
        self.folder = folder = Path(self.root, FOLDER)
        self.files = [folder / f for f in SPLITS[split]]
        missing = [p for p in [*self.files, folder / META] if not p.is_file()]
        if missing:
            raise missing_files(f"cifar10:{self.root}", missing, HOW.format(root=self.root))
        self.classes = read_classes(folder / META)
        self.attributes = (Attribute("class", CATEGORICAL, self.classes),)
        self.labels = np.concatenate([read_batch(p)[1] for p in self.files])

    def read_images(self) -> NDArray[np.uint8]:
        """All images, uint8 ``[N, 3, 32, 32]``."""
        images = np.concatenate([read_batch(p)[0] for p in self.files])
        if len(images) != len(self.labels):
            raise DataError(f"{self.files[0].parent} changed since it was opened; reopen it")
        return images

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, len(self.labels))
        label = int(self.labels[i])
        x = torch.from_numpy(self.images()[i].copy())
        return x, label, torch.tensor([label], dtype=torch.float32)

    def fingerprint(self) -> str:
        """sha256 of the labels, the sizes of the batch files and the bytes of ``batches.meta``;
        the images themselves are not read again."""
        meta = self.folder / META
        return hash_json(
            {
                "name": "cifar10",
                "split": self.split,
                "labels": hashlib.sha256(self.labels.tobytes()).hexdigest(),
                "sizes": {p.name: p.stat().st_size for p in self.files},
                "meta": hashlib.sha256(meta.read_bytes()).hexdigest(),
            }
        )


def open_cifar10(location: str | None = None, **options: str) -> Cifar10Dataset:
    """Factory of ``cifar10:ROOT,split=train|test``."""
    root = need_location("cifar10", location, "ROOT (the folder holding cifar-10-batches-py)")
    opts = Options("cifar10", options, root)
    split = opts.get_choice("split", tuple(SPLITS), "train")
    opts.spec()
    return Cifar10Dataset(root, split)
