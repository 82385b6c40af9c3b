"""``innx attack`` on the tiny trained pipeline: one real run in a process (the files, and the
invariants of ``attack.json``), and every bad input as one ``error:`` line, exit 1, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_innx, write_synthetic_store
from PIL import Image
from typer.testing import CliRunner, Result

from innx.cli.app import build_app
from innx.errors import InnxWarning
from innx.ops.extract.extraction import ExtractOptions, extract

VERSIONS = ("x", "x_adv", "x_noise")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), ["attack", *args], prog_name="innx")


def test_attack_writes_its_report(tiny_pipeline, tmp_path):
    tiny, out = tiny_pipeline, tmp_path / "adv"
    runs = ["--invariance", str(tiny.invariance["input"]), "--invariance"]
    runs += [f"pool={tiny.invariance['pool']}", "--invariance", str(tiny.invariance["logits"])]
    done = run_innx(
        "attack", str(tiny.store), *runs, "--rows", "0-5", "--eps", "0.15", "--samples", "2",
        "--judge-steps", "30", "--device", "cpu", "--json", "-o", str(out),
    )  # fmt: skip
    summary = json.loads(done.stdout)
    files = ["attack.json", "attack.md", "images.png", *(f"row-{r}.png" for r in range(6))]
    assert summary["report"] == str(out) and summary["files"] == files
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    assert "changed the prediction of" in done.stderr and "‖ΔΦ‖" in done.stderr

    report = json.loads((out / "attack.json").read_text())
    assert report["format"] == "innx.attack" and report["version"] == 1
    assert report["options"]["eps"] == 0.15 and report["options"]["method"] == "fgsm"
    assert report["classifier"]["classes"] == ["circle", "cross", "square", "triangle"]
    attack = report["attack"]
    for rate in (attack["success_rate"], attack["noise_flip_rate"]):
        assert 0 <= rate["interval"][0] <= rate["value"] <= rate["interval"][1] <= 1
    assert attack["success_rate"]["value"] >= 0.5  # a large eps flips most of the tiny classifier
    assert attack["noise_flip_rate"]["value"] < attack["success_rate"]["value"]
    rows = report["rows"]
    assert [row["row"] for row in rows] == list(range(6))
    assert sum(row["flipped"] for row in rows) / 6 == pytest.approx(attack["success_rate"]["value"])
    for row in rows:
        assert row["flipped"] == (row["x_adv"]["class"] != row["x"]["class"])
        assert row["linf"]["x_noise"] == pytest.approx(0.15, abs=1e-6)  # every pixel moves by eps
        assert row["linf"]["x_adv"] <= 0.15 + 1e-6
        assert row["truth"] in report["classifier"]["classes"]
        assert set(row["distance"]) == {"input", "pool", "logits"}
    judge = report["judge"]
    assert judge["attribute"] == "shape" and judge["steps"] == 30
    assert 0 <= judge["accuracy"]["value"] <= 1
    assert [layer["layer"] for layer in report["layers"]] == ["input", "pool", "logits"]
    flipped = sum(row["flipped"] for row in rows)
    for layer in report["layers"]:
        assert layer["rows"] == flipped
        for reader in ("judge", "classifier"):
            for version in VERSIONS:
                shares = layer[reader][version]
                total = shares["original"]["value"] + shares["adversarial"]["value"]
                assert 0 <= total <= 1 + 1e-9  # two different classes: a sample shows one at most
        distance = layer["distance"]
        assert distance["median_between_rows"] > 0 and distance["x_from_store"] < 1e-3
        assert distance["x_adv"]["value"] > 0 and distance["x_noise"]["value"] > 0
        assert all(-1 <= layer["cosine"][v] <= 1 for v in VERSIONS)
    assert (
        summary["layers"]["pool"]["distance"]["x_adv"] == report["layers"][1]["distance"]["x_adv"]
    )

    markdown = (out / "attack.md").read_text()
    assert "## What the invariance samples show, read by the judge" in markdown
    assert "| pool |" in markdown and "![row-5.png](row-5.png)" in markdown
    with Image.open(out / "images.png") as picture:
        assert picture.height > 6 * 64  # six rows of cells
    with Image.open(out / "row-0.png") as picture:
        assert picture.height > 9 * 64  # three layers × three versions
        assert picture.width > 3 * 64  # the image and two samples

    again = invoke(str(tiny.store), *runs, "--rows", "0", "--judge-steps", "0", "-o", str(out))
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.stderr
    assert (out / "row-5.png").is_file()  # untouched


@pytest.fixture(scope="module")
def other_stores(tiny_pipeline, tmp_path_factory) -> dict[str, Path]:
    """Stores the attack refuses: one without images, one of a randomly initialised backbone,
    one without latents, and another store (of the same classifier) than the runs'."""
    tiny, root = tiny_pipeline, tmp_path_factory.mktemp("attack-stores")
    data = "shapes:n=16,size=32,seed=9"
    no_images = ExtractOptions(
        data, None, ("pool",), weights=str(tiny.classifier), autoencoder=str(tiny.autoencoder)
    )
    extract(no_images, root / "no-images.h5")
    random = ExtractOptions(
        data, "smallcnn", ("pool",), autoencoder=str(tiny.autoencoder), store_images=True
    )
    with pytest.warns(InnxWarning, match="random weights"):
        extract(random, root / "random.h5")
    other = ExtractOptions(
        data, None, ("pool",), weights=str(tiny.classifier), autoencoder=str(tiny.autoencoder),
        store_images=True,
    )  # fmt: skip
    extract(other, root / "other.h5")
    return {
        "other": root / "other.h5",
        "no-images": root / "no-images.h5",
        "random": root / "random.h5",
        "no-latents": write_synthetic_store(root / "no-latents.h5", n=40, latents=False),
    }


