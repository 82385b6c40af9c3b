"""The first-party plugin innx-timm (``plugins/innx-timm``), installed for real.

Small randomly initialised timm models (a ResNet, a ConvNeXt, vision transformers with one, two
and five prefix tokens) at small input sizes, so each builds and runs in well under a second. The
expected layers are written out here; activations are checked against timm's own
``forward_intermediates`` / ``forward_head``, not against innx's hooks. Nothing may touch the
network while these tests run.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from innx.backbones import Backbone, build_backbone, describe_factory, load_backbone
from innx.data import open_dataset
from innx.errors import ConfigError
from innx.plugins import registry

DIST = "innx-timm"
INSTALL = "python -m pip install -e plugins/innx-timm"

timm = pytest.importorskip("timm", reason=f"timm comes with {DIST}: {INSTALL}")

Row = tuple[str, str, tuple[int, ...]]
"""A public layer: name, module path, per-sample shape."""

TOKENS = "patch tokens → map (first {} token{} dropped)"


def head(module: str, dim: int, classes: int = 1000) -> list[Row]:
    return [("pre_logits", module, (dim,)), ("logits", module, (classes,))]


def vit_rows(size: int, dim: int, patch: int, blocks: int) -> list[Row]:
    grid = size // patch
    tokens = [(f"blocks.{i}", f"blocks.{i}", (dim, grid, grid)) for i in range(blocks)]
    return [("input", "", (3, size, size)), *tokens, ("norm", "norm", (dim, grid, grid))]


def resnet18_rows(size: int) -> list[Row]:
    s = size // 2
    return [
        ("input", "", (3, size, size)),
        ("act1", "act1", (64, s, s)),
        ("layer1", "layer1", (64, s // 2, s // 2)),
        ("layer2", "layer2", (128, s // 4, s // 4)),
        ("layer3", "layer3", (256, s // 8, s // 8)),
        ("layer4", "layer4", (512, s // 16, s // 16)),
        *head("fc", 512),
    ]


def convnext_atto_rows(size: int) -> list[Row]:
    s = size // 4
    widths = (40, 80, 160, 320)
    stages = [(f"stages.{i}", f"stages.{i}", (w, s >> i, s >> i)) for i, w in enumerate(widths)]
    return [("input", "", (3, size, size)), *stages, *head("head.fc", 320)]


MODELS: dict[str, tuple[dict[str, Any], list[Row], int]] = {
    # name: (options, layers but softmax, prefix tokens)
    "resnet18": ({"img_size": 32}, resnet18_rows(32), 0),
    "convnext_atto": ({"img_size": 32}, convnext_atto_rows(32), 0),
    "vit_tiny_patch16_224": (
        {"img_size": 32},
        [*vit_rows(32, 192, 16, 12), *head("head", 192)],
        1,
    ),
    "deit_tiny_distilled_patch16_224": (
        {"img_size": 32},
        [*vit_rows(32, 192, 16, 12), *head("head", 192)],
        2,
    ),
    "vit_small_patch14_reg4_dinov2": (
        {"img_size": 28, "num_classes": 10},
        [*vit_rows(28, 384, 14, 12), *head("head", 384, 10)],
        5,
    ),
}


# -- fixtures -------------------------------------------------------------------------------------


def require_plugin() -> None:
    """Fail (not skip) when the plugin is not installed, saying how to install it."""
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed in {sys.prefix}; run: {INSTALL}", pytrace=False)


def _offline(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("innx-timm tried to open a network connection")


@pytest.fixture(scope="module", autouse=True)
def environment() -> Iterator[None]:
    """Every plugin enabled, a fresh registry, no network connection allowed (nor huggingface
    hub access), one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("INNX_PLUGINS", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", _offline)
        registry().reset()
        yield
    registry().reset()
    torch.set_num_threads(threads)


def build(name: str, **options: Any) -> Backbone:
    require_plugin()
    torch.manual_seed(0)
    return build_backbone(f"timm:{name}", **options)


def reference(model: torch.nn.Module, x: torch.Tensor, prefix: int) -> dict[str, torch.Tensor]:
    """Every public layer of ``model`` for input ``x``, computed by timm's own methods."""
    with torch.no_grad():
        stages = model.forward_intermediates(x, intermediates_only=True, output_fmt="NCHW")
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        logits = model(x)
    names = [str(info["module"]) for info in model.feature_info]
    out = dict(zip(names, stages, strict=True))
    if prefix:  # a transformer: norm is the normed tokens, the patch ones as a map
        patches = features[:, prefix:]
        side = math.isqrt(patches.shape[1])
        out["norm"] = patches.transpose(1, 2).reshape(len(x), -1, side, side)
    if prefix == 2:  # distilled DeiT: innx reads the class token's head, timm averages two
        pre_logits = features[:, 0]
        logits = model.head(pre_logits)
    out.update(pre_logits=pre_logits, logits=logits, softmax=logits.softmax(1))
    return out


# -- the plugin is found --------------------------------------------------------------------------


def test_one_entry_point_is_a_family_of_every_timm_model() -> None:
    require_plugin()
    (entry,) = [e for e in registry().entries("innx.backbones") if e.dist == DIST]
    assert (entry.name, entry.value) == ("timm", "innx_timm:family")
    info = describe_factory("timm")
    assert info["name"] == "timm:<name>" and info["members"] == len(timm.list_models())
    assert "innx backbones timm" in info["summary"]


def test_cli_backbones_lists_a_familys_names_on_demand() -> None:
    require_plugin()
    listed = innx("backbones", "timm").stdout.split()
    assert len(listed) == len(timm.list_models())
    assert {"timm:resnet18", "timm:convnext_atto", "timm:vit_tiny_patch16_224"} <= set(listed)


# -- layers and activations -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_layers_from_the_model_with_their_shapes(name: str) -> None:
    options, rows, prefix = MODELS[name]
    backbone = build(name, **options)
    infos = backbone.layer_info()
    assert [(i.name, i.module, i.shape) for i in infos] == [*rows, ("softmax", *rows[-1][1:])]
    by_name = {i.name: i for i in infos}
    assert by_name["pre_logits"].of_input and not by_name["logits"].of_input
    if prefix:
        token = "token" if prefix == 1 else "tokens"
        assert by_name["blocks.0"].computed == TOKENS.format(prefix, "" if prefix == 1 else "s")
        assert token in str(by_name["norm"].computed)
    assert backbone.name == f"timm:{name}" and backbone.options == options


@pytest.mark.parametrize("name", list(MODELS))
def test_capture_equals_timms_own_forward(name: str) -> None:
    options, rows, prefix = MODELS[name]
    backbone = build(name, **options)
    x = torch.randn(
        2, *backbone.preprocessing.input_shape, generator=torch.Generator().manual_seed(1)
    )
    want = reference(backbone.model, x, prefix)
    names = [r[0] for r in rows[1:]] + ["softmax"]
    with torch.no_grad():
        got = backbone.capture(x, names)
    for layer in names:
        torch.testing.assert_close(got[layer], want[layer], atol=1e-5, rtol=1e-5, msg=layer)


def test_preprocessing_is_timms_data_config() -> None:
    for name, size in (("vit_tiny_patch16_224", 64), ("convnext_atto", 48)):
        backbone = build(name, img_size=size)
        config = timm.data.resolve_model_data_config(backbone.model)
        pre = backbone.preprocessing
        assert pre.size == (size, size)
        assert pre.resize == math.floor(size / config["crop_pct"])
        assert (pre.mean, pre.std) == (tuple(config["mean"]), tuple(config["std"]))
        assert pre.interpolation == config["interpolation"] == "bicubic"
    default = build("resnet18").preprocessing
    assert default.size == (224, 224) and default.resize == math.floor(224 / 0.95)


def test_num_classes_zero_has_pre_logits_and_no_classifier() -> None:
    backbone = build("convnext_atto", img_size=32, num_classes=0)
    assert backbone.logits is None and backbone.num_classes is None
    assert backbone.layer_info()[-1].name == "pre_logits"


# -- weights --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_saved_weights_give_identical_activations(suffix: str, tmp_path: Path) -> None:
    original = build("vit_tiny_patch16_224", img_size=32)
    path = tmp_path / f"vit{suffix}"
    state = {k: v.contiguous() for k, v in original.model.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    torch.manual_seed(123)  # another random init, overwritten by the file
    loaded, weights = load_backbone("timm:vit_tiny_patch16_224", path, options={"img_size": 32})
    assert weights.path == str(path) and weights.sha256
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a = original.capture(x, ["blocks.3", "logits"])
        b = loaded.capture(x, ["blocks.3", "logits"])
    for layer in a:
        assert torch.equal(a[layer], b[layer]), layer


def test_weights_for_other_classes_say_pass_num_classes(tmp_path: Path) -> None:
    path = tmp_path / "r.safetensors"
    save_file(build("resnet18", img_size=32, num_classes=10).model.state_dict(), str(path))
    with pytest.raises(ConfigError, match=r"fc.weight: file \[10, 512\].*pass --num-classes 10"):
        load_backbone("timm:resnet18", path, options={"img_size": 32})


# -- bad names and options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("timm:resnt18", {}, r"timm has no backbone 'resnt18' \(did you mean resnet18"),
        ("timm", {}, "timm is a family of backbones: name one as timm:NAME"),
        ("timm:resnet18", {"foo": 1}, "unexpected keyword argument 'foo'.*fix or drop --option"),
        ("timm:vit_tiny_patch16_224", {"img_size": "abc"}, "img_size must be a whole number"),
        ("timm:resnet18", {"pretrained": True}, "never downloads weights.*--weights FILE"),
        ("timm:resnet18", {"features_only": True}, "pick them with --layer"),
    ],
)
def test_bad_names_and_options_say_the_fix(
    name: str, options: dict[str, Any], message: str
) -> None:
    require_plugin()
    with pytest.raises(ConfigError, match=message) as caught:
        build_backbone(name, **options)
    assert "\n" not in str(caught.value)


