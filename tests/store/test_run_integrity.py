"""The manifest vouches for every file a run is loaded from: an edited config.json is refused
like edited weights; runs written before it recorded the config still load; a config that
cannot build its model is one line; a file given as a run directory is named as a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from innx.autoencoders.conv import AutoencoderConfig, ConvAutoencoder
from innx.autoencoders.loader import load_autoencoder
from innx.errors import RunError
from innx.flows import CONFIGS, MODELS, SemanticConfig, SemanticFlow
from innx.ops.fit.models import load_model, save_model
from innx.store.runs import CONFIG, MANIFEST, WEIGHTS, build_from_config, read_run, sha256_file
from innx.store.runs import write_run as write


def edit_config(run: Path, **changes: object) -> None:
    raw = json.loads((run / CONFIG).read_text())
    raw["config"].update(changes)
    (run / CONFIG).write_text(json.dumps(raw))


def as_before_files(run: Path) -> None:
    """Make ``run``'s manifest one written before ``files`` was recorded (weights only)."""
    manifest = json.loads((run / MANIFEST).read_text())
    del manifest["files"]
    (run / MANIFEST).write_text(json.dumps(manifest))


def semantic_run(tmp_path: Path) -> Path:
    flow = SemanticFlow(SemanticConfig.preset("small", dim=6, factors={"shape": 2, "colour": 2}))
    return save_model(flow, tmp_path / "e")


def test_the_manifest_records_the_sha256_of_every_file_a_run_is_loaded_from(tmp_path) -> None:
    run = write(tmp_path / "run", {"w": torch.ones(3)}, "invariance", {"zbar_dim": 3})
    manifest = json.loads((run / MANIFEST).read_text())
    assert manifest["files"] == {
        WEIGHTS: sha256_file(run / WEIGHTS),
        CONFIG: sha256_file(run / CONFIG),
    }
    assert manifest["weights_sha256"] == manifest["files"][WEIGHTS]  # for older readers


def test_a_relabelled_factor_block_is_refused(tmp_path) -> None:
    run = semantic_run(tmp_path)
    edit_config(run, factors={"colour": 2, "shape": 2})  # the blocks swap their concepts
    with pytest.raises(RunError) as refused:
        load_model(run, "semantic")
    expected = sha256_file(run / CONFIG)
    message = str(refused.value)
    assert message.startswith(f"{run / CONFIG} does not match the sha256 in its manifest")
    assert f"got {expected})" in message and message.endswith("restore it or re-run the fit")
    assert "\n" not in message


def test_a_changed_image_size_of_an_autoencoder_is_refused(tmp_path) -> None:
    model = ConvAutoencoder(AutoencoderConfig.preset("demo", latent_dim=4, width=2))
    config = {"plugin": "conv", **model.config.to_dict()}
    run = write(tmp_path / "ae", model.state_dict(), "autoencoder", config)
    assert load_autoencoder(run).image_size == 32
    edit_config(run, image_size=64)  # the same weights fit: it would load, and extract wrongly
    with pytest.raises(RunError, match=r"ae/config\.json does not match the sha256"):
        load_autoencoder(run)


def test_runs_written_before_the_config_was_recorded_still_load(tmp_path) -> None:
    run = semantic_run(tmp_path)
    as_before_files(run)
    edit_config(run, kernels="torch")  # nothing vouches for it: read as it is
    assert load_model(run, "semantic").config.kernels == "torch"
    (run / WEIGHTS).write_bytes((run / WEIGHTS).read_bytes() + b" ")  # the weights still are
    with pytest.raises(RunError, match=r"model\.safetensors does not match the sha256"):
        read_run(run)


def test_the_manifest_names_only_the_files_of_the_run(tmp_path) -> None:
    run = write(tmp_path / "run", {"w": torch.ones(3)}, "invariance", {"zbar_dim": 3})
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"]["../secret"] = "00"
    (run / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=r"'files\.\.\./secret' must be one of model\.safetensors"):
        read_run(run)
    (run / CONFIG).unlink()
    del manifest["files"]["../secret"]
    (run / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=r"has no config\.json; the run is incomplete"):
        read_run(run)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("zbar_dim", "abc"),
        ("zbar_dim", [4]),
        ("cond_shape", ["a"]),
        ("n_blocks", "x"),
        ("width", None),
        ("clamp", 3),
    ],
)
def test_a_config_of_the_wrong_type_is_one_line(tmp_path, field, value) -> None:
    """What a hand-edited config of a run written before ``files`` gives, where a module is
    built from it: a one-line RunError naming config.json, never a traceback."""
    config = CONFIGS["invariance"].preset("small", zbar_dim=4, cond_shape=(3,))
    run = save_model(MODELS["invariance"](config), tmp_path / "t")
    as_before_files(run)
    edit_config(run, **{field: value})
    files = read_run(run)

    def build() -> torch.nn.Module:
        return MODELS[files.kind](CONFIGS[files.kind].from_dict(files.config))

    with pytest.raises(RunError) as refused:
        build_from_config(files, build, "invariance model")
    message = str(refused.value)
    assert message.startswith(f"{run / CONFIG} does not describe an invariance model (")
    assert message.endswith("); restore it or re-run the fit") and "\n" not in message


@pytest.mark.parametrize("name", [WEIGHTS, MANIFEST, CONFIG, "notes.txt"])
def test_a_file_given_as_a_run_directory_is_named_as_a_file(tmp_path, name) -> None:
    run = write(tmp_path / "run", {"w": torch.ones(3)}, "invariance", {"zbar_dim": 3})
    path = run / name
    path.touch()
    hint = f" (its folder {run} may be)" if name != "notes.txt" else ""
    with pytest.raises(RunError) as refused:
        read_run(path)
    assert str(refused.value) == (
        f"{path} is a file, not a run directory{hint}; pass the -o directory of an innx fit, "
        "the folder that holds manifest.json"
    )


def test_invariance_given_a_file_of_a_run_says_so(tmp_path) -> None:
    """``--invariance runs/t/model.safetensors`` (render, analyze) reads its run here."""
    from conftest import write_synthetic_store

    from innx.ops.pipeline import Pipeline

    config = CONFIGS["invariance"].preset("small", zbar_dim=6, cond_shape=(8,))
    run = save_model(MODELS["invariance"](config), tmp_path / "t")
    with (
        Pipeline(write_synthetic_store(tmp_path / "acts.h5", n=20), device="cpu") as pipe,
        pytest.raises(RunError, match=rf"^{run / WEIGHTS} is a file, not a run directory \(its"),
    ):
        pipe.invariance(run / WEIGHTS, "fc")
