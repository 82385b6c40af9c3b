"""``innx render``: every mode through the command line on the tiny trained pipeline, in-process
(``CliRunner``) and in real processes, and every bad input as one ``error:`` line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from innx.cli.app import build_app
from innx.device import device_line, resolve_device
from innx.ops.extract.extraction import ExtractOptions, extract
from innx.ops.render.grids import cell_size, grid_size
from innx.store import ActivationStore

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), ["render", *args], prog_name="innx")


@pytest.fixture(scope="module")
def other_store(tiny_pipeline, tmp_path_factory) -> Path:
    """A store of other images, made with the tiny pipeline's classifier and autoencoder."""
    tiny = tiny_pipeline
    path = tmp_path_factory.mktemp("other") / "other.h5"
    options = ExtractOptions(
        "shapes:n=24,size=32,seed=9",
        None,
        ("pool",),
        weights=str(tiny.classifier),
        autoencoder=str(tiny.autoencoder),
        store_images=True,
    )
    extract(options, path)
    return path


def modes(tiny) -> dict[str, tuple[list[str], list[str]]]:  # type: ignore[no-untyped-def]
    """Per mode: its arguments after the store and -o, and the suffixes of what it writes."""
    inv, sem = (str(p) for p in (tiny.invariance["pool"], tiny.semantic))
    every = [
        arg
        for layer in ("input", "conv2", "logits")
        for arg in ("--invariance", str(tiny.invariance[layer]))
    ]
    return {
        "samples": (["--invariance", inv, "--rows", "0,5,9", "-n", "3"], [".png"]),
        "layers": ([*every, "--rows", "2", "-n", "2"], [".png"]),
        "mix": (["--invariance", inv, "--rows", "0,1"], [".png"]),
        "swap": (["--semantic", sem, "--factor", "shape", "--rows", "0,1"], [".png"]),
        "interpolate": (
            [
                "--semantic",
                sem,
                "--factor",
                "fg_color",
                "--rows",
                "3",
                "--sigmas",
                "1.5",
                "--frames",
                "3",
            ],
            [".png", ".gif"],
        ),
        "animate": (["--invariance", inv, "--rows", "0", "--frames", "3"], [".gif"]),
    }


def test_every_mode_prints_what_it_wrote(tiny_pipeline, tmp_path):
    for mode, (args, suffixes) in modes(tiny_pipeline).items():
        out = tmp_path / f"{mode}{suffixes[0]}"
        result = invoke(mode, str(tiny_pipeline.store), *args, "-o", str(out))
        assert result.exit_code == 0, (mode, result.output)
        written = [out.with_suffix(s) for s in suffixes]
        assert result.stdout.split() == [str(p) for p in written], mode
        assert all(p.is_file() for p in written), mode


