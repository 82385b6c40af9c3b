"""The generated cue-conflict dataset: deterministic per (seed, index), shapes inside the image,
textures that are what their names say, attributes that regenerate the image."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from innx.data import open_dataset, render_cue, render_cues
from innx.data.cues import (
    ATTRIBUTES,
    BG_COLORS,
    DOT_RADIUS,
    FG_COLORS,
    POSITION_RANGE,
    SCALE_RANGE,
    SHAPES,
    TEXTURES,
    CuesDataset,
    cue_factors,
    off_color,
)
from innx.data.shapes import ShapesDataset
from innx.errors import ConfigError, ShapeError

FG, BG = list(FG_COLORS.values()), list(BG_COLORS.values())


def row(shape: str, texture: str, *, scale: float, x: float, y: float, turns: float) -> list[float]:
    """An attribute row with the first colours (blue on black)."""
    return [SHAPES.index(shape), TEXTURES.index(texture), 0, 0, scale, x, y, turns]


def on_fraction(image: NDArray[np.uint8], inside: NDArray[np.bool_], fg_index: int) -> float:
    """The share of the pixels ``inside`` the shape covered by the texture's "on" parts, read back
    from their colours (each is a blend of the foreground colour and its tint)."""
    fg, off = np.array(FG[fg_index]), np.array(off_color(FG[fg_index]))
    ch = int(np.argmax(np.abs(fg - off)))
    return float(((image[ch][inside] - off[ch]) / (fg[ch] - off[ch])).mean())


def test_attributes_are_the_documented_factors() -> None:
    ds = open_dataset("cues")
    assert ds.spec == "cues:n=20000,size=32,seed=0" and isinstance(ds, CuesDataset)
    names = ["shape", "texture", "fg_color", "bg_color", "scale", "x", "y", "rotation"]
    assert [a.name for a in ds.attributes] == names
    assert [a.kind for a in ds.attributes] == ["categorical"] * 4 + ["continuous"] * 4
    assert ds.classes == SHAPES == ("circle", "cross", "sector", "square")
    assert ds.attributes[1].categories == TEXTURES == ("checks", "dots", "plain", "stripes")
    assert len(FG_COLORS) >= 4 and len(BG_COLORS) >= 4
    for a in ATTRIBUTES[:4]:
        assert list(a.categories) == sorted(a.categories)  # so a written folder keeps indices
    assert (ds.channels, ds.image_size, ds.root) == (3, (32, 32), None)
    assert ds.fingerprint() != ShapesDataset(n=20000, size=32, seed=0).fingerprint()


def test_every_background_is_far_from_both_tones_of_every_shape() -> None:
    for fg, bg in itertools.product(FG, BG):
        assert np.linalg.norm(np.subtract(fg, bg)) > 120, (fg, bg)
        assert np.linalg.norm(np.subtract(off_color(fg), bg)) > 120, (fg, bg)
    for fg in FG:  # the texture's two tones are clearly different
        assert np.linalg.norm(np.subtract(fg, off_color(fg))) > 100, fg


def test_item_depends_on_seed_and_index_only() -> None:
    small, large = CuesDataset(n=30, size=32, seed=3), CuesDataset(n=400, size=32, seed=3)
    for i in (0, 7, 29):
        a, b = small[i], large[i]
        assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])
    x, labels, attributes = large.render_range(10, 310)  # crosses a 256-image block
    for i in [309, 266, 265, 40, 10]:  # any order
        item, j = large[i], i - 10
        assert torch.equal(item[0], x[j]) and item[1] == labels[j]
        assert torch.equal(item[2], attributes[j])
    other = CuesDataset(n=30, size=32, seed=4)
    assert not all(torch.equal(small[i][0], other[i][0]) for i in range(5))


def test_image_regenerates_from_its_attribute_row() -> None:
    x, labels, attributes = CuesDataset(n=200, size=32, seed=0).render_range(0, 200)
    assert attributes.dtype == torch.float32 and attributes.shape == (200, 8)
    assert torch.equal(labels, attributes[:, 0].long())
    assert np.array_equal(render_cues(attributes.numpy(), 32), x.numpy())
    for i in (0, 51, 199):
        assert np.array_equal(render_cue(attributes[i], 32), x[i].numpy())
        assert np.array_equal(render_cue(attributes[i].tolist(), 32), x[i].numpy())


def test_attributes_lie_in_their_ranges_and_every_category_occurs() -> None:
    rows = cue_factors(0, 0, 1000)
    for k, a in enumerate(ATTRIBUTES[:4]):
        assert set(rows[:, k].tolist()) == set(range(len(a.categories)))
    assert SCALE_RANGE[0] <= rows[:, 4].min() and rows[:, 4].max() <= SCALE_RANGE[1]
    for k in (5, 6):
        assert POSITION_RANGE[0] <= rows[:, k].min() and rows[:, k].max() <= POSITION_RANGE[1]
    assert rows[:, 7].min() >= 0 and rows[:, 7].max() < 1 and rows[:, 7].std() > 0.25
    # every shape fits in the circle of radius scale, which stays inside the image
    assert (rows[:, 5:7] - rows[:, 4:5] > 0).all() and (rows[:, 5:7] + rows[:, 4:5] < 1).all()


@pytest.mark.parametrize("size", [32, 64])
def test_the_largest_shape_stays_inside_at_every_rotation(size: int) -> None:
    lo, hi, r = POSITION_RANGE[0], POSITION_RANGE[1], SCALE_RANGE[1]
    corners = [(lo, lo), (lo, hi), (hi, lo), (hi, hi)]
    rows = [
        row(shape, "checks", scale=r, x=x, y=y, turns=k / 32)
        for shape, (x, y), k in itertools.product(SHAPES, corners, range(32))
    ]
    images = render_cues(rows, size)
    margin = size // 32  # pixels
    inner = np.ones((size, size), dtype=bool)
    inner[margin:-margin, margin:-margin] = False
    assert (images[:, :, inner] == np.array(BG[0])[None, :, None]).all()
    # ... and the margin is no wider: the sector (a disk of radius scale, its wedge cut out on the
    # right at turn 0) reaches the next pixels in
    start = SHAPES.index("sector") * len(corners) * 32
    sectors = images[start : start + len(corners) * 32 : 32]  # turn 0 at each corner
    ring = ~inner
    ring[margin + 1 : -margin - 1, margin + 1 : -margin - 1] = False
    for image in sectors:
        assert (image[:, ring] != np.array(BG[0])[:, None]).any()


def test_every_shape_covers_the_same_area_at_the_same_scale() -> None:
    """So the share of an image a texture covers does not tell the shape (a texture model's
    confidence grows with it): 2 scale², measured from the subsample counts of large renders."""
    size, scale = 128, SCALE_RANGE[1]
    rows = [
        row(shape, "plain", scale=scale, x=0.5, y=0.5, turns=turns)
        for shape, turns in itertools.product(SHAPES, (0.0, 0.13))
    ]
    images = render_cues(rows, size).astype(float)
    channel = int(np.argmax(np.abs(np.subtract(FG[0], BG[0]))))
    fg, bg = FG[0][channel], BG[0][channel]
    coverage = (images[:, channel] - bg) / (fg - bg)  # of each pixel by the plain shape
    areas = coverage.sum(axis=(1, 2)) / (scale * size) ** 2
    assert np.allclose(areas, 2.0, rtol=5e-3), list(zip(rows, areas.tolist(), strict=True))


@pytest.mark.parametrize("size", [32, 64])
def test_each_texture_is_what_it_says(size: int) -> None:
    rows = cue_factors(1, 0, 300)
    plain = rows.copy()
    plain[:, 1] = TEXTURES.index("plain")
    images, silhouettes = render_cues(rows, size), render_cues(plain, size)
    expected = {"checks": (0.3, 0.7), "dots": (0.1, 0.5), "stripes": (0.25, 0.75)}  # 2-3 periods
    fractions: dict[str, list[float]] = {t: [] for t in TEXTURES}
    for image, silhouette, attributes in zip(images, silhouettes, rows, strict=True):
        texture, color = TEXTURES[int(attributes[1])], int(attributes[2])
        fg, off = np.array(FG[color])[:, None], np.array(off_color(FG[color]))[:, None]
        inside = (silhouette == fg[:, :, None]).all(axis=0)  # wholly inside the shape
        assert inside.sum() > 0.6 * (SCALE_RANGE[0] * size) ** 2  # several periods across
        pixels = image[:, inside]
        if texture == "plain":
            assert (pixels == fg).all()  # one colour inside the shape
            continue
        # both tones, each on a clear share of the shape's pixels
        assert (pixels == fg).all(axis=0).mean() > 0.05 and (pixels == off).all(
            axis=0
        ).mean() > 0.05
        fraction = on_fraction(image, inside, color)
        assert expected[texture][0] < fraction < expected[texture][1], (texture, fraction)
        fractions[texture].append(fraction)
    assert abs(np.mean(fractions["checks"]) - 0.5) < 0.02
    assert abs(np.mean(fractions["stripes"]) - 0.5) < 0.03
    assert abs(np.mean(fractions["dots"]) - math.pi * DOT_RADIUS**2) < 0.03


@pytest.mark.parametrize("size", [32, 64])
def test_textures_are_fixed_to_the_image_with_a_period_of_a_quarter(size: int) -> None:
    """A texture is a wallpaper the shape is a window onto: where two shapes overlap, turned or
    moved, their pixels are the same; stripes are vertical bars, checks and dots two-dimensional,
    all repeating every size/4 px."""
    period = size // 4
    centred = {"scale": SCALE_RANGE[1], "x": 0.5, "y": 0.5}
    moved = {**centred, "x": 0.55, "y": 0.45}
    images = render_cues(
        [
            row("square", "stripes", **centred, turns=0.0),
            row("square", "stripes", **centred, turns=0.1),
            row("circle", "stripes", **moved, turns=0.3),
            row("square", "checks", **centred, turns=0.0),
            row("square", "dots", **centred, turns=0.0),
        ],
        size,
    )[:, 0].astype(int)  # the red channel tells the two tones of blue apart
    stripes, turned, moved_circle, checks, dots = images
    half = int(SCALE_RANGE[1] * size / math.sqrt(2)) - 2
    box = slice(size // 2 - half, size // 2 + half)  # inside every one of the shapes
    bars = stripes[box, box]
    assert (bars == bars[:1]).all() and len(set(bars[0].tolist())) > 1  # vertical bars
    assert np.array_equal(bars[:, period:], bars[:, :-period])  # repeating every size/4 px
    assert not np.array_equal(bars[:, period // 2 :], bars[:, : -(period // 2)])
    inner = slice(size // 2 - half // 2, size // 2 + half // 2)
    assert np.array_equal(turned[inner, inner], stripes[inner, inner])  # not turned with it
    assert np.array_equal(moved_circle[inner, inner], stripes[inner, inner])  # nor moved
    for pattern in (checks[box, box], dots[box, box]):  # two-dimensional, same period
        assert not (pattern == pattern[:1]).all() and not (pattern == pattern[:, :1]).all()
        assert np.array_equal(pattern[:, period:], pattern[:, :-period])
        assert np.array_equal(pattern[period:], pattern[:-period])


def test_edges_are_anti_aliased() -> None:
    rows = [row("cross", "plain", scale=0.3, x=0.5, y=0.5, turns=0.1)]
    image = render_cues(rows, 32)[0].reshape(3, -1).T
    assert len({tuple(p) for p in image.tolist()}) > 2  # fg, bg and blends


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cues:n=abc", "expected an integer >= 1"),
        ("cues:n=0", "expected an integer >= 1"),
        ("cues:size=8", "expected an integer >= 16 and <= 128"),
        ("cues:seed=-1", "expected an integer >= 0"),
        ("cues:/some/path", "takes no path"),
        ("cues:texture=dots", "valid options: n, size, seed"),
    ],
)
def test_bad_options_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_dataset(spec)
    assert "\n" not in str(info.value)


def test_direct_construction_and_rendering_check_their_arguments() -> None:
    for kwargs in ({"n": 0}, {"size": 200}, {"seed": -1}):
        with pytest.raises(ConfigError, match="cues needs n >= 1"):
            CuesDataset(**kwargs)
    with pytest.raises(ShapeError):
        render_cues(np.zeros((2, 6), np.float32), 32)
    with pytest.raises(ShapeError):
        render_cue([0, 4, 0, 0, 0.3, 0.5, 0.5, 0.0], 32)  # texture 4 does not exist
    with pytest.raises(ShapeError):
        render_cue([0, 0, 0, 0, 0.3, 0.5, 0.5, 0.0], 8)
