"""Labelled image grids as PNG, animations as GIF, written atomically: the drawing of
``innx render``.

A grid is ``rows × cols`` square cells of ``cell`` pixels, ``PAD`` pixels apart and from the border,
with an optional band of ``LABEL_H`` pixels on top for column captions and one of ``LABEL_W``
pixels on the left for row captions::

    width  = (LABEL_W if row captions) + PAD + cols * (cell + PAD)
    height = (LABEL_H if column captions) + PAD + rows * (cell + PAD)

Images smaller than ``MIN_CELL`` are enlarged by a whole factor (nearest neighbour), so that a
32-pixel image fills a 64-pixel cell. Captions use PIL's default font; long ones are cut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from innx.errors import ConfigError
from innx.writes import atomic_write

if TYPE_CHECKING:
    from PIL import Image

MIN_CELL = 64
"""Cells are at least this many pixels wide: small images are enlarged by a whole factor."""
PAD = 2
"""Pixels between cells, and between the cells and the border."""
LABEL_H = 14
"""Height of the band of column captions."""
LABEL_W = 72
"""Width of the band of row captions."""
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
FRAME_MS = 80
"""Default duration of one GIF frame (12.5 frames per second)."""

Cell = torch.Tensor | None
"""One image ``[C, S, S]`` in [0, 1] (C = 1 or 3), or ``None`` for an empty cell."""


def cell_size(image_size: int) -> int:
    """Side of a cell for images of ``image_size`` pixels: the smallest whole multiple of it
    that is at least :data:`MIN_CELL`."""
    return image_size * max(1, math.ceil(MIN_CELL / image_size))


def grid_size(
    rows: int, cols: int, cell: int, *, row_labels: bool, col_labels: bool
) -> tuple[int, int]:
    """``(width, height)`` in pixels of a grid (see the module's docstring)."""
    width = (LABEL_W if row_labels else 0) + PAD + cols * (cell + PAD)
    height = (LABEL_H if col_labels else 0) + PAD + rows * (cell + PAD)
    return width, height


def draw_grid(
    cells: Sequence[Sequence[Cell]],
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> Image.Image:
    """An RGB image of ``cells`` (a list of rows of equal length), captioned.

    Every image must have the same size; ``None`` leaves its cell blank.
    """
    from PIL import Image, ImageDraw

    n_rows, n_cols = len(cells), len(cells[0]) if cells else 0
    if any(len(row) != n_cols for row in cells):
        raise ValueError("every row of a grid needs the same number of cells")
    for labels, n, what in ((row_labels, n_rows, "row"), (col_labels, n_cols, "column")):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} {what} captions for {n} {what}s")
    sizes = {int(c.shape[-1]) for row in cells for c in row if c is not None}
    if len(sizes) > 1:
        raise ValueError(f"the images of a grid must share one size, got {sorted(sizes)}")
    cell = cell_size(sizes.pop() if sizes else MIN_CELL)
    width, height = grid_size(
        n_rows, n_cols, cell, row_labels=row_labels is not None, col_labels=col_labels is not None
    )
    left = LABEL_W if row_labels is not None else 0
    top = LABEL_H if col_labels is not None else 0
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    for i, row in enumerate(cells):
        for j, image in enumerate(row):
            if image is None:
                continue
            y, x = top + PAD + i * (cell + PAD), left + PAD + j * (cell + PAD)
            canvas[y : y + cell, x : x + cell] = _pixels(image, cell)
    picture = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(picture)
    for j, text in enumerate(col_labels or ()):
        x = left + PAD + j * (cell + PAD)
        _caption(draw, text, (x, 1), cell)
    for i, text in enumerate(row_labels or ()):
        y = top + PAD + i * (cell + PAD) + (cell - LABEL_H) // 2
        _caption(draw, text, (2, y), LABEL_W - 4)
    return picture


def _pixels(image: torch.Tensor, cell: int) -> np.ndarray:
    """``[C, S, S]`` in [0, 1] → ``uint8 [cell, cell, 3]``, enlarged by repeating pixels."""
    x = image.detach().float().cpu().clamp(0, 1)
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"a grid cell must be [1 or 3, S, S], got {tuple(x.shape)}")
    x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    factor = cell // int(x.shape[-1])
    x = x.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)
    return (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _caption(draw: object, text: str, at: tuple[int, int], max_width: int) -> None:
    """``text`` at ``at``, cut to ``max_width`` pixels."""
    from PIL import ImageDraw, ImageFont

    assert isinstance(draw, ImageDraw.ImageDraw)
    font = ImageFont.load_default()
    while text and draw.textlength(text, font=font) > max_width:
        text = text[:-2] + "." if len(text) > 2 else ""
    draw.text(at, text, fill=TEXT, font=font)


# -- files ----------------------------------------------------------------------------------------


def check_outputs(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse outputs that exist (unless ``overwrite``) or that are folders."""
    for path in paths:
        if path.is_dir():
            raise ConfigError(f"{path} is a folder; give -o a file name")
        if path.exists() and not overwrite:
            raise ConfigError(f"{path} exists; pass --overwrite to replace it")


def check_suffix(path: Path, suffix: str) -> None:
    """Refuse an output whose name does not end in ``suffix`` (``.png`` or ``.gif``)."""
    if path.suffix.lower() != suffix:
        raise ConfigError(f"-o {path} must end in {suffix}, e.g. {path.with_suffix(suffix).name}")


def save_png(picture: Image.Image, path: Path) -> Path:
    """Write ``picture`` to ``path`` as PNG, atomically."""
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
    return path


def save_gif(frames: Sequence[Image.Image], path: Path, frame_ms: int = FRAME_MS) -> Path:
    """Write ``frames`` to ``path`` as a looping GIF, atomically. Consecutive frames must
    differ (GIF writers merge equal ones)."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    first, rest = frames[0], list(frames[1:])
    atomic_write(
        path,
        lambda tmp: first.save(
            tmp, format="GIF", save_all=True, append_images=rest, duration=frame_ms, loop=0
        ),
    )
    return path