def test_cli_bad_name_is_one_line_and_exit_1() -> None:
    require_plugin()
    result = innx("layers", "timm:resnt18", check=False)
    assert result.returncode == 1 and not result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {lines[0].removeprefix('error: ')}"] and "resnet18" in lines[0]


# -- the command line, in a real process ----------------------------------------------------------


def innx(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m innx ARGS`` in a fresh process, with network access and the hub disabled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNX_")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2")
    cmd = [sys.executable, "-m", "innx", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    ("name", "rows"), [("resnet18", resnet18_rows(224)), ("convnext_atto", convnext_atto_rows(224))]
)
def test_default_input_size_layers(name: str, rows: list[Row]) -> None:
    infos = build(name).layer_info()
    assert [(i.name, i.module, i.shape) for i in infos] == [*rows, ("softmax", *rows[-1][1:])]


def test_cli_layers_lists_names_modules_and_shapes() -> None:
    require_plugin()
    args = ("layers", "timm:vit_tiny_patch16_224", "--option", "img_size=64", "--json")
    report = json.loads(innx(*args).stdout)
    assert report["backbone"] == "timm:vit_tiny_patch16_224"
    assert report["input_shape"] == [3, 64, 64]
    rows = [*vit_rows(64, 192, 16, 12), *head("head", 192)]
    got = [(r["name"], r["module"], tuple(r["shape"])) for r in report["layers"]]
    assert got == [*rows, ("softmax", "head", (1000,))]
    assert report["layers"][-3]["of_input"] and report["layers"][1]["computed"] == TOKENS.format(
        1, ""
    )


