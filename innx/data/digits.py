"""``digits``: procedural handwriting-like digits 0-9, a dataset with rich within-class variation.

Each image is one digit drawn as anti-aliased strokes in a bright colour on a plain background.
Where ``shapes`` varies a few factors of a fixed figure, here no two images of a class share a
skeleton: each digit has two or three styles (:data:`GLYPHS`: 7 with and without a crossbar, open
and closed 4, ...), and each image jitters the style's control points and deforms it. The
attributes, in this order:

=============  ===========  ======================================================================
name           kind         values
=============  ===========  ======================================================================
``digit``      categorical  :data:`DIGITS` ("0" .. "9"); the label
``fg_color``   categorical  :data:`FG_COLORS`, bright colours of the strokes
``bg_color``   categorical  :data:`BG_COLORS`, dark or muted colours of the background
``thickness``  continuous   :data:`THICKNESS_RANGE`: stroke width, in image widths
``slant``      continuous   :data:`SLANT_RANGE`: shear, x shift per unit of height (> 0 leans right)
``scale``      continuous   :data:`SCALE_RANGE`: glyph height before deformation, in image widths
``x``, ``y``   continuous   centre of the glyph's bounding box (strokes included), in image widths
=============  ===========  ======================================================================

The first six are drawn independently and uniformly. Drawn per image too, but not attributes: the
style, a rotation (:data:`ROTATION_RANGE`), independent x and y stretches (:data:`STRETCH_RANGE`)
and a Gaussian jitter of every control point (:data:`JITTER` glyph heights). The position is
uniform among those that keep the whole glyph at least :data:`MARGIN` inside the image, so the
range of ``x`` and ``y`` narrows as the glyph grows; a glyph that would not fit (under 1%) is
shrunk and its ``scale`` says so. The colours are those of :mod:`innx.data.shapes` (every
background far from every foreground); category names are in alphabetical order.

Image ``i`` of seed ``s`` depends on ``(s, i)`` only: everything comes from its own
``numpy.random.default_rng([s, i])``, whatever batch, worker or ``n`` draws it, and the geometry
does not depend on the image size. Unlike ``shapes``, the attribute row alone does *not*
regenerate the image (style, rotation, stretch and jitter are not in it): :func:`digit_glyphs`
regenerates rows and strokes from ``(seed, i)``, and :func:`render_glyphs` is a pure function of
both. A stroke is the set of points within half the thickness of its segments (curves are
Catmull-Rom splines through the control points, cut into pieces of at most :data:`SEGMENT` glyph
heights), anti-aliased by 4×4 supersampling with integer coverage counts.

A written folder (:func:`innx.ops.data.folders.write_image_folder`) reopens as ``folder:`` with the same
images, labels and attribute values; its ``digit`` column reads back as a continuous attribute,
since the category names are numbers (category ``k`` is named ``"k"``, so the values agree).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from innx.data.base import CATEGORICAL, CONTINUOUS, Attribute
from innx.data.procedural import SIZE_RANGE, ProceduralDataset
from innx.data.shapes import BG_COLORS, FG_COLORS
from innx.errors import ShapeError

GENERATOR_VERSION = 1
"""Bumped whenever the images a (seed, index) pair gives change; part of the fingerprint."""

DIGITS: tuple[str, ...] = tuple("0123456789")
THICKNESS_RANGE = (0.065, 0.11)
SLANT_RANGE = (-0.35, 0.35)
SCALE_RANGE = (0.5, 0.72)
ROTATION_RANGE = (-12.0, 12.0)  # degrees
STRETCH_RANGE = (0.85, 1.15)  # independent factors of width and height
JITTER = 0.03  # standard deviation of each control point's offset, in glyph heights
MARGIN = 1 / 32  # the glyph keeps this far (image widths) from every edge: 1 px at 32 px
SEGMENT = 0.05  # longest chord of a stroke piece, in glyph heights

GLYPHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "0": (
        ("o 3,0 5.2,1.3 6,5 5.2,8.7 3,10 0.8,8.7 0,5 0.8,1.3",),
        ("o 3,0 5.2,1.3 6,5 5.2,8.7 3,10 0.8,8.7 0,5 0.8,1.3", "5,1.5 1,8.5"),
    ),
    "1": (("3.2,0 2.8,10",), ("0.8,2.2 3.2,0! 2.8,10",), ("0.8,2.2 3.2,0! 2.8,10", "0.8,10 5,10")),
    "2": (
        ("0.3,2.5 2,0.3 4,0.2 5.7,2 5.2,4.5 2.5,7.5 0,10! 6,10",),
        (
            "0.3,2.5 2,0.3 4,0.2 5.7,2 5.2,4.5 2.5,7.5 1,9.3 0,8.6 0.5,7.6 1.8,7.9 2.8,9.3 4,9.9 6,9.8",
        ),
    ),
    "3": (
        ("0.3,1.5 2.5,0 5,0.6 5.4,2.6 3.8,4.4 2,4.8! 4.2,5.2 5.8,7 5.2,9.2 2.8,10 0.2,8.8",),
        ("0.3,0 5.7,0! 2.5,4! 4.8,4.8 5.8,7 5.2,9.2 2.8,10 0.2,8.8",),
    ),
    "4": (("1.5,0 0,7! 6,7", "4.5,2.5 4.5,10"), ("4.5,10 4.5,0! 0,7! 6,7",)),
    "5": (
        ("5.5,0 1,0! 0.5,4.3! 2.8,3.6 5.2,4.6 5.8,7.2 4.6,9.4 2.4,10 0.2,9",),
        ("1,0 0.5,4.3! 2.8,3.6 5.2,4.6 5.8,7.2 4.6,9.4 2.4,10 0.2,9", "1.2,0 5.8,-0.2"),
    ),
    "6": (
        ("5,0.6 3,0 1,1.6 0,5 0.4,8.2 2.6,10 4.9,9.2 5.8,7 4.8,5 2.8,4.7 0.5,6.2",),
        ("4.6,0 1,5.5 0.4,8.2 2.6,10 4.9,9.2 5.8,7 4.8,5 2.8,4.7 0.8,5.8",),
    ),
    "7": (("0,0 6,0! 2,10",), ("0,0 6,0! 2,10", "2.2,5 5.8,5"), ("0,1.8 0,0! 6,0! 2.5,10",)),
    "8": (
        ("o 3,4.8 5,3.3 5,1.2 3,0 1,1.2 1,3.3 3,4.8 5.6,6.8 5.3,9.1 3,10 0.7,9.1 0.4,6.8",),
        (
            "o 3,0 4.9,1 4.9,3.7 3,4.8 1.1,3.7 1.1,1",
            "o 3,4.8 5.6,5.9 6,7.9 4.6,9.7 3,10 1.4,9.7 0,7.9 0.4,5.9",
        ),
    ),
    "9": (
        ("o 5.6,2.5 4.5,0.4 2.5,0 0.5,1 0,3 1,4.8 3.2,5.2 5.4,4", "5.7,1.5 5,10"),
        (
            "o 5.6,2.5 4.5,0.4 2.5,0 0.5,1 0,3 1,4.8 3.2,5.2 5.4,4",
            "5.7,1.5 5.7,6 4.6,9 2.6,10 0.6,9.2",
        ),
    ),
}
"""Styles of each digit: strokes of control points ``x,y`` on a 6 wide, 10 high grid (y down).
A stroke is a Catmull-Rom spline through its points; ``!`` makes a point a sharp corner (both
sides are then separate splines, a straight line between two corners or ends); a stroke that
starts with ``o`` is closed."""

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("digit", CATEGORICAL, DIGITS),
    Attribute("fg_color", CATEGORICAL, tuple(FG_COLORS)),
    Attribute("bg_color", CATEGORICAL, tuple(BG_COLORS)),
    Attribute("thickness", CONTINUOUS),
    Attribute("slant", CONTINUOUS),
    Attribute("scale", CONTINUOUS),
    Attribute("x", CONTINUOUS),
    Attribute("y", CONTINUOUS),
)

_SUPERSAMPLE = 4
_BLOCK_PIXELS = 64 * 32 * 32  # pixels rendered at once (64 images at 32 px: fast, bounded memory)
_FG = np.array(list(FG_COLORS.values()), dtype=np.int32)
_BG = np.array(list(BG_COLORS.values()), dtype=np.int32)


class _Style:
    """One style of a digit, parsed from :data:`GLYPHS`: its control ``points`` ``[P, 2]`` (glyph
    heights, centred), a matrix ``extend`` ``[E, P]`` that adds the phantom end points of open
    splines, and the control points ``spans`` ``[K, 4]`` (rows of ``extend``) of each span."""

    def __init__(self, strokes: tuple[str, ...]) -> None:
        points: list[tuple[float, float]] = []
        phantoms: list[tuple[int, int]] = []  # 2 * points[a] - points[b]
        spans: list[list[int]] = []
        for stroke in strokes:
            closed = stroke.startswith("o ")
            tokens = stroke.removeprefix("o ").split()
            first = len(points)
            corners = [k for k, token in enumerate(tokens) if token.endswith("!")]
            for token in tokens:
                x, y = (float(v) for v in token.rstrip("!").split(","))
                points.append(((x - 3.0) / 10.0, (y - 5.0) / 10.0))
            if closed:
                ring = [first + k for k in range(len(tokens))]
                spans += [
                    [ring[(j + d) % len(ring)] for d in (-1, 0, 1, 2)] for j in range(len(ring))
                ]
                continue
            bounds = [0, *corners, len(tokens) - 1]
            for lo, hi in itertools.pairwise(bounds):
                piece = list(range(first + lo, first + hi + 1))
                head, tail = -1 - len(phantoms), -2 - len(phantoms)
                phantoms += [(piece[0], piece[1]), (piece[-1], piece[-2])]
                ext = [head, *piece, tail]
                spans += [ext[j : j + 4] for j in range(len(piece) - 1)]
        self.points = np.array(points, dtype=np.float64)
        n = len(points)
        self.extend = np.zeros((n + len(phantoms), n))
        self.extend[:n] = np.eye(n)
        for k, (a, b) in enumerate(phantoms):
            self.extend[n + k, a], self.extend[n + k, b] = 2.0, -1.0
        # phantom k was numbered -1 - k; it is row n + k of extend
        self.spans = np.array([[s if s >= 0 else n - 1 - s for s in span] for span in spans])

    def segments(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """The stroke segments ``[M, 4]`` (``ax, ay, bx, by``) through control points ``q``."""
        p = (self.extend @ q)[self.spans]  # [K, 4, 2]
        chord = np.hypot(*(p[:, 2] - p[:, 1]).T)
        pieces = np.maximum(np.ceil(chord / SEGMENT), 1).astype(np.int64)
        span = np.repeat(np.arange(len(p)), pieces)
        k = np.arange(len(span)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        t = np.stack([k, k + 1]) / pieces[span]  # [2, T]: start and end of each piece
        w = np.stack([-(t**3) + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2, -3 * t**3 + 4 * t**2 + t])
        w = 0.5 * np.concatenate([w, (t**3 - t**2)[None]])  # Catmull-Rom weights [4, 2, T]
        ends = np.einsum("kst,tkd->std", w, p[span])  # [2, T, 2]
        return np.concatenate([ends[0], ends[1]], axis=1)


_STYLES: tuple[tuple[_Style, ...], ...] = tuple(
    tuple(_Style(strokes) for strokes in GLYPHS[d]) for d in DIGITS
)


def _lerp(bounds: tuple[float, float], u: float) -> float:
    return bounds[0] + u * (bounds[1] - bounds[0])


def _glyph(seed: int, i: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Attribute row ``[8]`` and stroke segments ``[M, 4]`` (image widths) of image ``i``."""
    rng = np.random.default_rng([seed, i])
    u = rng.random(8)
    counts = (len(DIGITS), len(FG_COLORS), len(BG_COLORS))
    digit, fg, bg = (min(int(u[k] * c), c - 1) for k, c in enumerate(counts))
    thickness = float(np.float32(_lerp(THICKNESS_RANGE, u[3])))
    slant, scale = _lerp(SLANT_RANGE, u[4]), _lerp(SCALE_RANGE, u[5])
    v = rng.random(4)
    styles = _STYLES[digit]
    style = styles[min(int(v[0] * len(styles)), len(styles) - 1)]
    angle = math.radians(_lerp(ROTATION_RANGE, v[1]))
    jitter = np.clip(rng.normal(0.0, JITTER, style.points.shape), -2.5 * JITTER, 2.5 * JITTER)
    c, s = math.cos(angle), math.sin(angle)
    shear = np.array([[1.0, -slant], [0.0, 1.0]])  # x moves right as y goes up (y points down)
    stretch = np.diag([_lerp(STRETCH_RANGE, v[2]), _lerp(STRETCH_RANGE, v[3])])
    affine = np.array([[c, -s], [s, c]]) @ shear @ stretch
    seg = style.segments((style.points + jitter) @ affine.T)
    ends = seg.reshape(-1, 2)
    lo, hi = ends.min(axis=0), ends.max(axis=0)
    fit = min(1.0, (1.0 - 2 * MARGIN - thickness) / (scale * float((hi - lo).max())))
    scale *= fit
    lo, hi = lo * scale - thickness / 2, hi * scale + thickness / 2
    half = (hi - lo) / 2
    centre = MARGIN + half + u[6:8] * (1.0 - 2 * (MARGIN + half))
    ends = ends * scale + (centre - (lo + hi) / 2)
    row = np.array([digit, fg, bg, thickness, slant, scale, *centre], dtype=np.float32)
    return row, ends.reshape(-1, 4).astype(np.float32)


