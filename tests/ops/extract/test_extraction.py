"""``innx extract``: stored values equal a plain forward pass; resume, distributed, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from innx.backbones import load_backbone
from innx.data.spec import open_dataset
from innx.errors import ConfigError
from innx.ops.extract.extraction import ExtractOptions, extract, shard_path
from innx.plugins import registry
from innx.store import ActivationStore
from innx.store.runs import write_run

SHAPES = "shapes:n=70,size=32,seed=5"


def plain_forward(backbone_name: str, spec: str, layers: list[str], **options):
    """The same activations without innx's pipeline: preprocess each image, one forward pass."""
    torch.manual_seed(0)  # what extract does before building a backbone (seed 0)
    backbone, _ = load_backbone(backbone_name, options=options, warn_random=False)
    ds = open_dataset(spec)
    x = torch.stack([backbone.preprocessing(ds[i][0]) for i in range(len(ds))])
    with torch.no_grad():
        expected = {}
        for name in layers:
            expected[name] = backbone.capture(x, [name])[name].numpy()
    return backbone, ds, expected


def read_all(path: Path) -> dict[str, np.ndarray]:
    with ActivationStore(path) as store:
        arrays = {f"layers/{n}": store.load(n) for n in store.layer_names}
        arrays.update(index=store.index, attributes=store.attributes)
        if store.labels is not None:
            arrays["labels"] = store.labels
        if store.latents is not None:
            arrays["latents"] = store.load("latents")
        if store.images is not None:
            arrays["images"] = store.load("images")
    return arrays


def test_smallcnn_store_equals_a_plain_forward_pass(tmp_path):
    layers = ["input", "conv2", "pool", "softmax"]
    options = ExtractOptions(SHAPES, "smallcnn", tuple(layers), batch_size=16, store_images=True)
    with pytest.warns(Warning, match="random weights"):
        result = extract(options, tmp_path / "acts.h5")
    _, ds, expected = plain_forward("smallcnn", SHAPES, layers)
    assert result.rows == 70 and result.written == 70
    with ActivationStore(tmp_path / "acts.h5") as store:
        assert store.complete and store.layer_names == layers
        order = store.index  # rows in a seeded random order of the dataset
        assert sorted(order.tolist()) == list(range(70)) and order.tolist() != list(range(70))
        for name in layers:
            np.testing.assert_allclose(store.load(name), expected[name][order], rtol=0, atol=1e-5)
        assert store.labels.tolist() == [ds[i][1] for i in order]
        np.testing.assert_array_equal(store.attributes, np.stack([ds[i][2].numpy() for i in order]))
        images = store.load("images")
        assert images.shape == (70, 32, 32, 3) and images.dtype == np.uint8
        np.testing.assert_array_equal(images[3], ds[order[3]][0].permute(1, 2, 0).numpy())
        meta = store.metadata
        assert meta["dataset"]["spec"] == SHAPES and meta["dataset"]["fingerprint"]
        assert meta["backbone"]["name"] == "smallcnn" and meta["backbone"]["plugin"] == "innx"
        assert meta["preprocessing"]["size"] == [32, 32]


def test_loader_workers_write_the_same_store_as_the_main_process(tmp_path):
    """Items read and preprocessed (with thumbnails) in two worker processes: the same bytes."""
    stores = {}
    for workers in (0, 2):
        options = ExtractOptions(
            SHAPES, "smallcnn", ("conv2", "fc"), batch_size=16, store_images=True, workers=workers
        )
        with pytest.warns(Warning, match="random weights"):
            extract(options, tmp_path / f"acts-{workers}.h5")
        stores[workers] = read_all(tmp_path / f"acts-{workers}.h5")
    assert stores[0].keys() == stores[2].keys()
    for name, value in stores[0].items():
        np.testing.assert_array_equal(stores[2][name], value, err_msg=name)


def test_a_class_sorted_folder_gives_class_balanced_held_out_rows(tmp_path):
    from innx.ops.data.folders import write_shapes_folder
    from innx.train.split import split_store_rows

    folder = write_shapes_folder(tmp_path / "images", n=800, size=32, seed=3)
    spec = f"folder:{folder}"
    dataset = open_dataset(spec)
    in_order = [dataset[i][1] for i in range(len(dataset))]
    assert in_order == sorted(in_order)  # the folder lists its classes one after the other
    with pytest.warns(Warning, match="random weights"):
        extract(ExtractOptions(spec, "smallcnn", ("fc",), batch_size=50), tmp_path / "acts.h5")
    with ActivationStore(tmp_path / "acts.h5") as store:
        labels, index = store.labels, store.index
    assert labels.tolist() == [in_order[i] for i in index]
    share = np.bincount(labels, minlength=4) / labels.size
    for rows in (split_store_rows(index, 0.1, seed=0)[1], np.arange(100)):  # held out; a block
        counts = np.bincount(labels[rows], minlength=4) / rows.size
        assert np.abs(counts - share).max() < 0.15, counts  # 3 sd; one class would be 0.75


