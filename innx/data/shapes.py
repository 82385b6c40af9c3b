"""``shapes``: the embedded default dataset, procedural RGB images with ground-truth factors.

Each image is one filled shape on a plain background. Six factors, independent and uniform, are
its attributes, in this order:

============  ===========  ============================================================
name          kind         values
============  ===========  ============================================================
``shape``     categorical  :data:`SHAPES` (circle, cross, square, triangle); the label
``fg_color``  categorical  :data:`FG_COLORS`, bright saturated colours of the shape
``bg_color``  categorical  :data:`BG_COLORS`, dark or muted colours of the background
``scale``     continuous   :data:`SCALE_RANGE`: half the shape's extent, in image widths
``x``, ``y``  continuous   :data:`POSITION_RANGE`: the shape's centre, in image widths
============  ===========  ============================================================

The position range is ``[max scale, 1 - max scale]`` whatever the scale, so the shape always lies
fully inside the image and position stays independent of scale. Every background colour is far
from every foreground colour (RGB distance over 120), so the shape is always visible. Category
names are listed in alphabetical order, so a folder written with class subfolders and category
names (:func:`innx.ops.data.folders.write_shapes_folder`) reopens with the same indices.

Image ``i`` of seed ``s`` depends on ``(s, i)`` only: its factors come from
``numpy.random.default_rng([s, i]).random(6)``, whatever batch, worker or ``n`` draws it. The
continuous factors are rounded to float32 before rendering, and rendering is a pure function of the
float32 attribute row (:func:`render_shapes`), so a stored attribute row regenerates its image
byte for byte. Edges are anti-aliased by 4×4 supersampling with integer coverage counts.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from innx.data.base import CATEGORICAL, CONTINUOUS, Attribute
from innx.data.procedural import SIZE_RANGE, ProceduralDataset, render_items
from innx.errors import ShapeError

GENERATOR_VERSION = 1
"""Bumped whenever the images a (seed, index) pair gives change; part of the fingerprint."""

SHAPES: tuple[str, ...] = ("circle", "cross", "square", "triangle")
FG_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (40, 110, 255),
    "cyan": (0, 220, 230),
    "green": (40, 210, 60),
    "magenta": (230, 50, 230),
    "red": (240, 40, 40),
    "yellow": (250, 220, 30),
}
BG_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "gray": (80, 80, 80),
    "maroon": (90, 20, 30),
    "navy": (20, 25, 90),
    "olive": (85, 85, 20),
    "teal": (10, 70, 70),
}
SCALE_RANGE = (0.20, 0.34)
POSITION_RANGE = (SCALE_RANGE[1], 1.0 - SCALE_RANGE[1])

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("shape", CATEGORICAL, SHAPES),
    Attribute("fg_color", CATEGORICAL, tuple(FG_COLORS)),
    Attribute("bg_color", CATEGORICAL, tuple(BG_COLORS)),
    Attribute("scale", CONTINUOUS),
    Attribute("x", CONTINUOUS),
    Attribute("y", CONTINUOUS),
)

_SUPERSAMPLE = 4
_FG = np.array(list(FG_COLORS.values()), dtype=np.int32)
_BG = np.array(list(BG_COLORS.values()), dtype=np.int32)
# Shape geometry, in units of the scale r (the half-extent of every shape's bounding box):
_SQUARE_HALF_SIDE = 0.8  # square: |dx|, |dy| <= 0.8 r
_CROSS_HALF_WIDTH = 0.33  # cross: two bars, half-length r, half-width 0.33 r
_TRIANGLE_BASE = 0.8  # triangle: apex (0, -r), base corners (±r, 0.8 r)


def shape_factors(seed: int, start: int, stop: int) -> NDArray[np.float32]:
    """The attribute rows of images ``start..stop-1`` of ``seed``: float32 ``[stop - start, 6]``.

    Row ``i`` depends on ``(seed, i)`` only (its own ``default_rng([seed, i])``).
    """
    rows = np.empty((max(stop - start, 0), len(ATTRIBUTES)), dtype=np.float32)
    counts = (len(SHAPES), len(FG_COLORS), len(BG_COLORS))
    for row, i in enumerate(range(start, stop)):
        u = np.random.default_rng([seed, i]).random(6)
        rows[row, :3] = [min(int(u[k] * c), c - 1) for k, c in enumerate(counts)]
        rows[row, 3] = SCALE_RANGE[0] + u[3] * (SCALE_RANGE[1] - SCALE_RANGE[0])
        rows[row, 4:] = POSITION_RANGE[0] + u[4:] * (POSITION_RANGE[1] - POSITION_RANGE[0])
    return rows


def _coverage(attrs: NDArray[np.float32], size: int) -> NDArray[np.int32]:
    """How many of the 4×4 subsamples of each pixel lie inside the shape: int32 ``[B, S, S]``."""
    b, ss = attrs.shape[0], _SUPERSAMPLE
    u = ((np.arange(size * ss, dtype=np.float32) + np.float32(0.5)) / np.float32(size * ss))[None]
    shape = attrs[:, 0].astype(np.int64)
    r = attrs[:, 3][:, None, None]
    dx = u[:, None, :] - attrs[:, 4][:, None, None]  # [B, 1, W]
    dy = u[:, :, None] - attrs[:, 5][:, None, None]  # [B, H, 1]
    inside = np.empty((b, size * ss, size * ss), dtype=bool)
    for k, name in enumerate(SHAPES):
        sel = np.nonzero(shape == k)[0]
        if sel.size == 0:
            continue
        x, y, s = dx[sel], dy[sel], r[sel]
        if name == "circle":
            inside[sel] = x * x + y * y <= s * s
        elif name == "square":
            half = s * np.float32(_SQUARE_HALF_SIDE)
            inside[sel] = (np.abs(x) <= half) & (np.abs(y) <= half)
        elif name == "cross":
            w = s * np.float32(_CROSS_HALF_WIDTH)
            ax, ay = np.abs(x), np.abs(y)
            inside[sel] = ((ax <= s) & (ay <= w)) | ((ay <= s) & (ax <= w))
        else:  # triangle: between the two slanted edges, above the base
            slope = np.float32(1.0 + _TRIANGLE_BASE)  # height over half-width of the base
            inside[sel] = (slope * np.abs(x) - y <= s) & (y <= s * np.float32(_TRIANGLE_BASE))
    # Sum the ss×ss blocks with plain adds of strided views: much faster than sum(axis=(2, 4)).
    cells = inside.view(np.uint8).reshape(b, size, ss, size, ss)
    across = cells[..., 0].astype(np.int32)
    for k in range(1, ss):
        across += cells[..., k]
    count = across[:, :, 0]
    for k in range(1, ss):
        count += across[:, :, k]
    return count


def render_shapes(attributes: ArrayLike, size: int) -> NDArray[np.uint8]:
    """Render attribute rows ``[B, 6]`` (the order of :data:`ATTRIBUTES`) as uint8 ``[B, 3, S, S]``.

    A pure function of the float32 rows: the same row gives the same bytes in any batch.
    Each pixel is ``(bg * (16 - c) + fg * c + 8) // 16`` with ``c`` its coverage count.
    """
    attrs = np.asarray(attributes, dtype=np.float32)
    if attrs.ndim != 2 or attrs.shape[1] != len(ATTRIBUTES):
        raise ShapeError(f"shape attributes must be [B, {len(ATTRIBUTES)}], got {attrs.shape}")
    if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ShapeError(f"size must be in {SIZE_RANGE[0]}..{SIZE_RANGE[1]}, got {size}")
    codes = attrs[:, :3].astype(np.int64)
    limits = np.array([len(SHAPES), len(FG_COLORS), len(BG_COLORS)])
    if (attrs[:, :3] != codes).any() or (codes < 0).any() or (codes >= limits).any():
        raise ShapeError("shape, fg_color and bg_color must be valid category indices")
    count = _coverage(attrs, size).astype(np.uint16)[:, None]  # [B, 1, S, S]
    n = np.uint16(_SUPERSAMPLE * _SUPERSAMPLE)  # 255 * 16 + 8 fits uint16
    fg = _FG[codes[:, 1]].astype(np.uint16)[:, :, None, None]  # [B, 3, 1, 1]
    bg = _BG[codes[:, 2]].astype(np.uint16)[:, :, None, None]
    rgb = (bg * (n - count) + fg * count + n // 2) // n  # [B, 3, S, S]
    return rgb.astype(np.uint8)


def render_shape(attributes: ArrayLike, size: int) -> NDArray[np.uint8]:
    """Render one attribute row ``[6]`` as uint8 ``[3, S, S]`` (see :func:`render_shapes`)."""
    return render_shapes(np.asarray(attributes, dtype=np.float32)[None], size)[0]


class ShapesDataset(ProceduralDataset):
    """``n`` procedural images of ``size`` px from ``seed``; see the module docstring.

    Items are rendered on demand; :meth:`render_range` renders a contiguous block at once (what
    writing the whole dataset should use: about 20 000 images at 32 px per second and core).

    Example::

        >>> ds = ShapesDataset(n=100, size=32, seed=0)
        >>> x, label, attributes = ds[7]
        >>> x.shape, x.dtype, ds.classes[label] == SHAPES[label], attributes.shape
        (torch.Size([3, 32, 32]), torch.uint8, True, torch.Size([6]))
        >>> bool((torch.from_numpy(render_shape(attributes, 32)) == x).all())
        True
    """

    name = "shapes"
    default_n = 20000
    generator = GENERATOR_VERSION
    classes = SHAPES
    attributes = ATTRIBUTES

    def __init__(self, n: int = 20000, size: int = 32, seed: int = 0) -> None:
        super().__init__(n, size, seed)

    def render_range(
        self, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``start..stop-1`` at once: ``x`` uint8 ``[B, 3, S, S]``, labels int64 ``[B]``,
        attributes float32 ``[B, 6]``; identical to indexing them one by one.

        ``render_range(0, len(ds))`` materialises the whole dataset (20 000 images at 32 px in
        about a second); rendering goes in blocks of 256 so memory stays bounded.
        """
        self.check_range(start, stop)
        return render_items(shape_factors(self.seed, start, stop), self.size, render_shapes)


def open_shapes(location: str | None = None, **options: str) -> ShapesDataset:
    """Factory of ``shapes:n=20000,size=32,seed=0`` (those are the defaults)."""
    return ShapesDataset.open(location, options)