def digit_glyphs(
    seed: int, start: int, stop: int
) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
    """Images ``start..stop-1`` of ``seed`` as attribute rows float32 ``[stop - start, 8]`` and,
    per image, its stroke segments float32 ``[M, 4]`` (``ax, ay, bx, by`` in image widths).

    Image ``i`` depends on ``(seed, i)`` only (its own ``default_rng([seed, i])``).
    """
    glyphs = [_glyph(seed, i) for i in range(start, stop)]
    rows = np.empty((len(glyphs), len(ATTRIBUTES)), dtype=np.float32)
    for k, (row, _) in enumerate(glyphs):
        rows[k] = row
    return rows, [segments for _, segments in glyphs]


def _coverage(
    segments: list[NDArray[np.float32]], thickness: NDArray[np.float32], size: int
) -> NDArray[np.int32]:
    """How many of the 4×4 subsamples of each pixel lie within ``thickness / 2`` of a segment:
    int32 ``[B, S, S]``. Each segment is tested only in a square window of subsamples around it."""
    b, ss, g = len(segments), _SUPERSAMPLE, size * _SUPERSAMPLE
    image = np.repeat(np.arange(b), [len(s) for s in segments])  # [N], all segments of the block
    seg = np.concatenate(segments) * np.float32(g)  # [N, 4] in subsamples
    r = (thickness.astype(np.float32) * np.float32(g / 2))[image]  # radius [N]
    ax, ay, dx, dy = seg[:, 0], seg[:, 1], seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    w = min(int(np.ceil((np.maximum(np.abs(dx), np.abs(dy)) + 2 * r).max())) + 2, g)
    ox = np.clip(np.floor(np.minimum(ax, ax + dx) - r), 0, g - w).astype(np.int32)
    oy = np.clip(np.floor(np.minimum(ay, ay + dy) - r), 0, g - w).astype(np.int32)
    j = np.arange(w, dtype=np.float32) + np.float32(0.5)
    px = ox[:, None].astype(np.float32) + j - ax[:, None]  # [N, W]
    py = oy[:, None].astype(np.float32) + j - ay[:, None]
    dot = (py * dy[:, None])[:, :, None] + (px * dx[:, None])[:, None, :]  # [N, W, W]
    pp = (py * py)[:, :, None] + (px * px)[:, None, :]
    length2 = (dx * dx + dy * dy)[:, None, None]
    t = dot / np.maximum(length2, np.float32(1e-12))
    np.clip(t, 0, 1, out=t)
    inside = pp - t * (dot + dot - t * length2) <= (r * r)[:, None, None]
    corner = (image * g + oy) * g + ox  # flat index of each window's first subsample
    steps = (np.arange(w, dtype=np.int32) * g)[:, None] + np.arange(w, dtype=np.int32)
    canvas = np.zeros((b, g, g), dtype=bool)
    canvas.reshape(-1)[(corner.astype(np.int32)[:, None, None] + steps)[inside]] = True
    # Sum the ss×ss blocks with plain adds of strided views: much faster than sum(axis=(2, 4)).
    cells = canvas.view(np.uint8).reshape(b, size, ss, size, ss)
    across = cells[..., 0].astype(np.int32)
    for q in range(1, ss):
        across += cells[..., q]
    count = across[:, :, 0]
    for q in range(1, ss):
        count += across[:, :, q]
    return count


