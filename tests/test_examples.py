"""The plugin template in examples/ works as documented: pip installs it, and its entry points
give the backbone ``mymodel`` (trained, listed, extracted from) and the command ``innx hello``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "plugin-template"


def clean_env() -> dict[str, str]:
    """This process's environment without its ``INNX_`` settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INNX_")}


@pytest.fixture(scope="module")
def template_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The template pip-installed (for real, from a copy) into a folder on ``PYTHONPATH``."""
    root = tmp_path_factory.mktemp("template")
    source, target = root / "src", root / "site"
    shutil.copytree(TEMPLATE, source)  # building writes into the source tree
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = clean_env()
    env["PYTHONPATH"] = str(target)
    return env


def innx(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "innx", *args], env=env, cwd=cwd, capture_output=True, text=True
    )


def run_example(script: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``QUICK=1 bash examples/SCRIPT OUT`` with this Python's ``innx`` first on ``PATH`` and no
    ``INNX_`` settings from the environment."""
    env = clean_env()
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", QUICK="1")
    return subprocess.run(
        ["bash", str(script), str(out)], env=env, capture_output=True, text=True, timeout=900
    )


def test_template_command_runs(template_env: dict[str, str]) -> None:
    result = innx(template_env, "hello", "Ada", "--shout")
    assert (result.returncode, result.stdout) == (0, "HELLO, ADA\n")
    result = innx(template_env, "hello", " ")
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "error: name must not be empty; pass a name, e.g. innx hello Ada"
    )
    result = innx(template_env, "plugins")
    assert "innx-mymodel" in result.stdout and "hello" in result.stdout


def test_template_backbone_wraps_a_model(template_env: dict[str, str], tmp_path: Path) -> None:
    """The user's workflow: train (or bring) weights, list layers, extract a store."""
    listed = innx(template_env, "backbones")
    assert listed.returncode == 0 and "mymodel" in listed.stdout
    layers = innx(template_env, "layers", "mymodel", "--json")
    assert layers.returncode == 0, layers.stderr
    assert '"block1"' in layers.stdout and "16" in layers.stdout

    data = "shapes:n=256,size=32,seed=1"
    fit = innx(
        template_env, "fit", "classifier", data, "--backbone", "mymodel", "--steps", "4",
        "--batch-size", "32", "-o", "clf", cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    extract = innx(
        template_env, "extract", data, "--weights", "clf", "--layer", "block1", "--layer",
        "softmax", "--limit", "64", "-o", "acts.h5", cwd=tmp_path,
    )  # fmt: skip
    assert extract.returncode == 0, extract.stderr

    import h5py

    with h5py.File(tmp_path / "acts.h5", "r") as f:
        assert f["layers/block1"].shape == (64, 16, 16, 16)
        assert f["layers/softmax"].shape == (64, 4)

    wrong = innx(template_env, "layers", "mymodel", "--option", "size=abc")
    assert wrong.returncode in (1, 2) and wrong.stderr.strip()


@pytest.mark.slow
def test_shapes_pipeline_script_chains_every_stage(tmp_path: Path) -> None:
    """``QUICK=1 bash examples/shapes.sh OUT``: the demo as innx commands, then a rerun that
    skips every finished stage, figure and the report; a deleted figure is drawn again."""
    script = TEMPLATE.parents[0] / "shapes.sh"
    out = tmp_path / "pipeline"
    done = run_example(script, out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "report"
    assert (out / "report" / "report.html").is_file()
    for name in ("samples.png", "samples-files.png", "layers.png", "mix.png", "animate.gif"):
        assert (out / "figures" / name).is_file(), name
    kept = [out / "clf" / "model.safetensors", out / "figures" / "mix.png", out / "report"]
    stamps = [path.stat().st_mtime_ns for path in kept]
    (out / "figures" / "samples.png").unlink()
    again = run_example(script, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip().splitlines()[-1] == "report"
    assert [path.stat().st_mtime_ns for path in kept] == stamps
    assert (out / "figures" / "samples.png").is_file()


@pytest.mark.slow
def test_texture_vs_shape_script_compares_attacks_and_intervenes(tmp_path: Path) -> None:
    """``QUICK=1 bash examples/texture-vs-shape.sh OUT``: two models of cues (shape, texture), one
    autoencoder and one e for both, analyze, compare, attack; every output where it says."""
    import json

    out = tmp_path / "tvs"
    done = run_example(TEMPLATE.parents[0] / "texture-vs-shape.sh", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(out)
    for cue in ("shape", "texture"):
        model = json.loads((out / f"{cue}-model" / "config.json").read_text())
        assert model["config"]["label"] == cue
        report = json.loads((out / f"report-{cue}" / "report.json").read_text())
        assert report["layers"] == ["input", "conv2", "logits"]
        assert set(report["interventions"]["factors"]) == {"shape", "texture", "fg_color"}
    comparison = json.loads((out / "comparison" / "compare.json").read_text())
    assert [m["name"] for m in comparison["models"]] == ["shape", "texture"]
    assert len(comparison["sentences"]) == 3
    for method in ("fgsm", "pgd"):
        attack = json.loads((out / f"attack-{method}" / "attack.json").read_text())
        assert attack["attack"]["method"] == method and attack["attack"]["eps"] == 0.08
        assert [layer["layer"] for layer in attack["layers"]] == ["input", "conv2", "logits"]


@pytest.mark.slow
def test_your_model_script_runs_the_method_on_a_timm_model(tmp_path: Path) -> None:
    """``QUICK=1 bash examples/your-model.sh OUT``: a generated 64 px folder, a timm ConvNeXt
    trained on it, an autoencoder at the folder's own size, and every stage through analyze."""
    import json

    import h5py

    out = tmp_path / "yours"
    done = run_example(TEMPLATE.parents[0] / "your-model.sh", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "report"
    assert "innx: using device cpu" in done.stderr
    classifier = json.loads((out / "clf" / "config.json").read_text())
    assert classifier["config"]["backbone"] == "timm:convnext_atto"
    with h5py.File(out / "acts.h5", "r") as f:
        assert f["images"].shape[1:] == (64, 64, 3)
        assert set(f["layers"]) == {"stages.1", "logits"}
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["layers"] == ["stages.1", "logits"]
    for name in ("samples.png", "layers.png"):
        assert (out / "figures" / name).is_file(), name
