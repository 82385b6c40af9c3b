"""``innx data shapes`` and ``innx data info``, in-process (CliRunner) and in a real process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner, Result

from innx.cli.app import build_app
from innx.data import open_dataset
from innx.data.shapes import ATTRIBUTES, ShapesDataset
from innx.ops.data.folders import write_shapes_folder


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args), prog_name="innx")


def check_folder(out: Path, n: int, size: int, seed: int = 0) -> None:
    """``out`` holds ``shapes:n,size,seed`` as PNG files per class with attributes.csv, and
    ``folder:out`` reads back the same images, labels and attributes."""
    source = ShapesDataset(n=n, size=size, seed=seed)
    assert sorted(p.name for p in out.iterdir()) == ["attributes.csv", *sorted(source.classes)]
    pngs = sorted(out.glob("*/*.png"))
    assert len(pngs) == n
    assert all(p.parent.name in source.classes for p in pngs)
    with open(out / "attributes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "shape", "fg_color", "bg_color", "scale", "x", "y"]
    for row in rows[1:]:
        for value, a in zip(row[1:], ATTRIBUTES, strict=True):
            assert value in a.categories if a.categories else float(value) > 0
        assert row[0].split("/")[0] == row[1]  # the class folder is the shape
    folder = open_dataset(f"folder:{out}")
    assert len(folder) == n and folder.classes == source.classes
    assert folder.attributes == source.attributes  # every category occurs, in the same order
    by_index = {int(Path(p).stem): i for i, p in enumerate(folder.paths)}  # type: ignore[attr-defined]
    for i in range(n):
        a, b = source[i], folder[by_index[i]]
        assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])


def test_shapes_writes_a_folder_that_reopens(tmp_path: Path) -> None:
    out = tmp_path / "shapes"
    result = invoke("data", "shapes", str(out), "--n", "50", "--size", "32")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    check_folder(out, 50, 32)
    assert not out.with_name("shapes.partial").exists()


def test_shapes_in_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "real"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNX_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "innx",
            "data",
            "shapes",
            str(out),
            "--n",
            "50",
            "--size",
            "32",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n" and result.stderr == ""  # no progress bar in a pipe
    check_folder(out, 50, 32)


def test_a_non_empty_output_is_refused_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke("data", "shapes", str(out), "--n", "5")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {out} already exists and is not empty")
    assert "--overwrite" in result.stderr and (out / "keep.txt").exists()
    result = invoke("data", "shapes", str(out), "--n", "50", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists()
    check_folder(out, 50, 32)


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = invoke("data", "shapes", str(tmp_path / "file"), "--n", "3")
    assert result.exit_code == 1 and "already exists and is a file" in result.stderr
    assert (
        invoke("data", "shapes", str(tmp_path / "file"), "--n", "3", "--overwrite").exit_code == 0
    )
    assert (tmp_path / "file").is_dir()


def test_an_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert invoke("data", "shapes", str(tmp_path / "empty"), "--n", "3").exit_code == 0


def test_an_interrupted_write_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.with_name("out.partial").mkdir()  # left over from a killed run
    (out.with_name("out.partial") / "junk.png").write_bytes(b"junk")

    def interrupt(done: int, total: int) -> None:
        if done >= 256:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_shapes_folder(out, n=600, size=16, seed=0, progress=interrupt)
    assert not out.exists() and not out.with_name("out.partial").exists()
    calls: list[tuple[int, int]] = []
    write_shapes_folder(out, n=600, size=16, seed=0, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(256, 600), (512, 600), (600, 600)]
    assert len(open_dataset(f"folder:{out}")) == 600


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    for args in (["--n", "0"], ["--size", "8"], ["--n", "many"]):
        result = invoke("data", "shapes", str(tmp_path / "x"), *args)
        assert result.exit_code == 2, result.output
    assert not (tmp_path / "x").exists()


def test_info_json(tmp_path: Path) -> None:
    result = invoke("data", "info", "shapes:n=10", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["spec"] == "shapes:n=10,size=32,seed=0" and info["n"] == 10
    assert info["classes"] == ["circle", "cross", "square", "triangle"]
    assert [a["name"] for a in info["attributes"]] == [
        "shape",
        "fg_color",
        "bg_color",
        "scale",
        "x",
        "y",
    ]
    assert info["attributes"][3] == {"name": "scale", "kind": "continuous", "categories": []}
    assert info["fingerprint"] == ShapesDataset(n=10).fingerprint()


def test_info_text_and_errors() -> None:
    result = invoke("data", "info", "shapes:n=10,size=16")
    assert result.exit_code == 0, result.output
    assert "shapes:n=10,size=16,seed=0" in result.stdout
    assert "fg_color" in result.stdout and "magenta" in result.stdout
    result = invoke("data", "info", "imagenet:/data")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown dataset 'imagenet'; choose one of: ")
    result = invoke("data", "info", "shapes:n=abc")
    assert result.exit_code == 1 and "expected an integer >= 1" in result.stderr


def test_data_help_does_not_import_torch() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNX_")}
    for args in (["data", "--help"], ["data", "shapes", "--help"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "innx", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
        assert "torch" not in imported and "innx.data" not in imported, args
