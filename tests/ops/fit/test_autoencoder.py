"""``fit_autoencoder``: the run directory, resume, refused changes, other datasets.

Its quality on shapes with the defaults is tested in ``tests/cli/test_fit_pipeline.py``, on the
autoencoder that the pipeline tests share.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from innx.autoencoders.loader import load_autoencoder
from innx.device import resolve_device
from innx.errors import ConfigError, InnxError
from innx.ops.fit.autoencoder import AutoencoderFit, fit_autoencoder, psnr
from innx.store.runs import read_run

DATA = "shapes:n=256,size=32,seed=1"


def tiny(**options) -> AutoencoderFit:
    return AutoencoderFit(DATA, **{"steps": 12, "batch_size": 16, "latent_dim": 16, **options})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "ae"
    fit_autoencoder(tiny(steps=20), out)
    return out


def test_the_run_records_the_fit_and_its_held_out_psnr(trained):
    run = read_run(trained)
    assert run.kind == "autoencoder"
    assert run.config == {
        "plugin": "conv",
        "image_size": 32,
        "channels": 3,
        "latent_dim": 16,
        "width": 16,
        "blocks": 1,
    }
    metrics = run.manifest["metrics"]
    assert metrics["val_psnr"] > 10.0 and metrics["val_mse"] > 0.0
    assert metrics["steps"] == 20.0 and metrics["seconds"] > 0.0
    assert run.manifest["dataset"]["spec"] == DATA
    assert (run.manifest["dataset"]["train"], run.manifest["dataset"]["validation"]) == (230, 26)
    assert run.manifest["fit"]["kl_weight"] == 1e-5
    assert run.manifest["device"] == str(resolve_device("auto"))  # what auto is here
    assert run.manifest["fit"]["device"] == "auto"
    assert not (trained / "resume").exists()
    curve = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert curve[-1]["step"] == 20 and "val_psnr" in curve[-1]
    training = [record for record in curve if "loss" in record]
    assert training and {"loss", "mse", "kl", "lr"} <= set(training[0])
    evaluated = [record["step"] for record in curve if "val_psnr" in record]
    assert evaluated == list(range(2, 21, 2))  # ten held-out evaluations; the best one is kept
    assert run.manifest["metrics"]["best_step"] in evaluated


def test_the_run_loads_through_the_plugin_and_reconstructs(trained):
    from innx.data.spec import open_dataset

    autoencoder = load_autoencoder(trained)
    ds = open_dataset(DATA)
    x = torch.stack([ds[i][0] for i in range(8)]).float() / 255.0
    with torch.no_grad():
        zbar = autoencoder.encode(x)
        x_hat = autoencoder.decode(zbar)
    assert zbar.shape == (8, 16) and x_hat.shape == x.shape
    assert torch.isfinite(psnr(x_hat, x)).all()


def stop_at(step: int):
    def progress(done: int, total: int, latest: dict[str, float]) -> None:
        if done == step:
            raise KeyboardInterrupt

    return progress


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    fit_autoencoder(tiny(), tmp_path / "whole")
    fit = tiny(checkpoint_every=5)
    with pytest.raises(KeyboardInterrupt):
        fit_autoencoder(fit, tmp_path / "cut", progress=stop_at(8))
    assert not (tmp_path / "cut" / "manifest.json").exists()
    with pytest.raises(ConfigError, match="pass --resume"):
        fit_autoencoder(fit, tmp_path / "cut")
    with pytest.raises(ConfigError, match="batch_size was 16, now 8; kl_weight was 1e-05, now"):
        fit_autoencoder(tiny(batch_size=8, kl_weight=1e-3), tmp_path / "cut", resume=True)
    fit_autoencoder(fit, tmp_path / "cut", resume=True)
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    curve = (tmp_path / "whole" / "metrics.jsonl").read_text()
    assert curve == (tmp_path / "cut" / "metrics.jsonl").read_text()


def write_mnist(root: Path, n: int = 40) -> str:
    """A tiny MNIST in its raw IDX files: grey 28×28 images."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    header = struct.pack(">IIII", 0x803, n, 28, 28)
    (raw / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    labels = np.arange(n, dtype=np.uint8) % 10
    (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
    return f"mnist:{root}"


def test_grey_images_of_another_size_need_size_and_train_one_channel(tmp_path):
    data = write_mnist(tmp_path / "data")
    with pytest.raises(ConfigError, match=r"28×28 px images; pass --size 32, 64, 128"):
        fit_autoencoder(AutoencoderFit(data, steps=2), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    fit_autoencoder(AutoencoderFit(data, size=32, steps=2, batch_size=8), tmp_path / "ae")
    autoencoder = load_autoencoder(tmp_path / "ae")
    assert read_run(tmp_path / "ae").config["channels"] == 1
    assert autoencoder.decode(autoencoder.encode(torch.rand(2, 1, 32, 32))).shape == (2, 1, 32, 32)


def test_folders_of_varying_sizes_need_size(tmp_path):
    from PIL import Image

    for i, side in enumerate((30, 40, 50)):
        Image.new("RGB", (side, side), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(ConfigError, match="images of varying sizes; pass --size"):
        fit_autoencoder(AutoencoderFit(f"folder:{tmp_path}", steps=1), tmp_path / "run")


def test_a_folder_of_one_size_needs_no_size(tmp_path):
    from PIL import Image

    from innx.data import open_dataset
    from innx.ops.fit.autoencoder import autoencoder_config

    for i in range(3):
        Image.new("RGB", (64, 64), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    data = f"folder:{tmp_path}"
    assert autoencoder_config(AutoencoderFit(data), open_dataset(data)).image_size == 64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 48}, "--size must be one of 32, 64, 128, got 48"),
        ({"preset": "huge"}, "unknown preset 'huge'; choose one of: demo, standard"),
        ({"steps": 0}, "--steps must be at least 1"),
        ({"kl_weight": -1.0}, "--kl-weight must be zero or positive"),
        ({"val_fraction": 1.0}, "--val-fraction must be between 0 and 1"),
        ({"lr": 0.0}, "--lr must be positive"),
        ({"cuda_graph": True, "device": "cpu"}, "--cuda-graph needs a CUDA device, not cpu"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        AutoencoderFit(DATA, **options)


def test_the_default_length_is_epochs_within_a_floor_and_a_cap():
    fit = AutoencoderFit(DATA)
    assert fit.total_steps(100) == 3000  # 6 epochs of 100 steps: too few for any dataset
    assert fit.total_steps(1000) == 6000
    assert fit.total_steps(10_000) == 30_000  # 60 000 would run for days
    assert AutoencoderFit(DATA, epochs=2.5).total_steps(100) == 250  # asked for: no floor
    assert AutoencoderFit(DATA, steps=7).total_steps(100) == 7
    with pytest.raises(ConfigError, match="either --steps or --epochs"):
        AutoencoderFit(DATA, steps=7, epochs=1.0)


def test_the_classifier_s_agreement_on_reconstructions_is_recorded(tmp_path):
    from innx.ops.fit.classifier import ClassifierFit, fit_classifier

    fit_classifier(ClassifierFit(DATA, steps=5, batch_size=32), tmp_path / "clf")
    fit_autoencoder(tiny(steps=4, classifier=str(tmp_path / "clf")), tmp_path / "ae")
    metrics = read_run(tmp_path / "ae").manifest["metrics"]
    assert 0.0 <= metrics["val_agreement"] <= 1.0
    with pytest.raises(InnxError, match="not a classifier"):
        fit_autoencoder(tiny(steps=2, classifier=str(tmp_path / "ae")), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