def test_torchvision_store_equals_a_plain_forward_pass(tmp_path):
    spec = "shapes:n=5,size=48,seed=1"
    layers = ["layer2", "avgpool", "fc"]
    extract(
        ExtractOptions(spec, "resnet18", tuple(layers), batch_size=2, dtype="float16"),
        tmp_path / "a.h5",
    )
    _, _, expected = plain_forward("resnet18", spec, layers)
    with ActivationStore(tmp_path / "a.h5") as store:
        for name in layers:
            got = store.load(name)
            assert got.dtype == np.float16
            np.testing.assert_allclose(got, expected[name][store.index], rtol=2e-3, atol=2e-3)


class TinyAutoencoder:
    """A fixed linear map of 8x8 images: enough to check the hook."""

    latent_dim, image_size = 6, 8

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight

    def decode(self, zbar: torch.Tensor) -> torch.Tensor:
        return (zbar @ self.weight.T).view(-1, 3, 8, 8)

    def to(self, device):
        return self


def load_tiny(run):
    return TinyAutoencoder(run.tensors["weight"])


def test_autoencoder_codes_are_stored_as_latents(tmp_path):
    weight = torch.randn(3 * 8 * 8, 6, generator=torch.Generator().manual_seed(0))
    write_run(tmp_path / "ae", {"weight": weight}, "autoencoder", {"plugin": "tiny-ae"})
    with registry().registered("innx.autoencoders", "tiny-ae", load_tiny, dist="tests"):
        options = ExtractOptions(SHAPES, "smallcnn", ("pool",), autoencoder=str(tmp_path / "ae"))
        extract(options, tmp_path / "acts.h5")
    ds = open_dataset(SHAPES)
    from innx.backbones import Preprocessing

    small = Preprocessing(size=(8, 8), mean=(0.0,) * 3, std=(1.0,) * 3)
    x = torch.stack([small.fit(ds[i][0]) for i in range(70)]).float() / 255
    with ActivationStore(tmp_path / "acts.h5") as store:
        np.testing.assert_allclose(
            store.load("latents"), (x.flatten(1) @ weight).numpy()[store.index], atol=1e-5
        )
        assert store.images is None


