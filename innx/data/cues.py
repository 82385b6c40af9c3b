"""``cues``: procedural cue-conflict images, a shape filled with an independent texture.

The paper's texture-bias study compares models that rely on shape with models that rely on texture;
here both cues are ground truth and independent, so a classifier of one cannot read it off the
other. Each image is one shape, filled with a texture in two tones of its colour, on a plain
background. Eight factors, independent and uniform, are its attributes, in this order:

============  ===========  ============================================================
name          kind         values
============  ===========  ============================================================
``shape``     categorical  :data:`SHAPES` (circle, cross, sector, square); the label
``texture``   categorical  :data:`TEXTURES` (checks, dots, plain, stripes)
``fg_color``  categorical  :data:`FG_COLORS`, bright saturated colours of the shape
``bg_color``  categorical  :data:`BG_COLORS`, dark or muted colours of the background
``scale``     continuous   :data:`SCALE_RANGE`: the radius of the circle the shape fits in,
                           in image widths
``x``, ``y``  continuous   :data:`POSITION_RANGE`: the shape's centre, in image widths
``rotation``  continuous   ``[0, 1)``: turns of the shape (and its texture), clockwise
============  ===========  ============================================================

Every shape lies inside the circle of radius ``scale`` about its centre (the sector, a disk with
a wedge cut out, is that circle's; the square touches it with its corners, the cross with the
outer corners of its arms), so the largest extent of a shape is the same at every rotation, and
the position range ``[max scale + margin, 1 - max scale - margin]`` (:data:`MARGIN`: 1 px at
32 px) keeps the whole shape inside the image, off its border pixels, whatever its scale and
rotation: position is independent of both.

Every shape covers the same area at the same scale, the square's ``2 scale²`` (:data:`AREA`: the
circle's radius is ``sqrt(2 / pi)`` of the scale, the sector's cut-out wedge ``2 pi - 4`` radians
(131°) wide, and the cross's bars reach ``1 / sqrt(10)`` of the scale to each side of their axes).
So how much texture an image shows says nothing of its shape: a texture model, whose confidence
grows with the texture it sees, would otherwise carry the shape in its logits (version 2, whose
triangle had 0.41 of the circle's area, did).

Textures lie in the image's frame: each is a fixed wallpaper that the shape is a window onto (it
does not turn or move with the shape), so a texture is a matter of its class alone, not of the
shape's pose, and an autoencoder's reconstruction keeps it (one that had to place turned stripes
to a pixel blurred them away). The period is :data:`PERIOD` image widths whatever the image size
(8 px at 32 px, 16 px at 64 px; two to three periods across a shape):
``stripes`` are parallel bars half a period wide, ``checks`` a checkerboard of squares half a
period on a side, ``dots`` round dots of radius :data:`DOT_RADIUS` periods on a square grid one
period apart. The pattern's "on" parts take the foreground colour and its "off" parts a tint of it
(:data:`OFF_TINT` of the way to white, :func:`off_color`); ``plain`` is the foreground colour
alone. A tint rather than a darker shade, because a dark shade would melt into the dark
backgrounds and cut the shape's outline into pieces: every background is far from every
foreground colour and every tint (RGB distance over 120), so the whole shape is always visible.
Category names are in alphabetical order, so a written folder
(:func:`innx.ops.data.folders.write_image_folder`) reopens with the same indices.

Image ``i`` of seed ``s`` depends on ``(s, i)`` only: its factors come from
``numpy.random.default_rng([s, i]).random(8)``, whatever batch, worker or ``n`` draws it. The
continuous factors are rounded to float32 before rendering, and rendering is a pure function of the
float32 attribute row (:func:`render_cues`), so a stored attribute row regenerates its image byte
for byte. Edges and texture are anti-aliased by 4×4 supersampling with integer coverage counts.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from innx.data import shapes
from innx.data.base import CATEGORICAL, CONTINUOUS, Attribute
from innx.data.procedural import SIZE_RANGE, ProceduralDataset, render_items
from innx.errors import ShapeError

GENERATOR_VERSION = 3
"""Bumped whenever the images a (seed, index) pair gives change; part of the fingerprint."""

SHAPES: tuple[str, ...] = ("circle", "cross", "sector", "square")
TEXTURES: tuple[str, ...] = ("checks", "dots", "plain", "stripes")
FG_COLORS: dict[str, tuple[int, int, int]] = {**shapes.FG_COLORS, "yellow": (250, 210, 0)}
"""The shapes dataset's colours; a deeper yellow, whose tint stays apart from it."""
BG_COLORS: dict[str, tuple[int, int, int]] = shapes.BG_COLORS
OFF_TINT = 0.55
"""How far the "off" parts of a texture go from the foreground colour towards white."""
SCALE_RANGE = (0.25, 0.375)
MARGIN = 1 / 32
"""The least distance from the shape to the image's edge, in image widths: 1 px at 32 px."""
POSITION_RANGE = (SCALE_RANGE[1] + MARGIN, 1.0 - SCALE_RANGE[1] - MARGIN)
PERIOD = 1 / 4
"""The texture period, in image widths."""
DOT_RADIUS = 0.3
"""The radius of a dot of the ``dots`` texture, in periods."""

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("shape", CATEGORICAL, SHAPES),
    Attribute("texture", CATEGORICAL, TEXTURES),
    Attribute("fg_color", CATEGORICAL, tuple(FG_COLORS)),
    Attribute("bg_color", CATEGORICAL, tuple(BG_COLORS)),
    Attribute("scale", CONTINUOUS),
    Attribute("x", CONTINUOUS),
    Attribute("y", CONTINUOUS),
    Attribute("rotation", CONTINUOUS),
)

