"""The generated digits dataset: deterministic per (seed, index), visible strokes, and real
within-class variation (no two images of a digit share a skeleton)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from innx.data import CONTINUOUS, open_dataset
from innx.data.digits import (
    ATTRIBUTES,
    BG_COLORS,
    DIGITS,
    FG_COLORS,
    GLYPHS,
    MARGIN,
    SCALE_RANGE,
    SLANT_RANGE,
    THICKNESS_RANGE,
    DigitsDataset,
    digit_glyphs,
    render_glyphs,
)
from innx.data.shapes import ShapesDataset
from innx.errors import ConfigError, ShapeError
from innx.ops.data.folders import write_image_folder

_FG = np.array(list(FG_COLORS.values()), dtype=np.float64)
_BG = np.array(list(BG_COLORS.values()), dtype=np.float64)


def coverage(x: torch.Tensor, attributes: torch.Tensor) -> np.ndarray:
    """Where each pixel lies between its image's background (0) and foreground (1): ``[B, S, S]``."""
    codes = attributes.numpy()[:, 1:3].astype(np.int64)
    fg, bg = _FG[codes[:, 0]][:, :, None, None], _BG[codes[:, 1]][:, :, None, None]
    return ((x.numpy() - bg) * (fg - bg)).sum(1) / ((fg - bg) ** 2).sum(1)


def test_attributes_are_the_documented_factors() -> None:
    ds = open_dataset("digits")
    assert ds.spec == "digits:n=12000,size=32,seed=0"
    names = ["digit", "fg_color", "bg_color", "thickness", "slant", "scale", "x", "y"]
    assert [a.name for a in ds.attributes] == names
    assert [a.kind for a in ds.attributes] == ["categorical"] * 3 + ["continuous"] * 5
    assert ds.classes == DIGITS == ds.attributes[0].categories == tuple("0123456789")
    for a in ATTRIBUTES[:3]:
        assert list(a.categories) == sorted(a.categories)  # so a written folder keeps indices
    assert (ds.channels, ds.image_size, ds.root) == (3, (32, 32), None)
    assert sorted(GLYPHS) == list(DIGITS) and all(2 <= len(s) <= 3 for s in GLYPHS.values())


def test_every_background_is_far_from_every_foreground() -> None:
    for fg, bg in itertools.product(FG_COLORS.values(), BG_COLORS.values()):
        assert np.linalg.norm(np.subtract(fg, bg)) > 120, (fg, bg)


def test_item_depends_on_seed_and_index_only() -> None:
    small, large = DigitsDataset(n=30, size=32, seed=3), DigitsDataset(n=5000, size=32, seed=3)
    for i in (0, 7, 29):
        a, b = small[i], large[i]
        assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])
    x, labels, attributes = large.render_range(10, 150)  # crosses 64-image render blocks
    for i in [149, 74, 73, 40, 10]:  # any order
        item, j = large[i], i - 10
        assert torch.equal(item[0], x[j]) and item[1] == labels[j]
        assert torch.equal(item[2], attributes[j])
    other = DigitsDataset(n=30, size=32, seed=4)
    assert not all(torch.equal(small[i][0], other[i][0]) for i in range(5))


def test_dataloader_workers_give_the_same_items() -> None:
    ds = DigitsDataset(n=24, size=24, seed=1)
    loader = DataLoader(ds, batch_size=8, num_workers=2, shuffle=False)
    x = torch.cat([batch[0] for batch in loader])
    direct = [ds[i] for i in range(len(ds))]
    assert torch.equal(x, torch.stack([d[0] for d in direct]))


def test_images_regenerate_from_their_glyphs_in_any_batch() -> None:
    x, _, attributes = DigitsDataset(n=100, size=32, seed=0).render_range(0, 100)
    rows, segments = digit_glyphs(0, 0, 100)
    assert rows.dtype == np.float32 and torch.equal(torch.from_numpy(rows), attributes)
    assert np.array_equal(render_glyphs(rows, segments, 32), x.numpy())
    for i in (0, 51, 99):
        assert np.array_equal(render_glyphs(rows[i : i + 1], segments[i : i + 1], 32)[0], x[i])
    # the geometry does not depend on the size: the same glyph at another resolution
    bigger = DigitsDataset(n=100, size=64, seed=0).render_range(0, 100)
    assert torch.equal(bigger[2], attributes)


def test_attributes_lie_in_their_ranges() -> None:
    rows, segments = digit_glyphs(0, 0, 600)
    for k, a in enumerate(ATTRIBUTES[:3]):
        assert set(rows[:, k].tolist()) == set(range(len(a.categories)))  # valid, all occur
    for k, bounds in ((3, THICKNESS_RANGE), (4, SLANT_RANGE), (5, SCALE_RANGE)):
        assert bounds[0] <= rows[:, k].min() and rows[:, k].max() <= bounds[1]
    assert rows[:, 5].max() > SCALE_RANGE[1] - 0.02 and rows[:, 4].min() < SLANT_RANGE[0] + 0.02
    assert all(a.kind == CONTINUOUS for a in ATTRIBUTES[3:])
    for row, seg in zip(rows, segments, strict=True):  # every stroke stays inside, with a margin
        ends, r = seg.reshape(-1, 2), row[3] / 2
        assert (ends - r >= MARGIN - 1e-5).all() and (ends + r <= 1 - MARGIN + 1e-5).all()
        assert np.allclose((ends.min(0) + ends.max(0)) / 2, row[6:8], atol=1e-5)  # x, y: centre