def test_bad_inputs_are_one_line_exit_1_and_write_nothing(tiny_pipeline, other_stores, tmp_path):
    tiny = tiny_pipeline
    store, pool = str(tiny.store), str(tiny.invariance["pool"])
    run = ["--invariance", pool, "--judge-steps", "0"]
    cases = [
        ([store, *run, "--rows", "0", "--eps", "0"], "--eps is the L∞ size"),
        ([store, *run, "--rows", "0", "--eps", "1.5"], "must be > 0 and <= 1"),
        ([store, *run, "--rows", "0", "--eps", "nan"], "must be > 0 and <= 1"),
        ([store, *run, "--rows", "0", "--method", "cw"], "--method must be one of fgsm, pgd"),
        ([store, *run, "--rows", "0,400"], f"row 400 is out of range: {store} has rows 0 to 399"),
        ([store, *run], "attack needs store rows to attack; pass --rows"),
        (
            [store, "--invariance", f"conv2={pool}", "--rows", "0"],
            "was fitted on layer pool, not conv2",
        ),
        ([store, "--invariance", "conv2=", "--rows", "0"], "names no run"),
        ([store, *run, "--rows", "0", "--target", "hexagon"], "--target hexagon is not a class"),
        ([store, *run, "--rows", "0", "--target", "4"], "or an index from 0 to 3"),
        (
            [str(other_stores["no-images"]), *run, "--rows", "0"],
            "holds no images to attack; extract it again with --store-images",
        ),
        (
            [str(other_stores["random"]), *run, "--rows", "0"],
            "was randomly initialised (the store records no weights): attacking it is meaningless",
        ),
        (
            [
                str(other_stores["random"]),
                *run,
                "--rows",
                "0",
                "--classifier",
                str(tiny.classifier),
            ],
            "was randomly initialised",
        ),
        ([str(other_stores["no-latents"]), *run, "--rows", "0"], "has no latents"),
        (
            [str(other_stores["other"]), *run, "--rows", "0"],
            f"was fitted on another store ({store}), not {other_stores['other']}",
        ),
    ]
    for args, message in cases:
        result = invoke(*args, "-o", str(tmp_path / "out"))
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert list(tmp_path.iterdir()) == [], args