def render_glyphs(
    attributes: ArrayLike, segments: list[NDArray[np.float32]], size: int
) -> NDArray[np.uint8]:
    """Render attribute rows ``[B, 8]`` with their stroke segments (:func:`digit_glyphs`) as uint8
    ``[B, 3, S, S]``: a pure function of both, the same bytes in any batch. Each pixel is
    ``(bg * (16 - c) + fg * c + 8) // 16`` with ``c`` its coverage count. Renders in blocks of
    64 images at 32 px (fewer when larger) so memory stays bounded."""
    attrs = np.asarray(attributes, dtype=np.float32)
    if attrs.ndim != 2 or attrs.shape[1] != len(ATTRIBUTES) or len(segments) != len(attrs):
        raise ShapeError(
            f"digit attributes must be [B, {len(ATTRIBUTES)}] with B segment arrays, "
            f"got {attrs.shape} and {len(segments)}"
        )
    if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ShapeError(f"size must be in {SIZE_RANGE[0]}..{SIZE_RANGE[1]}, got {size}")
    codes = attrs[:, :3].astype(np.int64)
    limits = np.array([len(DIGITS), len(FG_COLORS), len(BG_COLORS)])
    if (attrs[:, :3] != codes).any() or (codes < 0).any() or (codes >= limits).any():
        raise ShapeError("digit, fg_color and bg_color must be valid category indices")
    if any(s.ndim != 2 or s.shape[1] != 4 or len(s) == 0 for s in segments):
        raise ShapeError("each image's segments must be a non-empty [M, 4] array")
    if len(attrs) == 0:
        return np.empty((0, 3, size, size), dtype=np.uint8)
    block = max(1, _BLOCK_PIXELS // (size * size))
    count = np.empty((len(attrs), 1, size, size), dtype=np.uint16)
    for k in range(0, len(attrs), block):
        thickness = attrs[k : k + block, 3]
        count[k : k + block, 0] = _coverage(segments[k : k + block], thickness, size)
    n = np.uint16(_SUPERSAMPLE * _SUPERSAMPLE)  # 255 * 16 + 8 fits uint16
    fg = _FG[codes[:, 1]].astype(np.uint16)[:, :, None, None]  # [B, 3, 1, 1]
    bg = _BG[codes[:, 2]].astype(np.uint16)[:, :, None, None]
    return ((bg * (n - count) + fg * count + n // 2) // n).astype(np.uint8)


class DigitsDataset(ProceduralDataset):
    """``n`` procedural digits of ``size`` px from ``seed``; see the module docstring.

    Items are rendered on demand; :meth:`render_range` renders a contiguous block at once (what
    writing the whole dataset should use: a few thousand images at 32 px per second and core).

    Example::

        >>> ds = DigitsDataset(n=100, size=32, seed=0)
        >>> x, label, attributes = ds[7]
        >>> x.shape, x.dtype, ds.classes[label] == DIGITS[label], attributes.shape
        (torch.Size([3, 32, 32]), torch.uint8, True, torch.Size([8]))
        >>> rows, segments = digit_glyphs(0, 7, 8)
        >>> bool((torch.from_numpy(render_glyphs(rows, segments, 32)[0]) == x).all())
        True
    """

    name = "digits"
    default_n = 12000
    generator = GENERATOR_VERSION
    identity: ClassVar[dict[str, Any]] = {"dataset": "digits"}  # shapes' predates the key
    classes = DIGITS
    attributes = ATTRIBUTES

    def __init__(self, n: int = 12000, size: int = 32, seed: int = 0) -> None:
        super().__init__(n, size, seed)

    def render_range(
        self, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``start..stop-1`` at once: ``x`` uint8 ``[B, 3, S, S]``, labels int64 ``[B]``,
        attributes float32 ``[B, 8]``; identical to indexing them one by one."""
        self.check_range(start, stop)
        attributes, segments = digit_glyphs(self.seed, start, stop)
        x = render_glyphs(attributes, segments, self.size)
        labels = attributes[:, 0].astype(np.int64)
        return torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(attributes)


def open_digits(location: str | None = None, **options: str) -> DigitsDataset:
    """Factory of ``digits:n=12000,size=32,seed=0`` (those are the defaults)."""
    return DigitsDataset.open(location, options)