@pytest.mark.parametrize("size", [16, 32, 64])
def test_strokes_are_visible_and_inside_the_image(size: int) -> None:
    x, _, attributes = DigitsDataset(n=150, size=size, seed=5).render_range(0, 150)
    c = coverage(x, attributes)
    for image, row in zip(x.numpy(), attributes.numpy(), strict=True):
        if size * MARGIN < 1:
            break  # the margin is less than a pixel
        bg = tuple(BG_COLORS.values())[int(row[2])]
        border = np.concatenate([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], 1)
        assert (border == np.array(bg)[:, None]).all()  # the glyph never touches an edge
    strokes = (c > 0.5).mean(axis=(1, 2))
    assert strokes.min() > 0.02 and strokes.max() < 0.4  # a digit, not a dot or a blob
    assert (c.max(axis=(1, 2)) > (0.7 if size == 16 else 0.99)).all()  # full-colour stroke cores


def test_edges_are_anti_aliased() -> None:
    x, _, _ = DigitsDataset(n=20, size=32, seed=0).render_range(0, 20)
    distinct = [len({tuple(p) for p in image.reshape(3, -1).T.tolist()}) for image in x.numpy()]
    assert min(distinct) > 2  # fg, bg and blends


def _normalised_glyphs(ds: DigitsDataset | ShapesDataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image's coverage cropped to its strokes and resized to 16×16 (position and scale
    removed), flattened ``[n, 256]``, and the labels."""
    x, labels, attributes = ds.render_range(0, n)
    crops = []
    for m in coverage(x, attributes):
        ys, xs = np.nonzero(m > 0.5)
        crop = torch.tensor(m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]).float()
        crops.append(F.interpolate(crop[None, None], size=(16, 16), mode="bilinear")[0, 0])
    return torch.stack(crops).flatten(1).numpy(), labels.numpy()


def test_images_of_a_digit_differ_beyond_position_and_scale() -> None:
    def within_class(ds: DigitsDataset | ShapesDataset) -> np.ndarray:
        glyphs, labels = _normalised_glyphs(ds, 200)
        pairs = [(i, j) for i, j in itertools.combinations(range(200), 2) if labels[i] == labels[j]]
        return np.array([np.abs(glyphs[i] - glyphs[j]).mean() for i, j in pairs])

    digits, shapes = within_class(DigitsDataset(n=200, seed=0)), within_class(ShapesDataset(n=200))
    assert digits.mean() > 0.2 and digits.mean() > 3 * shapes.mean()  # shapes: about 0.05
    assert digits.min() > 0.02  # no two images share a skeleton


def test_a_written_folder_reopens_with_the_same_images_and_labels(tmp_path: Path) -> None:
    source = DigitsDataset(n=80, size=16, seed=2)
    folder = open_dataset(f"folder:{write_image_folder(source, tmp_path / 'digits')}")
    assert len(folder) == 80 and folder.classes == source.classes
    assert [a.name for a in folder.attributes] == [a.name for a in source.attributes]
    # every digit and colour occurs, in the same order: digits 0-9 are few whole numbers, so
    # categorical, and a digit's category index is the digit
    assert folder.attributes[:3] == source.attributes[:3]
    by_index = {int(Path(p).stem): i for i, p in enumerate(folder.paths)}  # type: ignore[attr-defined]
    for i in range(80):
        a, b = source[i], folder[by_index[i]]
        assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])


def test_items_are_the_contract_types() -> None:
    x, label, attributes = DigitsDataset(n=3, size=48, seed=0)[2]
    assert x.dtype == torch.uint8 and x.shape == (3, 48, 48)
    assert isinstance(label, int) and 0 <= label < len(DIGITS)
    assert attributes.dtype == torch.float32 and attributes.shape == (8,)
    assert int(attributes[0]) == label


def test_out_of_range_index_raises_index_error() -> None:
    ds = DigitsDataset(n=3)
    for i in (3, -1, 100):
        with pytest.raises(IndexError):
            ds[i]
    with pytest.raises(IndexError):
        ds.render_range(2, 4)


def test_fingerprint_follows_the_options() -> None:
    a = DigitsDataset(n=10, size=32, seed=0).fingerprint()
    assert a == DigitsDataset(n=10, size=32, seed=0).fingerprint()
    others = [DigitsDataset(n=11), DigitsDataset(n=10, seed=1), DigitsDataset(n=10, size=33)]
    assert len({a, *(d.fingerprint() for d in others)}) == 4
    assert a != ShapesDataset(n=10, size=32, seed=0).fingerprint()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("digits:n=abc", "expected an integer >= 1"),
        ("digits:n=0", "expected an integer >= 1"),
        ("digits:size=8", "expected an integer >= 16 and <= 128"),
        ("digits:seed=-1", "expected an integer >= 0"),
        ("digits:/some/path", "takes no path"),
        ("digits:style=7", "valid options: n, size, seed"),
    ],
)
def test_bad_options_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_dataset(spec)


def test_direct_construction_checks_its_arguments() -> None:
    for kwargs in ({"n": 0}, {"size": 200}, {"seed": -1}):
        with pytest.raises(ConfigError, match="digits needs n >= 1"):
            DigitsDataset(**kwargs)


def test_render_refuses_malformed_input() -> None:
    rows, segments = digit_glyphs(0, 0, 2)
    with pytest.raises(ShapeError):
        render_glyphs(rows[:, :7], segments, 32)
    with pytest.raises(ShapeError):
        render_glyphs(rows, segments[:1], 32)
    with pytest.raises(ShapeError):
        render_glyphs(rows, segments, 8)
    bad = rows.copy()
    bad[0, 0] = 10
    with pytest.raises(ShapeError):
        render_glyphs(bad, segments, 32)
    with pytest.raises(ShapeError):
        render_glyphs(rows, [segments[0], segments[1][:, :3]], 32)
