"""Run directories: written atomically, verified on load, refused when tampered with."""

from __future__ import annotations

import json

import pytest
import torch

from innx.errors import RunError
from innx.store import read_run, sha256_file, write_run


def make_run(tmp_path):
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "flag": torch.tensor(True)}
    data = tmp_path / "acts.h5"
    data.write_bytes(b"pretend activations")
    run = write_run(
        tmp_path / "run",
        tensors,
        "invariance",
        {"zbar_dim": 3},
        inputs={"activations": data},
        seed=5,
        metrics={"nll": 1.5},
        command=["innx", "fit"],
    )
    return run, tensors, data


def test_round_trip_and_manifest(tmp_path) -> None:
    run, tensors, data = make_run(tmp_path)
    files = read_run(run)
    assert files.kind == "invariance" and files.config == {"zbar_dim": 3}
    assert torch.equal(files.tensors["w"], tensors["w"]) and bool(files.tensors["flag"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["weights_sha256"] == sha256_file(run / "model.safetensors")
    assert manifest["inputs"]["activations"]["sha256"] == sha256_file(data)
    assert manifest["seed"] == 5 and manifest["metrics"] == {"nll": 1.5}
    assert manifest["command"] == ["innx", "fit"]
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json",
        "manifest.json",
        "model.safetensors",
    ]


def test_tampered_weights_are_refused(tmp_path) -> None:
    run, _, _ = make_run(tmp_path)
    raw = bytearray((run / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (run / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(RunError, match="does not match the sha256 in its manifest"):
        read_run(run)


def test_unfinished_and_missing_runs_are_refused(tmp_path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        read_run(tmp_path / "nope")
    run, _, _ = make_run(tmp_path)
    (run / "manifest.json").unlink()
    with pytest.raises(RunError, match="not a finished run"):
        read_run(run)


def test_corrupt_json_is_refused(tmp_path) -> None:
    run, _, _ = make_run(tmp_path)
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunError, match=r"config\.json is not valid JSON"):
        read_run(run)


def test_rewriting_a_run_replaces_it(tmp_path) -> None:
    run, _, _ = make_run(tmp_path)
    write_run(run, {"w": torch.zeros(1)}, "semantic", {"dim": 1})
    files = read_run(run)
    assert files.kind == "semantic" and torch.equal(files.tensors["w"], torch.zeros(1))
