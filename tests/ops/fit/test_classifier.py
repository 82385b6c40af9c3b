"""``innx fit classifier``: accuracy on shapes, the run directory, resume after kill -9, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from innx.backbones import load_backbone
from innx.device import resolve_device
from innx.errors import ConfigError
from innx.ops.fit.classifier import ClassifierFit, fit_classifier
from innx.store.runs import read_run
from innx.train.split import split_rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "clf"
    fit = ClassifierFit("shapes:n=2000,size=32,seed=3", epochs=3, batch_size=64)
    fit_classifier(fit, out)
    return out


def test_reaches_high_validation_accuracy_on_shapes(trained):
    run = read_run(trained)
    assert run.kind == "classifier"
    assert run.manifest["metrics"]["val_accuracy"] >= 0.95
    assert run.manifest["dataset"]["spec"] == "shapes:n=2000,size=32,seed=3"
    assert run.manifest["dataset"]["validation"] == 200
    assert run.manifest["device"] == str(resolve_device("auto"))  # what auto is here
    assert run.config["backbone"] == "smallcnn"
    assert run.config["options"] == {"num_classes": 4, "size": 32}
    assert run.config["classes"] == ["circle", "cross", "square", "triangle"]
    assert not (trained / "resume").exists()
    curve = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve if "val_accuracy" in r] == [28, 56, 84]


def test_the_run_loads_as_a_backbone_and_classifies(trained):
    from innx.data.spec import open_dataset

    backbone, weights = load_backbone("smallcnn", trained)
    assert weights.sha256 == read_run(trained).manifest["weights_sha256"]
    ds = open_dataset("shapes:n=200,size=32,seed=99")  # images it never saw
    x = torch.stack([ds[i][0] for i in range(200)])
    labels = torch.tensor([ds[i][1] for i in range(200)])
    with torch.no_grad():
        probs = backbone.capture(backbone.preprocessing(x), ["softmax"])["softmax"]
    assert (probs.argmax(1) == labels).float().mean() >= 0.95


def test_label_trains_on_an_attribute_and_is_recorded(tmp_path):
    """``--label fg_color``: the classes are the attribute's categories, the labels its codes."""
    from innx.data.shapes import FG_COLORS

    fit = ClassifierFit("shapes:n=600,size=32,seed=4", label="fg_color", steps=40, batch_size=64)
    result = fit_classifier(fit, tmp_path / "colour")
    run = read_run(tmp_path / "colour")
    assert run.config["classes"] == list(FG_COLORS) and run.config["label"] == "fg_color"
    assert run.config["options"]["num_classes"] == len(FG_COLORS)
    assert result.metrics["val_accuracy"] >= 0.9  # colour is easy; chance is 1/6
    assert read_run(tmp_path / "colour").manifest["fit"]["label"] == "fg_color"


def test_a_missing_attribute_label_is_refused():
    from innx.ops.fit.classifier import Label
    from innx.train.images import ImageBatch

    label = Label("texture", 1, ("plain", "stripes"))
    batch = ImageBatch(
        torch.zeros(3, 3, 4, 4, dtype=torch.uint8),
        torch.zeros(3, dtype=torch.int64),
        torch.tensor([[0.0, 1.0], [0.0, float("nan")], [0.0, 0.0]]),
    )
    with pytest.raises(ConfigError, match=r"one without a texture label \(position 1, value nan"):
        label.of(batch, "training")
    batch.attributes[1, 1] = 2.0  # not a category
    with pytest.raises(ConfigError, match=r"position 1, value 2\.0"):
        label.of(batch, "training")
    batch.attributes[1, 1] = 1.0
    assert label.of(batch, "training").tolist() == [1, 1, 0]


def test_split_is_disjoint_and_seeded():
    train, val = split_rows(100, 0.2, seed=1)
    assert len(val) == 20 and len(train) == 80
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert torch.equal(split_rows(100, 0.2, seed=1)[1], val)
    assert not torch.equal(split_rows(100, 0.2, seed=2)[1], val)


def test_unlabelled_data_is_refused(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ConfigError, match="no class labels"):
        fit_classifier(ClassifierFit(f"folder:{tmp_path}", steps=1), tmp_path / "run")


def innx(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "innx", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


FIT = ["fit", "classifier", "shapes:n=800,size=32,seed=1", "--steps", "60", "--batch-size", "32"]


@pytest.mark.slow
def test_resume_after_kill_9_ends_at_the_same_weights(tmp_path):
    whole = innx(*FIT, "-o", str(tmp_path / "whole"))
    killed = innx(*FIT, "--checkpoint-every", "5", "-o", str(tmp_path / "killed"))
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        if metrics.is_file() and '"step": 40' in metrics.read_text():
            break
        time.sleep(0.05)
    assert killed.poll() is None, "the run finished before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "manifest.json").exists()

    refused = innx(*FIT, "-o", str(tmp_path / "killed"))
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 1 and "pass --resume" in err

    changed = innx(*FIT[:-1], "16", "--resume", "-o", str(tmp_path / "killed"))
    _, err = changed.communicate(timeout=60)
    assert changed.returncode == 1 and "batch_size was 32, now 16" in err

    resumed = innx(*FIT, "--resume", "-o", str(tmp_path / "killed"))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert out.strip() == str(tmp_path / "killed")
    whole.communicate(timeout=120)
    assert whole.returncode == 0
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    curve_a = (tmp_path / "whole" / "metrics.jsonl").read_text()
    assert curve_a == (tmp_path / "killed" / "metrics.jsonl").read_text()


def test_cli_bad_input_is_one_line_and_exit_1(tmp_path):
    cases = [
        (["fit", "classifier", "nosuch:1", "-o", str(tmp_path / "a")], "unknown dataset"),
        (
            [
                "fit",
                "classifier",
                "shapes:n=50",
                "--backbone",
                "resnet5",
                "-o",
                str(tmp_path / "b"),
            ],
            "unknown backbone 'resnet5'",
        ),
        (
            ["fit", "classifier", "shapes:n=50", "--option", "depth=3", "-o", str(tmp_path / "c")],
            "no option depth",
        ),
        (
            [
                "fit",
                "classifier",
                "shapes:n=50",
                "--weights",
                str(tmp_path / "x.pt"),
                "-o",
                str(tmp_path / "d"),
            ],
            "does not exist",
        ),
        (
            ["fit", "classifier", "shapes:n=50", "--label", "size", "-o", str(tmp_path / "e")],
            "--label size: dataset shapes:n=50,size=32,seed=0 has no attribute 'size'; its "
            "categorical attributes: shape, fg_color, bg_color",
        ),
        (
            ["fit", "classifier", "shapes:n=50", "--label", "scale", "-o", str(tmp_path / "f")],
            "--label scale: attribute 'scale' of shapes:n=50,size=32,seed=0 is continuous",
        ),
    ]
    for args, message in cases:
        proc = innx(*args)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (args, err)
        assert out == ""
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # nothing written
