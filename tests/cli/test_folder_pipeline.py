"""A folder of images with an ``attributes.csv`` through the command line, in real processes
(quick checks in this one): ``data info`` shows the size and each attribute's kind, ``fit
autoencoder`` needs no ``--size``, an integer column is categorical through ``extract`` and ``fit
semantic``, and ``--factor NAME:KIND`` overrides it (or says in one line why it cannot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_innx as innx
from PIL import Image
from typer.testing import CliRunner, Result

from innx.cli.app import build_app

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def invoke(*args: str) -> Result:
    """``innx ARGS`` in this process (quick checks beside the real processes)."""
    return CliRunner().invoke(build_app(), list(args), prog_name="innx")


def write_folder(root: Path, n: int = 128, size: int = 32) -> Path:
    """``n`` PNG images of ``size`` px: a bar whose height is ``digit`` (0..9) and whose colour is
    ``colour``, with noise; ``attributes.csv`` lists both."""
    root.mkdir()
    rng = np.random.default_rng(0)
    rows = ["path,digit,colour"]
    for i in range(n):
        digit, colour = i % 10, list(COLOURS)[i % 3]
        x = np.full((size, size, 3), 20, np.uint8)
        x[4 + 2 * digit : 10 + 2 * digit, 6:26] = COLOURS[colour]
        x = np.clip(x + rng.integers(0, 20, x.shape), 0, 255).astype(np.uint8)
        Image.fromarray(x).save(root / f"{i:03}.png")
        rows.append(f"{i:03}.png,{digit},{colour}")
    (root / "attributes.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def folder_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder, a tiny autoencoder fitted without ``--size``, and a store extracted from it."""
    root = tmp_path_factory.mktemp("folder")
    data = f"folder:{write_folder(root / 'images')}"
    ae, store = root / "ae", root / "acts.h5"
    fitted = innx("fit", "autoencoder", data, "-o", str(ae), "--steps", "4",
                  "--batch-size", "16", "--latent-dim", "8", "--json")  # fmt: skip
    assert json.loads(fitted.stdout)["run"] == str(ae)
    assert json.loads((ae / "config.json").read_text())["config"]["image_size"] == 32
    innx("extract", data, "--backbone", "smallcnn", "--layer", "pool", "--autoencoder", str(ae),
         "-o", str(store))  # fmt: skip
    return store


def test_data_info_shows_the_size_and_each_kind(tmp_path: Path) -> None:
    data = f"folder:{write_folder(tmp_path / 'images', n=20)}"
    text = innx("data", "info", data).stdout
    assert "image_size:  32×32" in text
    assert "digit                categorical  0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in text
    assert "colour               categorical  blue, green, red" in text
    described = json.loads(invoke("data", "info", data, "--json").stdout)
    assert described["image_size"] == [32, 32]
    assert {a["name"]: a["kind"] for a in described["attributes"]} == {
        "digit": "categorical",
        "colour": "categorical",
    }
    Image.new("RGB", (16, 16)).save(tmp_path / "images" / "odd.png")
    with open(tmp_path / "images" / "attributes.csv", "a") as f:
        f.write("odd.png,1,red\n")
    assert "image_size:  varying" in invoke("data", "info", data).stdout


@pytest.mark.parametrize(
    ("factor", "kind"), [("digit", "categorical"), ("digit:continuous", "continuous")]
)
def test_an_integer_column_is_categorical_unless_stated(
    folder_store: Path, tmp_path: Path, factor: str, kind: str
) -> None:
    run = tmp_path / "sem"
    innx("fit", "semantic", str(folder_store), "--factor", factor, "--factor", "colour",
         "--dims", "2,2", "--steps", "10", "--batch-size", "32", "--no-swaps",
         "-o", str(run))  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["kinds"] == {"digit": kind, "colour": "categorical"}
    assert manifest["fit"]["factors"] == [factor, "colour"]
    # categorical: an accuracy probe beside its chance level; continuous: an R² probe alone
    assert ("chance_digit" in manifest["metrics"]) == (kind == "categorical")
    assert "probe_digit" in manifest["metrics"] and "chance_colour" in manifest["metrics"]


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        ("digit:ordinal", "unknown kind 'ordinal' for 'digit'; write digit:categorical or digit:"),
        ("colour:continuous", "'colour' cannot be continuous: its categories are not all num"),
        ("digit:categorical,bins=3", "bins= and tol= apply only to a continuous factor"),
    ],
)
def test_a_kind_that_cannot_be_says_why_in_one_line(
    folder_store: Path, tmp_path: Path, factor: str, message: str
) -> None:
    done = invoke("fit", "semantic", str(folder_store), "--factor", factor,
                  "-o", str(tmp_path / "sem"))  # fmt: skip
    assert done.exit_code == 1, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "sem").exists()
