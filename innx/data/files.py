"""Helpers shared by the datasets that read local files: finding them, decoding images, errors."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from innx.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""Image files a folder dataset reads (case-insensitive)."""


def first_existing(candidates: Sequence[Path]) -> Path | None:
    """The first of ``candidates`` that is a file, or ``None``."""
    return next((p for p in candidates if p.is_file()), None)


def missing_files(what: str, missing: Sequence[str | Path], how: str) -> DataError:
    """The error for absent files: ``"<what> expects <files>, not found; <how>"``, naming every
    missing file (the first six, then a count) and how to get them."""
    names = [str(p) for p in missing]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return DataError(f"{what} expects {shown}, not found; {how}")


def local_file(dataset: str, file: str | os.PathLike[str], how: str) -> Path:
    """The absolute path of a dataset's single local file, or the error naming it and ``how``
    to get it."""
    path = Path(os.path.abspath(Path(file).expanduser()))
    if not path.is_file():
        raise missing_files(dataset, [path], how)
    return path


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when it ends in ``.gz``; ``DataError`` naming the file
    when it cannot be read."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}; download it again") from exc


def read_image(path: str | os.PathLike[str], mode: str = "RGB") -> torch.Tensor:
    """Decode an image file to uint8 ``[C, H, W]`` (``mode`` ``"RGB"``: C = 3, ``"L"``: C = 1).

    A missing, unreadable or corrupt file raises :class:`DataError` naming it.
    """
    from PIL import Image

    with _image_errors(path), Image.open(path) as img:
        array = np.asarray(img.convert(mode), dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header alone (PIL opens files lazily: the pixels are
    not decoded). A missing, unreadable or corrupt file raises :class:`DataError` naming it."""
    from PIL import Image

    with _image_errors(path), Image.open(path) as img:
        width, height = img.size
    return height, width


@contextmanager
def _image_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """PIL's errors on ``path`` as a :class:`DataError` naming the file and the fix."""
    from PIL import UnidentifiedImageError

    try:
        yield
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist; restore it or remove it") from None
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            f"cannot read image {path} ({reason}); replace the file or remove it"
        ) from exc


class LazyImages:
    """All images of a dataset in memory, read on first use and once per process.

    Datasets whose files hold every image in one array (MNIST, CIFAR-10) mix this in and implement
    :meth:`read_images`. A pickled copy (a DataLoader worker) leaves the array behind and reads it
    again when it needs it.
    """

    _images: NDArray[np.uint8] | None = None

    def read_images(self) -> NDArray[np.uint8]:
        """Read every image from disk; raise :class:`DataError` when the files changed."""
        raise NotImplementedError

    def images(self) -> NDArray[np.uint8]:
        """All images, read on first call (once per process)."""
        if self._images is None:
            self._images = self.read_images()
        return self._images

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = None  # reloaded lazily in the worker
        return state
