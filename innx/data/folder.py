"""``folder:PATH``: a folder of images, with classes from subfolders and attributes from a CSV.

Layouts:

- **classes**: one subfolder per class (``PATH/cat/1.png``, ``PATH/dog/a/2.jpg``); classes are the
  sorted subfolder names, images are found recursively inside each;
- **flat**: images directly in ``PATH``; no labels (``label`` is ``-1``, ``classes`` is ``None``).

Images are ``.png``, ``.jpg``, ``.jpeg``, ``.bmp`` or ``.webp`` (any case); hidden files and
folders (``.name``) are ignored; items are in sorted path order. Every image is converted to RGB.
Sizes may vary. ``image_size`` is ``(H, W)`` when every image has that size and ``None``
otherwise; it is read, on first use and once per dataset, from the files' headers (no image is
decoded; the reading stops at the first image of another size), so ``innx fit autoencoder
folder:PATH`` needs no ``--size`` for a folder of one size. Images are not decoded until an item
is read; a corrupt file raises :class:`~innx.errors.DataError` naming it then (or when
``image_size`` reads its header).

Attributes come from an optional ``PATH/attributes.csv``::

    path,shape,scale
    circle/000001.png,circle,0.25

one row per image, ``path`` relative to ``PATH`` (``/`` separated). A column is categorical when
any of its values is not a number, or when its values are whole numbers with at most 32 distinct
ones (``digit`` = 0…9); its categories are the sorted distinct values and an item holds the index
of its value. Any other column of numbers is continuous (:mod:`innx.data.kinds` states the rule;
``--factor NAME:categorical`` or ``NAME:continuous`` overrides it where a fit or analysis names
the factor). Unknown paths, images without a row, duplicate paths, rows with the wrong number of
fields and empty values are errors naming the file and row.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from innx.data.base import Attribute, ImageDataset, Item, check_index, hash_json
from innx.data.files import IMAGE_SUFFIXES, read_image, read_image_size
from innx.data.kinds import column_attribute
from innx.data.spec import Options, need_location
from innx.errors import DataError

ATTRIBUTES_CSV = "attributes.csv"


def _entries(folder: Path) -> list[tuple[os.DirEntry[str], bool]]:
    """The visible subfolders and images of ``folder`` by name, each with whether it is a
    folder. A link that cannot be followed (a symbolic link loop, say) is a :class:`DataError`
    naming it."""
    with os.scandir(folder) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    found = []
    for e in entries:
        try:
            if e.is_dir():
                found.append((e, True))
            elif e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES):
                found.append((e, False))
        except OSError as err:
            raise _link_error(Path(e.path), err) from err
    return found


def _images_under(folder: Path, prefix: str, above: frozenset[tuple[int, int]]) -> list[str]:
    """Relative paths (``prefix/...``) of the images under ``folder``, recursively, sorted.

    ``above`` holds the folders on the way down (device, inode): a symbolic link back to one of
    them would make the walk endless, so it is refused, naming the link."""
    here = _identity(folder)
    if here in above:
        raise DataError(
            f"{folder} is a symbolic link to a folder that contains it (a loop); "
            "remove the link or point it elsewhere"
        )
    found: list[str] = []
    for e, is_folder in _entries(folder):
        if is_folder:
            found += _images_under(Path(e.path), f"{prefix}/{e.name}", above | {here})
        else:
            found.append(f"{prefix}/{e.name}")
    return found


def _identity(folder: Path) -> tuple[int, int]:
    try:
        info = os.stat(folder)
    except OSError as err:
        raise _link_error(folder, err) from err
    return info.st_dev, info.st_ino


def _link_error(path: Path, err: OSError) -> DataError:
    reason = os.strerror(err.errno) if err.errno else str(err)
    what = "a symbolic link loop" if err.errno == errno.ELOOP else reason.lower()
    return DataError(f"cannot follow {path} ({what}); remove the link or fix its target")


def scan_folder(root: Path) -> tuple[list[str], list[int] | None, tuple[str, ...] | None]:
    """The images of ``root`` as ``(relative paths, labels, classes)``; labels and classes are
    ``None`` for a flat folder. ``DataError`` for a missing, empty or mixed folder."""
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist or is not a directory; check the path")
    entries = _entries(root)
    top = [e.name for e, is_folder in entries if not is_folder]
    subdirs = [e for e, is_folder in entries if is_folder]
    if subdirs and top:
        raise DataError(
            f"folder {root} mixes images at the top level ({top[0]}, ...) with subfolders "
            f"({subdirs[0].name}, ...); move every image into the subfolder of its class"
        )
    if subdirs:
        paths: list[str] = []
        labels: list[int] = []
        classes = tuple(e.name for e in subdirs)
        for label, e in enumerate(subdirs):
            found = _images_under(Path(e.path), e.name, frozenset({_identity(root)}))
            if not found:
                raise DataError(
                    f"class folder {e.path} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                    "add images to it or remove it"
                )
            paths += found
            labels += [label] * len(found)
        return paths, labels, classes
    if not top:
        raise DataError(
            f"folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)}); put images in it, "
            "all at the top level or one subfolder per class"
        )
    return top, None, None


def read_attributes_csv(
    path: Path, images: list[str]
) -> tuple[tuple[Attribute, ...], NDArray[np.float32]]:
    """Attributes of ``images`` (relative paths) from ``path``: ``(attributes, values [N, K])``,
    rows in the order of ``images``. ``DataError`` naming the file and row for any problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}; save it as UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if not header or header[0] != "path":
        raise DataError(f"{path}: the first line must be the header path,<name>,<name>,...")
    names = header[1:]
    for i, name in enumerate(names):
        if not name:
            raise DataError(f"{path}: column {i + 2} of the header has no name; name it")
        if name in names[:i]:
            raise DataError(f"{path}: attribute {name!r} appears twice in the header; rename one")
    index = {p: i for i, p in enumerate(images)}
    values: list[list[str] | None] = [None] * len(images)
    lines: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            raise DataError(
                f"{path}, row {line}: {len(row)} fields but the header has {len(header)}; "
                "give every row one path and one value per attribute"
            )
        rel = row[0].strip().replace("\\", "/").removeprefix("./")
        if rel in lines:
            raise DataError(
                f"{path}, row {line}: {rel} is listed again (first in row {lines[rel]}); "
                "keep one row per image"
            )
        if rel not in index:
            raise DataError(
                f"{path}, row {line}: {rel} is not an image in {path.parent}; "
                "fix the path (relative to the folder) or remove the row"
            )
        cells = [c.strip() for c in row[1:]]
        for name, cell in zip(names, cells, strict=True):
            if not cell:
                raise DataError(f"{path}, row {line}: empty value for {name!r}; fill it in")
        lines[rel] = line
        values[index[rel]] = cells
    absent = [p for p, v in zip(images, values, strict=True) if v is None]
    if absent:
        shown = ", ".join(absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
        raise DataError(f"{path} has no row for {shown}; add one row per image")
    table = np.array(values, dtype=object).reshape(len(images), len(names))
    attributes: list[Attribute] = []
    out = np.empty((len(images), len(names)), dtype=np.float32)
    for k, name in enumerate(names):
        attribute, out[:, k] = column_attribute(name, [str(v) for v in table[:, k]])
        attributes.append(attribute)
    return tuple(attributes), out


class FolderDataset(ImageDataset):
    """The images under ``root``; see the module docstring for layouts and ``attributes.csv``.

    Example::

        >>> import tempfile
        >>> from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory()
        >>> for name in ("cat/a.png", "cat/b.png", "dog/c.png"):
        ...     Path(tmp.name, name).parent.mkdir(exist_ok=True)
        ...     Image.new("RGB", (8, 6), "red").save(Path(tmp.name, name))
        >>> ds = FolderDataset(tmp.name)
        >>> len(ds), ds.classes, ds[2][0].shape, ds[2][1], ds.image_size
        (3, ('cat', 'dog'), torch.Size([3, 6, 8]), 1, (6, 8))
        >>> tmp.cleanup()
    """

    name = "folder"
    channels = 3

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(os.path.abspath(Path(root).expanduser()))
        self.folder, self.root = path, str(path)
        self.spec = f"folder:{self.root}"
        self.paths, labels, self.classes = scan_folder(path)
        self.labels = np.array(labels if labels is not None else [-1] * len(self.paths))
        csv_path = path / ATTRIBUTES_CSV
        if csv_path.is_file():
            self.attributes, self.values = read_attributes_csv(csv_path, self.paths)
        else:
            self.attributes, self.values = (), np.zeros((len(self.paths), 0), np.float32)

    @cached_property
    def image_size(self) -> tuple[int, int] | None:  # type: ignore[override]  # read lazily
        """``(H, W)`` of every image, or ``None`` when sizes vary: read from the files' headers on
        first use (no image is decoded), up to the first image of another size."""
        first = read_image_size(self.folder / self.paths[0])
        for rel in self.paths[1:]:
            if read_image_size(self.folder / rel) != first:
                return None
        return first

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, len(self.paths))
        x = read_image(self.folder / self.paths[i])
        return x, int(self.labels[i]), torch.from_numpy(self.values[i].copy())

    def fingerprint(self) -> str:
        """sha256 of the listing (relative path and size of each image) and of the bytes of
        ``attributes.csv``; image contents are not read, so an edit that keeps a file's size
        is not seen."""
        files = [[p, (self.folder / p).stat().st_size] for p in self.paths]
        csv_path = self.folder / ATTRIBUTES_CSV
        csv_hash = hashlib.sha256(csv_path.read_bytes()).hexdigest() if csv_path.is_file() else None
        return hash_json({"files": files, "classes": self.classes, "attributes_csv": csv_hash})


def open_folder(location: str | None = None, **options: str) -> FolderDataset:
    """Factory of ``folder:PATH`` (no options)."""
    root = need_location("folder", location, "PATH (a folder of images)")
    Options("folder", options, root).spec()
    return FolderDataset(root)
