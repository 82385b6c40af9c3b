"""Data verbs: write a dataset out as an image folder, describe a dataset.

An image folder (:mod:`innx.data.folder`) is the exchange format: PNG files, one subfolder per
class, and ``attributes.csv`` with category names and float32 values written so that they read
back exactly. ``folder:OUT`` therefore reopens what was written with the same images (PNG is
lossless), labels and attribute values (for ``shapes``, whose category names are in alphabetical
order, even the same indices, as long as every category occurs).

Writing is all-or-nothing: files go to ``OUT.partial`` which is renamed to ``OUT`` only when
complete, so an interrupted write never looks like a finished one.
"""

from __future__ import annotations

import csv
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from innx.data.base import ImageDataset, Item
from innx.errors import ConfigError, DataError
from innx.writes import writing

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called as work advances."""

CHUNK = 256
"""Images rendered and written per step."""


def _format_value(value: float, categories: tuple[str, ...]) -> str:
    """A category's name, or the shortest text that reads back as the same float32."""
    if categories:
        return categories[int(value)]
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def _check_class_names(classes: tuple[str, ...]) -> None:
    for c in classes:
        if not c or c in (".", "..") or c.startswith(".") or "/" in c or "\\" in c:
            raise ConfigError(
                f"class name {c!r} cannot be a folder name; rename the class to write it as a folder"
            )


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists() or overwrite:
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    what = "is not empty" if out.is_dir() else "is a file"
    raise DataError(
        f"{out} already exists and {what}; choose another path or overwrite it (--overwrite)"
    )


def _replace(partial: Path, out: Path) -> None:
    """Move the finished ``partial`` folder to ``out``, removing what was there."""
    if out.is_dir() and not out.is_symlink():
        old = out.with_name(f".{out.name}.replaced-{uuid.uuid4().hex[:12]}")
        out.rename(old)
        partial.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.exists() or out.is_symlink():
            out.unlink()
        partial.rename(out)


def _items(dataset: ImageDataset, start: int, stop: int) -> list[Item]:
    """Items ``start..stop-1``, rendered as one block when the dataset can (``shapes``)."""
    render = getattr(dataset, "render_range", None)
    if callable(render):
        x, labels, attributes = render(start, stop)
        return [(x[k], int(labels[k]), attributes[k]) for k in range(stop - start)]
    return [dataset[i] for i in range(start, stop)]


def write_image_folder(
    dataset: ImageDataset,
    out: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write every item of ``dataset`` to the image folder ``out``; returns its absolute path.

    Layout: ``CLASS/NNNNNN.png`` (``NNNNNN`` the item index) when the dataset has classes,
    ``NNNNNN.png`` otherwise, and ``attributes.csv`` (``path,<attribute>,...``) when it has
    attributes. ``out`` must not exist or be empty unless ``overwrite``.
    """
    from PIL import Image

    out = Path(os.path.abspath(Path(out).expanduser()))
    _check_target(out, overwrite)
    classes = dataset.classes
    if classes is not None:
        _check_class_names(classes)
    partial = out.with_name(f"{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    with writing(out):
        partial.mkdir(parents=True)
    n, names = len(dataset), [a.name for a in dataset.attributes]
    digits = max(6, len(str(n - 1)))
    try:
        with writing(out):  # a full disk: one line; the partial folder is removed
            rows: list[list[str]] = []
            made: set[str] = set()
            for start in range(0, n, CHUNK):
                stop = min(start + CHUNK, n)
                for i, (x, label, attributes) in enumerate(_items(dataset, start, stop), start):
                    folder = classes[label] if classes is not None and label >= 0 else ""
                    if folder and folder not in made:
                        (partial / folder).mkdir()
                        made.add(folder)
                    rel = f"{folder}/{i:0{digits}d}.png" if folder else f"{i:0{digits}d}.png"
                    image = x.numpy().transpose(1, 2, 0)
                    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(
                        partial / rel, format="PNG"
                    )
                    values = zip(attributes.tolist(), dataset.attributes, strict=True)
                    rows.append([rel, *(_format_value(v, a.categories) for v, a in values)])
                if progress is not None:
                    progress(stop, n)
            if names:
                with open(partial / "attributes.csv", "w", newline="", encoding="utf-8") as f:
                    writer = csv.writer(f, lineterminator="\n")
                    writer.writerow(["path", *names])
                    writer.writerows(rows)
            _replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def write_shapes_folder(
    out: str | os.PathLike[str],
    n: int = 20000,
    size: int = 32,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``shapes:n=N,size=SIZE,seed=SEED`` as an image folder (see :func:`write_image_folder`);
    returns the folder's absolute path. Reopen it with ``folder:OUT``."""
    from innx.data.shapes import open_shapes

    dataset = open_shapes(n=str(n), size=str(size), seed=str(seed))
    return write_image_folder(dataset, out, progress, overwrite=overwrite)


def describe_dataset(spec: str) -> dict[str, object]:
    """``open_dataset(spec).describe()`` plus its ``fingerprint``: what ``innx data info`` shows."""
    from innx.data.spec import open_dataset

    dataset = open_dataset(spec)
    return {**dataset.describe(), "fingerprint": dataset.fingerprint()}