def test_samples_from_image_files_in_a_process(tiny_pipeline, tmp_path):
    store, run = str(tiny_pipeline.store), str(tiny_pipeline.invariance["conv2"])
    with ActivationStore(store) as acts:
        thumbs = np.asarray(acts.images[[2, 3]])  # type: ignore[index]
    images = []
    for k, thumb in enumerate(thumbs):
        images += ["--image", str(tmp_path / f"in{k}.png")]
        Image.fromarray(thumb).save(images[-1])
    out = tmp_path / "files.png"
    done = innx("render", "samples", store, "--invariance", run, *images, "-n", "2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    with Image.open(out) as picture:
        assert picture.size == grid_size(2, 4, cell_size(32), row_labels=True, col_labels=True)


def test_interpolate_json_in_a_process(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    out = tmp_path / "walk.png"
    args = ["--semantic", str(tiny.semantic), "--factor", "shape", "--rows", "0,7", "--json"]
    done = innx("render", "interpolate", str(tiny.store), *args, "--strip", "4", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("innx: using device") == 1, done.stderr  # once, and what auto is
    assert device_line(resolve_device("auto")) in done.stderr.splitlines()
    summary = json.loads(done.stdout)
    assert summary == {"mode": "interpolate", "outputs": [str(out), str(tmp_path / "walk.gif")]}
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 24  # the default --frames


def test_bad_inputs_are_one_line_exit_1_and_write_nothing(tiny_pipeline, other_store, tmp_path):
    tiny = tiny_pipeline
    store, pool, sem = str(tiny.store), str(tiny.invariance["pool"]), str(tiny.semantic)
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"old")
    cases = [
        (
            ["samples", str(other_store), "--invariance", pool, "--rows", "0"],
            f"was fitted on another store ({store}), not {other_store}",
        ),
        (
            ["swap", str(other_store), "--semantic", sem, "--factor", "shape", "--rows", "0"],
            "was fitted on another store",
        ),
        (
            ["samples", store, "--invariance", pool, "--layer", "conv2", "--rows", "0"],
            "was fitted on layer pool, not conv2",
        ),
        (
            ["mix", store, "--invariance", pool, "--rows", "0,400"],
            "row 400 is out of range: " + store + " has rows 0 to 399",
        ),
        (
            ["swap", store, "--semantic", sem, "--factor", "scale", "--rows", "0,1"],
            "has no factor 'scale'; its factors: shape, fg_color, bg_color",
        ),
        (
            ["interpolate", store, "--semantic", sem, "--factor", "hue", "--rows", "0,1"],
            "its factors: shape, fg_color, bg_color",
        ),
        (
            ["interpolate", store, "--semantic", sem, "--factor", "shape", "--rows", "0"],
            "a walk needs two inputs, got 1",
        ),
        (["animate", store, "--invariance", pool, "--rows", "0"], "must end in .gif"),
        (["samples", store, "--invariance", sem, "--rows", "0"], "semantic model"),
        (["samples", store, "--invariance", pool], "no rows given"),
        (
            ["samples", store, "--invariance", pool, "--rows", "0", "--image", str(existing)],
            "not both",
        ),
    ]
    for args, message in cases:
        out = tmp_path / "out.png"
        result = invoke(*args, "-o", str(out))
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.png"], args

    result = invoke("samples", store, "--invariance", pool, "--rows", "0", "-o", str(existing))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {existing} exists; pass --overwrite to replace it"
    assert existing.read_bytes() == b"old"
    again = invoke(
        "samples", store, "--invariance", pool, "--rows", "0", "-o", str(existing), "--overwrite"
    )
    assert again.exit_code == 0 and existing.read_bytes() != b"old"

    bad_rows = invoke(
        "samples", store, "--invariance", pool, "--rows", "0,x", "-o", str(tmp_path / "u.png")
    )
    assert bad_rows.exit_code == 1
    assert bad_rows.stderr.startswith("error: --rows takes row numbers and inclusive ranges")


def test_another_store_in_a_process(tiny_pipeline, other_store, tmp_path):
    run = str(tiny_pipeline.invariance["logits"])
    out = tmp_path / "anim.gif"
    done = innx(
        "render", "animate", str(other_store), "--invariance", run, "--rows", "0", "-o", str(out)
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "fitted on another store" in lines[0], done.stderr
    assert not out.exists()


def test_rows_ranges_frames_strip_and_kernels_in_a_process(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    store, pool = str(tiny.store), str(tiny.invariance["pool"])
    out = tmp_path / "range.png"
    args = ["--invariance", f"pool={pool}", "--rows", "0-2,5", "-n", "2", "--kernels", "torch"]
    done = innx("render", "samples", store, *args, "-o", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as picture:  # rows 0, 1, 2 and 5; columns image, recon, v 1, v 2
        assert picture.size == grid_size(4, 4, cell_size(32), row_labels=True, col_labels=True)

    walk = tmp_path / "walk.png"
    args = ["--semantic", str(tiny.semantic), "--factor", "shape", "--rows", "0-1"]
    more = ["--strip", "3", "--frames", "6", "--kernels", "torch"]
    done = innx("render", "interpolate", store, *args, *more, "-o", str(walk))
    assert done.returncode == 0, done.stderr
    with Image.open(walk) as strip:  # the two inputs around 3 steps of the walk
        assert strip.size == grid_size(1, 3 + 2, cell_size(32), row_labels=True, col_labels=True)
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 6  # an odd count shows the turn twice in a row, one GIF frame


def test_invariance_takes_layer_equals_run(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    store, pool, logits = (
        str(p) for p in (tiny.store, tiny.invariance["pool"], tiny.invariance["logits"])
    )
    out = str(tmp_path / "out.png")
    wrong = invoke("mix", store, "--invariance", f"conv2={pool}", "--rows", "0,1", "-o", out)
    assert wrong.exit_code == 1 and "was fitted on layer pool, not conv2" in wrong.stderr
    both = invoke(
        "samples",
        store,
        "--invariance",
        f"pool={pool}",
        "--layer",
        "logits",
        "--rows",
        "0",
        "-o",
        out,
    )
    assert both.exit_code == 1
    assert both.stderr.strip() == (
        f"error: --invariance pool={pool} names layer pool, --layer logits; give the layer once"
    )
    mixed = invoke(
        "layers",
        store,
        "--invariance",
        f"pool={pool}",
        "--invariance",
        logits,
        "--rows",
        "0",
        "-o",
        out,
    )
    assert mixed.exit_code == 1 and "name the layer of every --invariance run" in mixed.stderr
    named = ["--invariance", f"pool={pool}", "--invariance", f"logits={logits}"]
    done = invoke("layers", store, *named, "--rows", "0", "-n", "2", "-o", out)
    assert done.exit_code == 0, done.output