def test_bad_input_before_any_work(tmp_path):
    with pytest.raises(
        ConfigError, match=r"layer 'conv9' is not in smallcnn; choose one of: input, conv1"
    ):
        extract(ExtractOptions(SHAPES, "smallcnn", ("conv9",)), tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()
    with pytest.raises(ConfigError, match="does not exist; create it first"):
        extract(ExtractOptions(SHAPES, "smallcnn", ("pool",)), tmp_path / "nope" / "a.h5")
    with pytest.raises(ConfigError, match="--dtype must be one of"):
        ExtractOptions(SHAPES, "smallcnn", ("pool",), dtype="int8")


def innx(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "innx", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_cli_refuses_to_clobber_and_names_corrupt_images(tmp_path):
    args = ["extract", "shapes:n=20,size=32", "--backbone", "smallcnn", "--layer", "pool"]
    first = innx(*args, "-o", str(tmp_path / "a.h5"))
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert out.strip() == str(tmp_path / "a.h5")
    assert "warning: backbone smallcnn has random weights" in err
    again = innx(*args, "-o", str(tmp_path / "a.h5"))
    _, err = again.communicate(timeout=120)
    assert again.returncode == 1 and "--overwrite" in err.splitlines()[-1]

    from PIL import Image

    folder = tmp_path / "imgs"
    (folder / "a").mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (32, 32), (60 * i, 0, 0)).save(folder / "a" / f"{i}.png")
    (folder / "a" / "2.png").write_bytes(b"not a png")
    base = [
        "extract",
        f"folder:{folder}",
        "--backbone",
        "smallcnn",
        "--layer",
        "pool",
        "--batch-size",
        "2",
    ]
    bad = innx(*base, "-o", str(tmp_path / "b.h5"))
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 1 and "2.png" in err.splitlines()[-1]
    skipped = innx(*base, "--skip-bad", "--resume", "-o", str(tmp_path / "b.h5"), "--json")
    out, err = skipped.communicate(timeout=120)
    assert skipped.returncode == 0, err
    assert json.loads(out)["bad"] == [2]
    with ActivationStore(tmp_path / "b.h5") as store:
        assert sorted(store.index.tolist()) == [-1, 0, 1, 3]
        assert store.bad.tolist() == [2]


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["extract", "shapes:n=6000,size=32", "--backbone", "smallcnn", "--layer", "conv4"]
    args += ["--layer", "fc", "--batch-size", "40"]
    env = {"OMP_NUM_THREADS": "1"}
    whole = innx(*args, "-o", str(tmp_path / "whole.h5"), env=env)
    assert whole.wait(timeout=300) == 0, whole.stderr.read() if whole.stderr else ""
    for delay in (0.3, 1.0):
        path = tmp_path / f"killed-{delay}.h5"
        killed = innx(*args, "-o", str(path), env=env)
        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        assert killed.poll() is None, "finished before the kill"
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        resumed = innx(*args, "--resume", "-o", str(path), env=env)
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err
        a, b = read_all(tmp_path / "whole.h5"), read_all(path)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tmp_path):
    args = ["shapes:n=50,size=32,seed=2", "--backbone", "smallcnn", "--layer", "conv3"]
    args += ["--layer", "softmax", "--batch-size", "8", "--store-images"]
    env = {"OMP_NUM_THREADS": "1"}
    single = innx("extract", *args, "-o", str(tmp_path / "one.h5"), env=env)
    assert single.wait(timeout=300) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "innx"]
    proc = subprocess.run(
        [*cmd, "extract", *args, "-o", str(tmp_path / "two.h5")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    assert shard_path(tmp_path / "two.h5", 1, 2).is_file()
    a, b = read_all(tmp_path / "one.h5"), read_all(tmp_path / "two.h5")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def nan_net():
    """A backbone whose second layer is NaN for every other image."""
    from torch import nn

    from innx.backbones import Backbone, Preprocessing

    class Half(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x.mean(dim=(2, 3))
            y[::2] = float("nan")
            return y

    model = nn.Sequential(nn.Identity(), Half())
    pre = Preprocessing(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    return Backbone(model, {"image": "0", "mean": "1"}, pre)


def reserved_net():
    """A backbone whose public layers are named like the store's own datasets."""
    from torch import nn

    from innx.backbones import Backbone, Preprocessing

    model = nn.Sequential(nn.Identity(), nn.Flatten())
    pre = Preprocessing(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    return Backbone(model, {"labels": "0", "flat": "1"}, pre)


@pytest.mark.parametrize("name", ["latents", "labels", "index", "images", "attributes", "done"])
def test_a_layer_named_like_a_store_dataset_is_refused_before_any_work(name, tmp_path):
    with pytest.raises(ConfigError, match=f"layer name '{name}' is reserved for the store's own"):
        ExtractOptions(SHAPES, "smallcnn", ("pool", name))


def test_a_backbone_layer_named_like_a_store_dataset_is_refused_at_extract(tmp_path):
    from typer.testing import CliRunner

    from innx.cli.app import build_app

    out = tmp_path / "a.h5"
    with registry().registered("innx.backbones", "reserved-net", reserved_net, dist="tests"):
        args = ["extract", SHAPES, "--backbone", "reserved-net", "--layer", "all", "-o", str(out)]
        result = CliRunner().invoke(build_app(), args, prog_name="innx")
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "error: layer name 'labels' is reserved for the store's own 'labels' dataset, so the "
        "layer could never be read back; store another layer, or give this one another public "
        "name in its backbone\n"
    )
    assert not out.exists()


def test_cli_bad_input_in_process(tmp_path):
    from typer.testing import CliRunner

    from innx.cli.app import build_app

    def run(*args: str):
        return CliRunner().invoke(build_app(), ["extract", SHAPES, *args], prog_name="innx")

    with registry().registered("innx.backbones", "nan-net", nan_net, dist="tests"):
        result = run("--backbone", "nan-net", "--layer", "mean", "-o", str(tmp_path / "a.h5"))
        assert result.exit_code == 0, result.output
        assert "warning: 105 non-finite activation values were stored" in result.stderr
        args = ["--backbone", "nan-net", "--layer", "mean", "--batch-size", "10"]
        result = run(*args, "--fail-on-nonfinite", "-o", str(tmp_path / "b.h5"))
        assert result.exit_code == 1
        assert "non-finite activations in rows 0..9" in result.stderr
        with ActivationStore(tmp_path / "b.h5", allow_incomplete=True) as store:
            assert not store.complete and store.done_count == 0
    cases = [
        (["--backbone", "smallcnn", "--layer", "conv9"], "layer 'conv9' is not in smallcnn"),
        (
            ["--backbone", "smallcnn", "--layer", "pool", "-o", str(tmp_path / "x" / "a.h5")],
            "does not exist",
        ),
        (
            ["--backbone", "smallcnn", "--layer", "pool", "--dtype", "int8"],
            "--dtype must be one of",
        ),
        (["--backbone", "smallcnn"], "name at least one --layer"),
    ]
    for args, message in cases:
        if "-o" not in args:
            args = [*args, "-o", str(tmp_path / "c.h5")]
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
