"""The generated shapes dataset: deterministic per (seed, index), attributes that are the truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from innx.data import open_dataset, render_shape, render_shapes
from innx.data.shapes import (
    ATTRIBUTES,
    BG_COLORS,
    FG_COLORS,
    POSITION_RANGE,
    SCALE_RANGE,
    SHAPES,
    ShapesDataset,
    shape_factors,
)
from innx.errors import ConfigError, ShapeError


def test_attributes_are_the_documented_factors() -> None:
    ds = open_dataset("shapes")
    assert ds.spec == "shapes:n=20000,size=32,seed=0"
    assert [a.name for a in ds.attributes] == ["shape", "fg_color", "bg_color", "scale", "x", "y"]
    assert [a.kind for a in ds.attributes] == ["categorical"] * 3 + ["continuous"] * 3
    assert ds.classes == SHAPES == ds.attributes[0].categories
    assert len(SHAPES) >= 4 and len(FG_COLORS) >= 6 and len(BG_COLORS) >= 6
    for a in ATTRIBUTES[:3]:
        assert list(a.categories) == sorted(a.categories)  # so a written folder keeps indices
    assert (ds.channels, ds.image_size, ds.root) == (3, (32, 32), None)


def test_every_background_is_far_from_every_foreground() -> None:
    for fg, bg in itertools.product(FG_COLORS.values(), BG_COLORS.values()):
        assert np.linalg.norm(np.subtract(fg, bg)) > 120, (fg, bg)


def test_item_depends_on_seed_and_index_only() -> None:
    small, large = ShapesDataset(n=30, size=32, seed=3), ShapesDataset(n=5000, size=32, seed=3)
    for i in (0, 7, 29):
        a, b = small[i], large[i]
        assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])
    x, labels, attributes = large.render_range(10, 310)  # crosses a 256-image block
    for i in [309, 266, 265, 40, 10]:  # any order
        item, j = large[i], i - 10
        assert torch.equal(item[0], x[j]) and item[1] == labels[j]
        assert torch.equal(item[2], attributes[j])
    other = ShapesDataset(n=30, size=32, seed=4)
    assert not all(torch.equal(small[i][0], other[i][0]) for i in range(5))


def test_dataloader_workers_give_the_same_items() -> None:
    ds = ShapesDataset(n=40, size=32, seed=1)
    loader = DataLoader(ds, batch_size=8, num_workers=2, shuffle=False)
    x = torch.cat([batch[0] for batch in loader])
    labels = torch.cat([batch[1] for batch in loader])
    direct = [ds[i] for i in range(len(ds))]
    assert torch.equal(x, torch.stack([d[0] for d in direct]))
    assert labels.tolist() == [d[1] for d in direct]


def test_image_regenerates_from_its_attribute_row() -> None:
    ds = ShapesDataset(n=200, size=32, seed=0)
    x, _, attributes = ds.render_range(0, 200)
    assert attributes.dtype == torch.float32
    assert np.array_equal(render_shapes(attributes.numpy(), 32), x.numpy())
    for i in (0, 51, 199):
        assert np.array_equal(render_shape(attributes[i], 32), x[i].numpy())
        assert np.array_equal(render_shape(attributes[i].tolist(), 32), x[i].numpy())


def test_attributes_lie_in_their_ranges() -> None:
    rows = shape_factors(0, 0, 2000)
    for k, a in enumerate(ATTRIBUTES[:3]):
        values = rows[:, k]
        assert set(values.tolist()) == set(range(len(a.categories)))  # valid, all occur
    assert SCALE_RANGE[0] <= rows[:, 3].min() and rows[:, 3].max() <= SCALE_RANGE[1]
    for k in (4, 5):
        assert POSITION_RANGE[0] <= rows[:, k].min() and rows[:, k].max() <= POSITION_RANGE[1]
    # the shape stays inside the image: centre ± scale within [0, 1]
    assert (rows[:, 4:] - rows[:, 3:4] >= 0).all() and (rows[:, 4:] + rows[:, 3:4] <= 1).all()


@pytest.mark.parametrize("size", [16, 32, 64])
def test_colours_appear_where_they_should(size: int) -> None:
    ds = ShapesDataset(n=300, size=size, seed=5)
    x, _, attributes = ds.render_range(0, 300)
    fg_colors, bg_colors = list(FG_COLORS.values()), list(BG_COLORS.values())
    for image, row in zip(x.numpy(), attributes.numpy(), strict=True):
        fg, bg = fg_colors[int(row[1])], bg_colors[int(row[2])]
        cx, cy = int(row[4] * size), int(row[5] * size)
        assert tuple(image[:, cy, cx]) == fg  # every shape is filled at its centre
        for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
            assert tuple(image[:, corner[0], corner[1]]) == bg
        values = set(map(tuple, image.reshape(3, -1).T.tolist()))
        assert fg in values and bg in values


def test_edges_are_anti_aliased() -> None:
    x, _, _ = ShapesDataset(n=20, size=32, seed=0).render_range(0, 20)
    distinct = [len({tuple(p) for p in image.reshape(3, -1).T.tolist()}) for image in x.numpy()]
    assert min(distinct) > 2  # fg, bg and blends


def test_items_are_the_contract_types() -> None:
    x, label, attributes = ShapesDataset(n=3, size=48, seed=0)[2]
    assert x.dtype == torch.uint8 and x.shape == (3, 48, 48)
    assert isinstance(label, int) and 0 <= label < len(SHAPES)
    assert attributes.dtype == torch.float32 and attributes.shape == (6,)
    assert int(attributes[0]) == label


def test_out_of_range_index_raises_index_error() -> None:
    ds = ShapesDataset(n=3)
    for i in (3, -1, 100):
        with pytest.raises(IndexError):
            ds[i]
    with pytest.raises(IndexError):
        ds.render_range(2, 4)


def test_fingerprint_follows_the_options() -> None:
    a = ShapesDataset(n=10, size=32, seed=0).fingerprint()
    assert a == ShapesDataset(n=10, size=32, seed=0).fingerprint()
    assert (
        len(
            {
                a,
                ShapesDataset(n=11).fingerprint(),
                ShapesDataset(n=10, seed=1).fingerprint(),
                ShapesDataset(n=10, size=33).fingerprint(),
            }
        )
        == 4
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shapes:n=abc", "expected an integer >= 1"),
        ("shapes:n=0", "expected an integer >= 1"),
        ("shapes:size=8", "expected an integer >= 16 and <= 128"),
        ("shapes:seed=-1", "expected an integer >= 0"),
        ("shapes:/some/path", "takes no path"),
        ("shapes:colour=red", "valid options: n, size, seed"),
    ],
)
def test_bad_options_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_dataset(spec)


def test_direct_construction_checks_its_arguments() -> None:
    for kwargs in ({"n": 0}, {"size": 200}, {"seed": -1}):
        with pytest.raises(ConfigError, match="shapes needs n >= 1"):
            ShapesDataset(**kwargs)


def test_render_refuses_malformed_rows() -> None:
    with pytest.raises(ShapeError):
        render_shapes(np.zeros((2, 5), np.float32), 32)
    with pytest.raises(ShapeError):
        render_shape([7, 0, 0, 0.3, 0.5, 0.5], 32)
