"""``innx backbones``, ``innx layers`` and warnings on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

from typer.testing import CliRunner, Result

from innx.backbones.smallcnn import SmallCNN
from innx.cli.app import build_app
from innx.errors import InnxWarning
from innx.plugins import registry
from innx.store.runs import write_run


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args), prog_name="innx")


def test_backbones_json_lists_smallcnn_with_its_distribution_and_options():
    result = invoke("backbones", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    smallcnn = rows["smallcnn"]
    assert smallcnn["dist"] == "innx"
    assert smallcnn["options"] == {"num_classes": 10, "size": 32, "width": 32}
    assert smallcnn["summary"].startswith("A compact CNN classifier")
    assert smallcnn["error"] is None


def test_backbones_table_is_one_line_per_backbone_in_a_pipe():
    result = invoke("backbones")
    assert result.exit_code == 0
    assert any(line.split()[:1] == ["smallcnn"] for line in result.stdout.splitlines())


def test_layers_json_lists_names_modules_and_shapes():
    result = invoke("layers", "smallcnn", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backbone"] == "smallcnn" and report["input_shape"] == [3, 32, 32]
    layers = {row["name"]: row for row in report["layers"]}
    assert list(layers) == [
        "input",
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "pool",
        "fc",
        "logits",
        "softmax",
    ]
    assert layers["conv2"] == {
        "name": "conv2",
        "module": "conv2",
        "shape": [64, 16, 16],
        "calls": 1,
        "computed": None,
        "of_input": False,
    }
    assert layers["softmax"]["computed"] == "softmax" and layers["softmax"]["shape"] == [10]
    assert report["preprocessing"]["size"] == [32, 32]


def test_layers_with_options_all_and_a_run_directory(tmp_path):
    result = invoke(
        "layers", "smallcnn", "--option", "size=64", "--num-classes", "3", "--all", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [row["name"] for row in report["layers"]]
    assert report["input_shape"] == [3, 64, 64] and "conv1.0" in names and "fc.1" in names
    assert report["layers"][names.index("logits")]["shape"] == [3]

    config = {"backbone": "smallcnn", "options": {"num_classes": 7}, "classes": list("abcdefg")}
    write_run(tmp_path / "run", SmallCNN(7).state_dict(), "classifier", config)
    result = invoke("layers", "smallcnn", "--weights", str(tmp_path / "run"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layers"][-1]["shape"] == [7]


def test_bad_input_is_one_line_and_exit_1(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 10)
    cases = [
        (["layers", "resnet5"], "unknown backbone 'resnet5'; choose one of:"),
        (["layers", "smallcnn", "--weights", str(broken)], f"cannot read {broken}"),
        (["layers", "smallcnn", "--option", "size"], "--option takes KEY=VALUE"),
        (["layers", "smallcnn", "--option", "size=8"], "smallcnn takes images of 32 to 64 px"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_layers_through_a_real_process():
    proc = subprocess.run(
        [sys.executable, "-m", "innx", "layers", "smallcnn", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["layers"][1]["shape"] == [32, 32, 32]
    assert proc.stderr == ""


def test_innx_warnings_print_as_one_line_on_stderr():
    def noisy() -> None:
        warnings.warn("weights look random", InnxWarning, stacklevel=1)
        warnings.warn("something else", DeprecationWarning, stacklevel=1)

    with (
        registry().registered("innx.commands", "noisy", noisy, dist="acme"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("always")
        result = invoke("noisy")
    assert result.exit_code == 0
    assert "warning: weights look random\n" in result.stderr
    assert "DeprecationWarning: something else" in result.stderr
