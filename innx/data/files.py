"""Helpers shared by the datasets that read local files: finding them, decoding images, errors."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

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
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert(mode), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist; restore it or remove it") from None
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            f"cannot read image {path} ({reason}); replace the file or remove it"
        ) from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
