"""Run directories: written atomically, verified on load, refused when tampered with."""

from __future__ import annotations

import json

import pytest
import torch

from innx.errors import RunError
from innx.store import read_run, sha256_file, write_run
from innx.store.runs import DatasetInput, InputFile, RunInputs, StoreInput


def make_run(tmp_path):
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "flag": torch.tensor(True)}
    data = tmp_path / "acts.h5"
    data.write_bytes(b"pretend activations")
    run = write_run(
        tmp_path / "run",
        tensors,
        "invariance",
        {"zbar_dim": 3},
        inputs=RunInputs(files={"activations": InputFile.of(data)}),
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
    with pytest.raises(RunError, match=r"config\.json does not match the sha256 in its manifest"):
        read_run(run)
    run = old_run(tmp_path)  # written before the manifest vouched for the config
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunError, match=r"config\.json is not valid JSON"):
        read_run(run)
    (run / "config.json").write_text('{"kind": "invariance", "config": [2]}')
    with pytest.raises(RunError, match=r"'config' a JSON object; restore it or re-run the fit"):
        read_run(run)


def test_rewriting_a_run_replaces_it(tmp_path) -> None:
    run, _, _ = make_run(tmp_path)
    write_run(run, {"w": torch.zeros(1)}, "semantic", {"dim": 1})
    files = read_run(run)
    assert files.kind == "semantic" and torch.equal(files.tensors["w"], torch.zeros(1))


def test_inputs_round_trip(tmp_path) -> None:
    data = tmp_path / "acts.h5"
    data.write_bytes(b"pretend activations")
    inputs = RunInputs(
        store=StoreInput(str(data), "f00d", layer="fc", cond_shape=(4, 2), train=90, validation=10),
        files={"activations": InputFile.of(data)},
        fit={"store": str(data), "layer": "fc", "val_fraction": 0.1, "seed": 3},
    )
    write_run(tmp_path / "run", {"w": torch.zeros(1)}, "invariance", {}, inputs=inputs)
    assert read_run(tmp_path / "run").inputs == inputs
    assert inputs.split == (0.1, 3)
    dataset = RunInputs(dataset=DatasetInput("shapes:n=10", "beef", n=10, train=9, validation=1))
    write_run(tmp_path / "clf", {"w": torch.zeros(1)}, "classifier", {}, inputs=dataset)
    found = read_run(tmp_path / "clf").inputs
    assert found == dataset and found.store is None and found.split is None


# A manifest as innx fit invariance and innx fit semantic wrote them before the record was typed.
OLD_MANIFEST = {
    "format": "innx.run",
    "version": 1,
    "innx_version": "0.1.0",
    "torch_version": "2.4.0",
    "created": "2024-05-01T12:00:00+00:00",
    "kind": "invariance",
    "weights_sha256": None,
    "inputs": {},
    "seed": 0,
    "command": ["innx", "fit", "invariance"],
    "metrics": {"val_nll": -3.5},
    "store": {
        "path": "/data/acts.h5",
        "fingerprint": "c0ffee",
        "layer": "pool",
        "cond_shape": [16, 4, 4],
        "train": 1800,
        "validation": 200,
    },
    "fit": {"store": "acts.h5", "layer": "pool", "val_fraction": 0.1, "seed": 0, "lr": 0.002},
}


def old_run(tmp_path, **changes):
    run = write_run(tmp_path / "old", {"w": torch.zeros(2)}, "invariance", {"zbar_dim": 2})
    manifest = {**OLD_MANIFEST, "weights_sha256": sha256_file(run / "model.safetensors")}
    (run / "manifest.json").write_text(json.dumps({**manifest, **changes}))
    return run


def test_a_manifest_of_the_old_format_loads(tmp_path) -> None:
    files = read_run(old_run(tmp_path))
    assert files.inputs.store == StoreInput(
        "/data/acts.h5", "c0ffee", layer="pool", cond_shape=(16, 4, 4), train=1800, validation=200
    )
    assert files.inputs.split == (0.1, 0)
    assert files.inputs.fit is not None and files.inputs.fit["lr"] == 0.002
    assert files.inputs.dataset is None and files.inputs.files == {}
    assert files.metrics == {"val_nll": -3.5}
    semantic = {"path": "/d/a.h5", "fingerprint": "ab", "on": "layer:fc", "train": 5}
    assert read_run(old_run(tmp_path, store=semantic)).inputs.store == StoreInput(
        "/d/a.h5", "ab", on="layer:fc", train=5
    )
    classifier = {"spec": "shapes:n=20", "fingerprint": "cd", "n": 20, "train": 18, "validation": 2}
    found = read_run(old_run(tmp_path, store=None, dataset=classifier)).inputs
    assert found.store is None and found.dataset == DatasetInput("shapes:n=20", "cd", 20, 18, 2)
    bare = {k: v for k, v in OLD_MANIFEST.items() if k not in ("inputs", "store", "fit")}
    (tmp_path / "old" / "manifest.json").write_text(
        json.dumps({**bare, "weights_sha256": sha256_file(tmp_path / "old" / "model.safetensors")})
    )
    assert read_run(tmp_path / "old").inputs == RunInputs()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"store": {"path": "/d/a.h5"}}, "store.fingerprint"),
        ({"store": ["/d/a.h5"]}, "store"),
        ({"store": {**OLD_MANIFEST["store"], "cond_shape": [4, "x"]}}, "store.cond_shape"),
        ({"store": {**OLD_MANIFEST["store"], "train": "many"}}, "store.train"),
        ({"inputs": {"activations": {"path": "a.h5"}}}, "inputs.activations.sha256"),
        ({"fit": {"val_fraction": "a tenth"}}, "fit.val_fraction"),
        ({"metrics": [1.0]}, "metrics"),
    ],
)
def test_a_malformed_record_of_the_inputs_is_refused(tmp_path, changes, field) -> None:
    with pytest.raises(RunError, match=f"'{field}' must be .*restore it or re-run the fit"):
        read_run(old_run(tmp_path, **changes))
