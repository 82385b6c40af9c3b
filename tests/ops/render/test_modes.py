"""``innx.ops.render.modes``: every mode on the tiny trained pipeline — files, grid layout, what the
cells hold, determinism from the seed, refused outputs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from innx.errors import ConfigError, RunError
from innx.ops.pipeline import Pipeline
from innx.ops.render.grids import LABEL_H, LABEL_W, PAD, cell_size, grid_size
from innx.ops.render.modes import (
    AnimateRender,
    LayersRender,
    MixRender,
    SamplesRender,
    render_animate,
    render_layers,
    render_mix,
    render_samples,
)
from innx.ops.render.semantic import (
    InterpolateRender,
    SwapRender,
    render_interpolate,
    render_swap,
)

CELL = cell_size(32)  # the tiny pipeline's images are 32 px: 64 px cells


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def cell(
    picture: np.ndarray, i: int, j: int, *, rows: bool = True, cols: bool = True
) -> np.ndarray:
    """Cell ``(i, j)`` of a grid with row and column captions (or without)."""
    top = (LABEL_H if cols else 0) + PAD + i * (CELL + PAD)
    left = (LABEL_W if rows else 0) + PAD + j * (CELL + PAD)
    return picture[top : top + CELL, left : left + CELL]


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as image:
        out = []
        for k in range(image.n_frames):
            image.seek(k)
            out.append(np.asarray(image.convert("RGB")).astype(np.int16))
        return out


def as_cells(images: torch.Tensor) -> list[np.ndarray]:
    """Images ``[B, C, 32, 32]`` in [0, 1] as the grid draws them."""
    x = (images.clamp(0, 1) * 255).round().to(torch.uint8).repeat_interleave(2, 2)
    return list(x.repeat_interleave(2, 3).permute(0, 2, 3, 1).numpy().astype(np.int16))


def recon(tiny, rows) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    with Pipeline(tiny.store) as pipe:
        return as_cells(pipe.decode(pipe.rows(rows).zbar))


def close(a: np.ndarray, b: np.ndarray, tol: int = 1) -> bool:
    """Equal but for the rounding of a float error (a round trip through t or e)."""
    return int(np.abs(a - b).max()) <= tol


def test_samples_grid_holds_image_recon_and_samples_that_differ(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = SamplesRender(
        store=tiny.store, invariance=tiny.invariance["pool"], rows=(0, 5, 9), samples=4
    )
    out = tmp_path / "samples.png"
    assert render_samples(options, out) == [out]
    assert size(out) == grid_size(3, 6, CELL, row_labels=True, col_labels=True)
    picture = pixels(out)
    with Pipeline(tiny.store) as pipe:
        inputs = pipe.rows([0, 5, 9])
        assert inputs.images is not None
        originals, recons = as_cells(inputs.images), as_cells(pipe.decode(inputs.zbar))
    for i in range(3):
        assert np.array_equal(cell(picture, i, 0), originals[i])
        assert close(cell(picture, i, 1), recons[i])
        samples = [cell(picture, i, 2 + j) for j in range(4)]
        for a in range(4):
            for b in range(a + 1, 4):
                assert not np.array_equal(samples[a], samples[b]), (i, a, b)

    again, other = tmp_path / "again.png", tmp_path / "other.png"
    render_samples(options, again)
    render_samples(SamplesRender(**{**options.__dict__, "seed": 1}), other)
    assert again.read_bytes() == out.read_bytes()
    assert other.read_bytes() != out.read_bytes()


def test_samples_at_temperature_zero_are_one_image(tiny_pipeline, tmp_path):
    options = SamplesRender(
        store=tiny_pipeline.store,
        invariance=tiny_pipeline.invariance["logits"],
        rows=(1,),
        samples=3,
        temperature=0.0,
    )
    out = render_samples(options, tmp_path / "t0.png")[0]
    picture = pixels(out)
    assert np.array_equal(cell(picture, 0, 2), cell(picture, 0, 3))
    assert np.array_equal(cell(picture, 0, 2), cell(picture, 0, 4))


def test_layers_has_a_column_per_layer(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    layers = ("input", "conv2", "pool", "logits")
    options = LayersRender(
        store=tiny.store,
        invariance=tuple(tiny.invariance[name] for name in layers),
        layers=layers,
        rows=(3,),
        samples=3,
    )
    out = render_layers(options, tmp_path / "layers.png")[0]
    assert size(out) == grid_size(3, 2 + 4, CELL, row_labels=True, col_labels=True)
    picture = pixels(out)
    assert close(cell(picture, 0, 1), recon(tiny, [3])[0])
    assert (cell(picture, 1, 0) == 255).all() and (cell(picture, 2, 1) == 255).all()  # blank
    for j in range(4):  # each layer's samples differ from row to row
        assert not np.array_equal(cell(picture, 0, 2 + j), cell(picture, 1, 2 + j))

    wrong = LayersRender(**{**options.__dict__, "layers": ("input", "pool", "conv2", "logits")})
    with pytest.raises(RunError, match="was fitted on layer conv2, not pool"):
        render_layers(wrong, tmp_path / "wrong.png")
    with pytest.raises(ConfigError, match="one input, got 2"):
        render_layers(LayersRender(**{**options.__dict__, "rows": (1, 2)}), tmp_path / "two.png")
    with pytest.raises(ConfigError, match="one layer per run"):
        render_layers(LayersRender(**{**options.__dict__, "layers": ("pool",)}), tmp_path / "n.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.png"]


def test_mix_diagonal_reconstructs_each_input(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = MixRender(store=tiny.store, invariance=tiny.invariance["conv2"], rows=(0, 1, 2))
    out = render_mix(options, tmp_path / "mix.png")[0]
    assert size(out) == grid_size(4, 4, CELL, row_labels=True, col_labels=True)
    picture, recons = pixels(out), recon(tiny, [0, 1, 2])
    with Pipeline(tiny.store) as pipe:
        originals = as_cells(pipe.rows([0, 1, 2]).images)  # type: ignore[arg-type]
    assert (cell(picture, 0, 0) == 255).all()
    for i in range(3):
        assert np.array_equal(cell(picture, 0, i + 1), originals[i])  # column heads
        assert np.array_equal(cell(picture, i + 1, 0), originals[i])  # row heads
        assert close(cell(picture, i + 1, i + 1), recons[i])


def test_swap_of_an_input_with_itself_is_its_reconstruction(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = SwapRender(store=tiny.store, semantic=tiny.semantic, factor="fg_color", rows=(4, 7))
    out = render_swap(options, tmp_path / "swap.png")[0]
    assert size(out) == grid_size(3, 3, CELL, row_labels=True, col_labels=True)
    picture, recons = pixels(out), recon(tiny, [4, 7])
    for i in range(2):
        assert close(cell(picture, i + 1, i + 1), recons[i])
    assert not np.array_equal(cell(picture, 1, 2), cell(picture, 1, 1))
    with pytest.raises(RunError, match="no factor 'scale'; its factors: shape, fg_color, bg_color"):
        render_swap(SwapRender(**{**options.__dict__, "factor": "scale"}), tmp_path / "x.png")


def test_walk_runs_from_one_input_to_the_swap(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    rows = (4, 7)
    walk = InterpolateRender(
        store=tiny.store, semantic=tiny.semantic, factor="shape", rows=rows, strip=5, frames=6
    )
    out = tmp_path / "walk.png"
    assert render_interpolate(walk, out) == [out, tmp_path / "walk.gif"]
    assert size(out) == grid_size(1, 5 + 2, CELL, row_labels=True, col_labels=True)
    swap = render_swap(
        SwapRender(store=tiny.store, semantic=tiny.semantic, factor="shape", rows=rows),
        tmp_path / "swap.png",
    )[0]
    strip = pixels(out)
    assert close(cell(strip, 0, 1), recon(tiny, [4])[0])  # a = 0
    assert close(cell(strip, 0, 5), cell(pixels(swap), 1, 2))  # a = 1: shape of the second
    movie = frames(tmp_path / "walk.gif")
    assert len(movie) == 6
    assert movie[0].shape[1::-1] == grid_size(1, 3, CELL, row_labels=True, col_labels=True)
    # the first frame is at a = 0 (up to the GIF's palette of 256 colours)
    assert np.abs(cell(movie[0], 0, 1) - cell(strip, 0, 1)).mean() < 3
    with pytest.raises(ConfigError, match="a walk needs two inputs, got 3"):
        render_interpolate(
            InterpolateRender(**{**walk.__dict__, "rows": (1, 2, 3)}), tmp_path / "3.png"
        )


def test_traversal_is_centred_on_each_input(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = InterpolateRender(
        store=tiny.store,
        semantic=tiny.semantic,
        factor="bg_color",
        rows=(0, 1, 2),
        sigmas=2.0,
        strip=5,
        frames=4,
    )
    out = render_interpolate(options, tmp_path / "trav.png")[0]
    assert size(out) == grid_size(3, 1 + 5, CELL, row_labels=True, col_labels=True)
    strip, recons = pixels(out), recon(tiny, [0, 1, 2])
    for i in range(3):
        assert close(cell(strip, i, 3), recons[i])  # the middle step moves by 0 sd
        assert not np.array_equal(cell(strip, i, 1), cell(strip, i, 5))
    movie = frames(tmp_path / "trav.gif")
    assert len(movie) == 4
    assert movie[0].shape[1::-1] == grid_size(3, 2, CELL, row_labels=True, col_labels=True)


def test_animate_moves_every_frame_and_is_deterministic(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = AnimateRender(
        store=tiny.store, invariance=tiny.invariance["pool"], rows=(0, 1), frames=5, keyframes=3
    )
    out = tmp_path / "anim.gif"
    assert render_animate(options, out) == [out]
    movie = frames(out)
    assert len(movie) == 5
    assert movie[0].shape[1::-1] == grid_size(2, 2, CELL, row_labels=True, col_labels=True)
    for a, b in itertools.pairwise(movie):
        assert not np.array_equal(cell(a, 0, 1), cell(b, 0, 1))
    render_animate(options, tmp_path / "again.gif")
    assert (tmp_path / "again.gif").read_bytes() == out.read_bytes()
    render_animate(AnimateRender(**{**options.__dict__, "seed": 3}), tmp_path / "other.gif")
    assert (tmp_path / "other.gif").read_bytes() != out.read_bytes()


def test_image_files_render_like_their_rows(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    with Pipeline(tiny.store) as pipe:
        thumbs = pipe.store.images[[0, 5]]  # type: ignore[index]
    paths = []
    for k, thumb in enumerate(thumbs):
        paths.append(tmp_path / f"shape{k}.png")
        Image.fromarray(np.asarray(thumb)).save(paths[-1])
    run = tiny.invariance["pool"]
    by_file = render_samples(
        SamplesRender(store=tiny.store, invariance=run, images=tuple(paths), samples=2),
        tmp_path / "files.png",
    )[0]
    by_row = render_samples(
        SamplesRender(store=tiny.store, invariance=run, rows=(0, 5), samples=2),
        tmp_path / "rows.png",
    )[0]
    assert size(by_file) == size(by_row)
    files, rows = pixels(by_file), pixels(by_row)
    for i in range(2):
        assert np.array_equal(cell(files, i, 0), cell(rows, i, 0))


def test_outputs_are_checked_first_and_replaced_only_with_overwrite(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = SamplesRender(
        store=tiny.store, invariance=tiny.invariance["pool"], rows=(0,), samples=2
    )
    out = tmp_path / "s.png"
    out.write_bytes(b"old")
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        render_samples(options, out)
    assert out.read_bytes() == b"old"
    render_samples(options, out, overwrite=True)
    assert size(out) == grid_size(1, 4, CELL, row_labels=True, col_labels=True)
    with pytest.raises(ConfigError, match=r"must end in \.png"):
        render_samples(options, tmp_path / "s.jpg")
    with pytest.raises(ConfigError, match="row 400 is out of range"):
        render_samples(SamplesRender(**{**options.__dict__, "rows": (0, 400)}), tmp_path / "r.png")

    gif = tmp_path / "walk.gif"  # interpolate refuses when either of its outputs exists
    gif.write_bytes(b"old")
    walk = InterpolateRender(store=tiny.store, semantic=tiny.semantic, factor="shape", rows=(0, 1))
    with pytest.raises(ConfigError, match=r"walk\.gif exists"):
        render_interpolate(walk, tmp_path / "walk.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png", "walk.gif"]