_SUPERSAMPLE = 4
_COUNTS = np.array([len(SHAPES), len(TEXTURES), len(FG_COLORS), len(BG_COLORS)])
AREA = 2.0
"""The area of every shape, in units of the scale squared: the square's inside its circle."""
# Shape geometry, in units of the scale r (every shape fits in the circle of radius r, area 2 r²):
_CIRCLE_RADIUS = math.sqrt(AREA / math.pi)  # pi R² = 2
# sector: a disk less a wedge of half-angle pi - 2, so 4 radians are left (area 4 / 2 = 2); the
# wedge's edges are |v| = slope u, u > 0
_SECTOR_SLOPE = math.tan(math.pi - AREA)
_SQUARE_HALF_SIDE = math.sqrt(0.5)  # square: |u|, |v| <= r / sqrt(2), corners on the circle
_CROSS_HALF_WIDTH = 1 / math.sqrt(10)  # two bars of half-width w: 8 w sqrt(1 - w²) - 4 w² = 2
_CROSS_HALF_LENGTH = math.sqrt(1 - _CROSS_HALF_WIDTH**2)  # the ends' corners on the circle


def off_color(fg: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour of a texture's "off" parts on a shape of colour ``fg``: a tint of it."""
    r, g, b = (round(c + OFF_TINT * (255 - c)) for c in fg)
    return (r, g, b)


_FG = np.array(list(FG_COLORS.values()), dtype=np.uint16)
_OFF = np.array([off_color(c) for c in FG_COLORS.values()], dtype=np.uint16)
_BG = np.array(list(BG_COLORS.values()), dtype=np.uint16)


def cue_factors(seed: int, start: int, stop: int) -> NDArray[np.float32]:
    """The attribute rows of images ``start..stop-1`` of ``seed``: float32 ``[stop - start, 8]``.

    Row ``i`` depends on ``(seed, i)`` only (its own ``default_rng([seed, i])``).
    """
    rows = np.empty((max(stop - start, 0), len(ATTRIBUTES)), dtype=np.float32)
    for row, i in enumerate(range(start, stop)):
        u = np.random.default_rng([seed, i]).random(8)
        rows[row, :4] = [min(int(u[k] * c), c - 1) for k, c in enumerate(_COUNTS.tolist())]
        rows[row, 4] = SCALE_RANGE[0] + u[4] * (SCALE_RANGE[1] - SCALE_RANGE[0])
        rows[row, 5:7] = POSITION_RANGE[0] + u[5:7] * (POSITION_RANGE[1] - POSITION_RANGE[0])
        rows[row, 7] = u[7]
    return rows


def _inside(
    name: str, u: NDArray[np.float32], v: NDArray[np.float32], r: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """Whether the points ``(u, v)`` of the shape's frame lie inside shape ``name`` of scale ``r``."""
    if name == "circle":
        radius = r * np.float32(_CIRCLE_RADIUS)
        return u * u + v * v <= radius * radius
    if name == "sector":  # the wedge points along u: to the right at rotation 0
        wedge = (u > 0) & (np.abs(v) < np.float32(_SECTOR_SLOPE) * u)
        return (u * u + v * v <= r * r) & ~wedge
    if name == "square":
        half = r * np.float32(_SQUARE_HALF_SIDE)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    au, av = np.abs(u), np.abs(v)  # cross
    w, length = r * np.float32(_CROSS_HALF_WIDTH), r * np.float32(_CROSS_HALF_LENGTH)
    return ((au <= length) & (av <= w)) | ((av <= length) & (au <= w))


def _on(name: str, u: NDArray[np.float32], v: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Whether the points ``(u, v)`` (in periods, from the image's corner) are "on" in texture
    ``name`` (not ``plain``): "on" bars, squares and dots are centred on whole periods."""
    quarter = np.float32(0.25)
    if name == "stripes":
        return np.abs(u - np.rint(u)) < quarter
    if name == "checks":
        return (np.abs(u - np.rint(u)) < quarter) == (np.abs(v - np.rint(v)) < quarter)
    a, b = u - np.rint(u), v - np.rint(v)  # dots: offsets from the nearest grid point
    return a * a + b * b <= np.float32(DOT_RADIUS**2)


def _block_sum(mask: NDArray[np.bool_], size: int) -> NDArray[np.int32]:
    """How many of the 4×4 subsamples of each pixel are set: int32 ``[B, S, S]``."""
    ss = _SUPERSAMPLE
    # Sum the ss×ss blocks with plain adds of strided views: much faster than sum(axis=(2, 4)).
    cells = mask.view(np.uint8).reshape(mask.shape[0], size, ss, size, ss)
    across = cells[..., 0].astype(np.int32)
    for k in range(1, ss):
        across += cells[..., k]
    count = across[:, :, 0]
    for k in range(1, ss):
        count += across[:, :, k]
    return count


def _coverage(attrs: NDArray[np.float32], size: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Subsample counts of each pixel inside the shape, and inside and "on": int32 ``[B, S, S]``.

    Rows are rendered in groups of one shape and texture, the same arithmetic for a row whatever
    its group, so the counts of a row do not depend on the other rows.
    """
    b, ss = attrs.shape[0], _SUPERSAMPLE
    p = np.float32(1 / PERIOD)
    grid = (np.arange(size * ss, dtype=np.float32) + np.float32(0.5)) / np.float32(size * ss)
    turns = [2 * math.pi * float(t) for t in attrs[:, 7]]  # scalar libm: the same in any batch
    cos = np.array([math.cos(a) for a in turns], dtype=np.float32)[:, None, None]
    sin = np.array([math.sin(a) for a in turns], dtype=np.float32)[:, None, None]
    dx = (grid[None] - attrs[:, 5][:, None])[:, None, :] * p  # [B, 1, W], in periods
    dy = (grid[None] - attrs[:, 6][:, None])[:, :, None] * p  # [B, H, 1]
    r = attrs[:, 4][:, None, None] * p
    key = attrs[:, 0].astype(np.int64) * len(TEXTURES) + attrs[:, 1].astype(np.int64)
    inside_count = np.empty((b, size, size), dtype=np.int32)
    on_count = np.empty((b, size, size), dtype=np.int32)
    for k in np.unique(key).tolist():
        sel = np.nonzero(key == k)[0]
        c, s, x, y = cos[sel], sin[sel], dx[sel], dy[sel]
        u = c * x + s * y  # the shape's frame: the image turned back by the rotation
        v = c * y - s * x
        inside = _inside(SHAPES[k // len(TEXTURES)], u, v, r[sel])
        inside_count[sel] = _block_sum(inside, size)
        texture = TEXTURES[k % len(TEXTURES)]
        if texture == "plain":
            on_count[sel] = inside_count[sel]
        else:  # the texture lies in the image's frame: the shape is a window onto it
            on = _on(texture, grid[None, None, :] * p, grid[None, :, None] * p)
            on_count[sel] = _block_sum(inside & on, size)
    return inside_count, on_count


def render_cues(attributes: ArrayLike, size: int) -> NDArray[np.uint8]:
    """Render attribute rows ``[B, 8]`` (the order of :data:`ATTRIBUTES`) as uint8 ``[B, 3, S, S]``.

    A pure function of the float32 rows: the same row gives the same bytes in any batch. Each
    pixel is ``(bg * (16 - c) + fg * a + off * (c - a) + 8) // 16`` with ``c`` its subsamples
    inside the shape and ``a`` those of them on the texture's "on" parts.
    """
    attrs = np.asarray(attributes, dtype=np.float32)
    if attrs.ndim != 2 or attrs.shape[1] != len(ATTRIBUTES):
        raise ShapeError(f"cue attributes must be [B, {len(ATTRIBUTES)}], got {attrs.shape}")
    if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ShapeError(f"size must be in {SIZE_RANGE[0]}..{SIZE_RANGE[1]}, got {size}")
    codes = attrs[:, :4].astype(np.int64)
    if (attrs[:, :4] != codes).any() or (codes < 0).any() or (codes >= _COUNTS).any():
        raise ShapeError("shape, texture, fg_color and bg_color must be valid category indices")
    inside, on = _coverage(attrs, size)
    c, a = inside.astype(np.uint16)[:, None], on.astype(np.uint16)[:, None]  # [B, 1, S, S]
    n = np.uint16(_SUPERSAMPLE * _SUPERSAMPLE)  # 255 * 16 + 8 fits uint16
    fg = _FG[codes[:, 2]][:, :, None, None]  # [B, 3, 1, 1]
    off = _OFF[codes[:, 2]][:, :, None, None]
    bg = _BG[codes[:, 3]][:, :, None, None]
    rgb = (bg * (n - c) + fg * a + off * (c - a) + n // 2) // n  # [B, 3, S, S]
    return rgb.astype(np.uint8)


def render_cue(attributes: ArrayLike, size: int) -> NDArray[np.uint8]:
    """Render one attribute row ``[8]`` as uint8 ``[3, S, S]`` (see :func:`render_cues`)."""
    return render_cues(np.asarray(attributes, dtype=np.float32)[None], size)[0]


class CuesDataset(ProceduralDataset):
    """``n`` procedural cue-conflict images of ``size`` px from ``seed``; see the module docstring.

    Items are rendered on demand; :meth:`render_range` renders a contiguous block at once (what
    writing the whole dataset should use).

    Example::

        >>> ds = CuesDataset(n=100, size=32, seed=0)
        >>> x, label, attributes = ds[7]
        >>> x.shape, ds.classes[label] == SHAPES[label], TEXTURES[int(attributes[1])] in TEXTURES
        (torch.Size([3, 32, 32]), True, True)
        >>> bool((torch.from_numpy(render_cue(attributes, 32)) == x).all())
        True
    """

    name = "cues"
    default_n = 20000
    generator = GENERATOR_VERSION
    identity: ClassVar[dict[str, Any]] = {"dataset": "cues"}
    classes = SHAPES
    attributes = ATTRIBUTES

    def __init__(self, n: int = 20000, size: int = 32, seed: int = 0) -> None:
        super().__init__(n, size, seed)

    def render_range(
        self, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``start..stop-1`` at once: ``x`` uint8 ``[B, 3, S, S]``, labels int64 ``[B]``,
        attributes float32 ``[B, 8]``; identical to indexing them one by one."""
        self.check_range(start, stop)
        return render_items(cue_factors(self.seed, start, stop), self.size, render_cues)


def open_cues(location: str | None = None, **options: str) -> CuesDataset:
    """Factory of ``cues:n=20000,size=32,seed=0`` (those are the defaults)."""
    return CuesDataset.open(location, options)