def test_cli_extract_stores_what_timm_computes(tmp_path: Path) -> None:
    """``innx extract`` with a weights file: every stored row equals timm's own forward pass of
    that row's image through the recorded preprocessing, for a CNN and a transformer."""
    data = "shapes:n=24,size=32"
    for name, layers, prefix in (
        ("convnext_atto", ["stages.1", "pre_logits", "logits"], 0),
        ("vit_tiny_patch16_224", ["blocks.2", "norm", "pre_logits"], 1),
    ):
        model = timm.create_model(name, pretrained=False, img_size=32) if prefix else None
        model = model or timm.create_model(name, pretrained=False)
        weights = tmp_path / f"{name}.safetensors"
        save_file(model.state_dict(), str(weights))
        store = tmp_path / f"{name}.h5"
        flags = [a for layer in layers for a in ("--layer", layer)]
        innx("extract", data, "-o", str(store), "--backbone", f"timm:{name}", "--option",
             "img_size=32", "--weights", str(weights), "--batch-size", "10", *flags)  # fmt: skip
        dataset = open_dataset(data)
        backbone = build(name, img_size=32)  # for its preprocessing only
        with h5py.File(store, "r") as f:
            index = f["index"][:]
            recorded = json.loads(f.attrs["backbone"])
            assert recorded["name"] == f"timm:{name}" and recorded["plugin"] == DIST
            assert json.loads(f.attrs["preprocessing"]) == backbone.preprocessing.to_dict()
            images = torch.stack([dataset[int(i)][0] for i in index])
            want = reference(model.eval(), backbone.preprocessing(images), prefix)
            for layer in layers:
                got = torch.from_numpy(np.asarray(f["layers"][layer]))
                torch.testing.assert_close(got, want[layer], atol=1e-5, rtol=1e-4, msg=layer)


