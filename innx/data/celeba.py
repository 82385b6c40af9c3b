"""``celeba:ROOT``: aligned CelebA faces with their 40 binary attributes, in torchvision's layout.

Files (never downloaded here)::

    ROOT/celeba/img_align_celeba/000001.jpg ...   the aligned and cropped JPEGs (178×218)
    ROOT/celeba/list_attr_celeba.txt              count; the 40 names; "file v1 ... v40" (-1/1)
    ROOT/celeba/list_eval_partition.txt           "file p", p = 0 train, 1 valid, 2 test

Every attribute (``Smiling``, ``Male``, ...) is categorical with categories ``("no", "yes")``:
an item holds 0 or 1. Options: ``split=train|valid|test|all`` (default train) and
``label=none|<attribute>`` (default none: no labels; an attribute name makes it the label, with
classes ``("no", "yes")``). Items are RGB ``[3, 218, 178]``, decoded when read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from innx.data.base import CATEGORICAL, Attribute, ImageDataset, Item, check_index, hash_json
from innx.data.files import missing_files, read_image
from innx.data.spec import Options, need_location
from innx.errors import ConfigError, DataError

SPLITS = {"train": 0, "valid": 1, "test": 2, "all": None}
FOLDER, IMAGES = "celeba", "img_align_celeba"
ATTR_FILE, PARTITION_FILE = "list_attr_celeba.txt", "list_eval_partition.txt"
NO_YES = ("no", "yes")
HOW = (
    "download the aligned CelebA images (img_align_celeba.zip, unzipped) and the files "
    "list_attr_celeba.txt and list_eval_partition.txt from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into {folder}"
)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}; download it again") from exc


def read_attr_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """``(attribute names, file names, values int8 [N, K] in {0, 1})`` of ``list_attr_celeba.txt``."""
    lines = _read_lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(
            f"{path}: expected a count on line 1 and the attribute names on line 2; download it again"
        )
    count, names = int(lines[0]), lines[1].split()
    files: list[str] = []
    values = np.empty((count, len(names)), dtype=np.int8)
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise DataError(
                f"{path}, line {number}: {len(fields)} fields, expected a file name and "
                f"{len(names)} values; download the file again"
            )
        if len(files) == count:
            raise DataError(f"{path} lists more than the {count} images line 1 announces")
        if any(v not in ("1", "-1") for v in fields[1:]):
            raise DataError(f"{path}, line {number}: values must be -1 or 1")
        values[len(files)] = [v == "1" for v in fields[1:]]
        files.append(fields[0])
    if len(files) != count:
        raise DataError(f"{path} lists {len(files)} images but line 1 announces {count}")
    return names, files, values


def read_partition_file(path: Path) -> dict[str, int]:
    """``{file name: partition}`` (0 train, 1 valid, 2 test) of ``list_eval_partition.txt``."""
    partition: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}, line {number}: expected 'file 0|1|2', got {line.strip()!r}")
        partition[fields[0]] = int(fields[1])
    return partition


class CelebADataset(ImageDataset):
    """CelebA ``split`` from ``root`` with its 40 attributes; labelled by ``label`` when given.

    Example::

        >>> import tempfile
        >>> from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory()
        >>> d = Path(tmp.name, "celeba"); (d / "img_align_celeba").mkdir(parents=True)
        >>> Image.new("RGB", (178, 218)).save(d / "img_align_celeba" / "000001.jpg")
        >>> _ = (d / "list_attr_celeba.txt").write_text("1\\nMale Smiling\\n000001.jpg -1  1\\n")
        >>> _ = (d / "list_eval_partition.txt").write_text("000001.jpg 0\\n")
        >>> ds = CelebADataset(tmp.name, label="Smiling")
        >>> x, label, attributes = ds[0]
        >>> x.shape, ds.classes[label], attributes.tolist()
        (torch.Size([3, 218, 178]), 'yes', [0.0, 1.0])
        >>> tmp.cleanup()
    """

    name = "celeba"
    channels = 3
    image_size = None

    def __init__(self, root: str, split: str = "train", label: str | None = None) -> None:
        self.root, self.split, self.label = os.path.abspath(root), split, label
        self.spec = f"celeba:{self.root},split={split},label={label or 'none'}"
        self.folder = folder = Path(self.root, FOLDER)
        expected = [folder / ATTR_FILE, folder / PARTITION_FILE, folder / IMAGES]
        missing = [p for p in expected if not p.exists()]
        if missing:
            raise missing_files(f"celeba:{self.root}", missing, HOW.format(folder=folder))
        names, files, values = read_attr_file(folder / ATTR_FILE)
        partition = read_partition_file(folder / PARTITION_FILE)
        unlisted = [f for f in files if f not in partition]
        if unlisted:
            raise DataError(
                f"{folder / PARTITION_FILE} has no partition for {unlisted[0]} "
                f"({len(unlisted)} images in all); download both list files again"
            )
        code = SPLITS[split]
        keep = [i for i, f in enumerate(files) if code is None or partition[f] == code]
        self.files = [files[i] for i in keep]
        self.values = values[keep]
        self.attributes = tuple(Attribute(n, CATEGORICAL, NO_YES) for n in names)
        if label is None:
            self.classes, self.labels = None, np.full(len(keep), -1, dtype=np.int64)
        elif label in names:
            self.classes, self.labels = NO_YES, self.values[:, names.index(label)].astype(np.int64)
        else:
            raise ConfigError(
                f"option label={label!r} of dataset 'celeba' is not an attribute; "
                f"choose none or one of: {', '.join(names)}"
            )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, len(self.files))
        x = read_image(self.folder / IMAGES / self.files[i])
        attributes = torch.from_numpy(self.values[i].astype(np.float32))
        return x, int(self.labels[i]), attributes

    def fingerprint(self) -> str:
        """sha256 of the two list files and the options; the JPEGs are not read."""
        digests = {
            f: hashlib.sha256((self.folder / f).read_bytes()).hexdigest()
            for f in (ATTR_FILE, PARTITION_FILE)
        }
        return hash_json(
            {"name": "celeba", "split": self.split, "label": self.label, "files": digests}
        )


def open_celeba(location: str | None = None, **options: str) -> CelebADataset:
    """Factory of ``celeba:ROOT,split=train|valid|test|all,label=none|<attribute>``."""
    root = need_location("celeba", location, "ROOT (the folder holding celeba/)")
    opts = Options("celeba", options, root)
    split = opts.get_choice("split", tuple(SPLITS), "train")
    label = opts.get_str("label", "none")
    opts.spec()
    return CelebADataset(root, split, None if label == "none" else label)