def test_a_64px_folder_through_a_vit_at_its_own_224px(tmp_path: Path) -> None:
    """The CLI pipeline extract → fit invariance → render samples on a ViT block, at higher
    resolutions: an autoencoder at the folder's 64 px (no --size: the folder says it), the ViT at
    its own 224 px input; the store's thumbnails are at the autoencoder's size, the layer at the
    ViT's."""
    from innx.ops.data.folders import write_shapes_folder

    folder = write_shapes_folder(tmp_path / "images", n=32, size=64, seed=2)
    data, ae, store = f"folder:{folder}", tmp_path / "ae", tmp_path / "acts.h5"
    innx("fit", "autoencoder", data, "-o", str(ae), "--steps", "2", "--batch-size", "8",
         "--latent-dim", "8")  # fmt: skip
    assert json.loads((ae / "config.json").read_text())["config"]["image_size"] == 64
    innx("extract", data, "-o", str(store), "--backbone", "timm:vit_tiny_patch16_224",
         "--layer", "blocks.3", "--autoencoder", str(ae), "--store-images",
         "--batch-size", "16")  # fmt: skip
    with h5py.File(store, "r") as f:
        assert json.loads(f.attrs["preprocessing"])["size"] == [224, 224]
        assert f["layers/blocks.3"].shape == (32, 192, 14, 14)
        assert f["images"].shape == (32, 64, 64, 3) and f["latents"].shape == (32, 8)
    run, png = tmp_path / "inv", tmp_path / "samples.png"
    fit = innx("fit", "invariance", str(store), "--layer", "blocks.3", "-o", str(run),
               "--preset", "small", "--steps", "3", "--batch-size", "16", "--json")  # fmt: skip
    metrics = json.loads(fit.stdout)["metrics"]
    assert math.isfinite(metrics["val_nll"]) and metrics["steps"] == 3, metrics
    innx("render", "samples", str(store), "--invariance", str(run), "--rows", "0-1", "-n", "2",
         "-o", str(png))  # fmt: skip
    from PIL import Image

    with Image.open(png) as image:
        assert image.size[1] >= 2 * 64  # two rows of 64 px tiles
