"""The first-party plugin innx-torchvision (``plugins/innx-torchvision``), installed for real.

The plugin must be installed into the environment that runs the tests; without it every test here
fails and says how to install it. Models are built with random weights (nothing is downloaded:
this module forbids network connections while it runs) and checked against tables of layers and
shapes written out here, independently of the plugin's code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from innx.backbones import Backbone, Weights, build_backbone, describe_factory, load_backbone
from innx.errors import ConfigError, InnxWarning
from innx.plugins import registry

DIST = "innx-torchvision"
INSTALL = "python -m pip install -e plugins/innx-torchvision"
GROUP = "innx.backbones"

Row = tuple[str, str, tuple[int, ...]]
"""A public layer as ``innx layers`` shows it: name, module path, per-sample shape at 224 px."""

# -- the expected layers, written out -------------------------------------------------------------

INPUT: Row = ("input", "", (3, 224, 224))

RESNET_BASIC: list[Row] = [  # resnet18, resnet34
    INPUT,
    ("maxpool", "maxpool", (64, 56, 56)),
    ("layer1", "layer1", (64, 56, 56)),
    ("layer2", "layer2", (128, 28, 28)),
    ("layer3", "layer3", (256, 14, 14)),
    ("layer4", "layer4", (512, 7, 7)),
    ("avgpool", "avgpool", (512, 1, 1)),
    ("fc", "fc", (1000,)),
]
RESNET_BOTTLENECK: list[Row] = [  # resnet50, resnet101, resnet152
    INPUT,
    ("maxpool", "maxpool", (64, 56, 56)),
    ("layer1", "layer1", (256, 56, 56)),
    ("layer2", "layer2", (512, 28, 28)),
    ("layer3", "layer3", (1024, 14, 14)),
    ("layer4", "layer4", (2048, 7, 7)),
    ("avgpool", "avgpool", (2048, 1, 1)),
    ("fc", "fc", (1000,)),
]
ALEXNET: list[Row] = [  # as the paper's code cut it: after each ReLU; conv5 before the max-pool
    INPUT,
    ("conv1", "features.1", (64, 55, 55)),
    ("conv2", "features.4", (192, 27, 27)),
    ("conv3", "features.7", (384, 13, 13)),
    ("conv4", "features.9", (256, 13, 13)),
    ("conv5", "features.11", (256, 13, 13)),
    ("pool5", "features.12", (256, 6, 6)),
    ("fc6", "classifier.2", (4096,)),
    ("fc7", "classifier.5", (4096,)),
    ("fc8", "classifier.6", (1000,)),
]
VGG_HEAD: list[Row] = [
    ("fc6", "classifier.1", (4096,)),
    ("fc7", "classifier.4", (4096,)),
    ("fc8", "classifier.6", (1000,)),
]
VGG16: list[Row] = [
    INPUT,
    ("conv1_1", "features.1", (64, 224, 224)),
    ("conv1_2", "features.3", (64, 224, 224)),
    ("conv2_1", "features.6", (128, 112, 112)),
    ("conv2_2", "features.8", (128, 112, 112)),
    ("conv3_1", "features.11", (256, 56, 56)),
    ("conv3_2", "features.13", (256, 56, 56)),
    ("conv3_3", "features.15", (256, 56, 56)),
    ("conv4_1", "features.18", (512, 28, 28)),
    ("conv4_2", "features.20", (512, 28, 28)),
    ("conv4_3", "features.22", (512, 28, 28)),
    ("conv5_1", "features.25", (512, 14, 14)),
    ("conv5_2", "features.27", (512, 14, 14)),
    ("conv5_3", "features.29", (512, 14, 14)),
    ("pool5", "features.30", (512, 7, 7)),
    *VGG_HEAD,
]


def vgg(convs: tuple[int, ...], bn: bool) -> list[Row]:
    """The layers of a VGG from the paper's table: ``convs[b]`` convolutions in block ``b + 1``,
    each followed by (batch norm and) a ReLU, each block by a max-pool."""
    rows, index, size = [INPUT], 0, 224
    for block, (n, width) in enumerate(zip(convs, (64, 128, 256, 512, 512), strict=True), 1):
        for i in range(1, n + 1):
            index += 3 if bn else 2  # conv, (bn,) relu
            rows.append((f"conv{block}_{i}", f"features.{index - 1}", (width, size, size)))
        index, size = index + 1, size // 2  # max-pool
    return [*rows, ("pool5", f"features.{index - 1}", (512, 7, 7)), *VGG_HEAD]


SQUEEZENET1_0: list[Row] = [
    INPUT,
    ("conv1", "features.1", (96, 109, 109)),
    ("pool1", "features.2", (96, 54, 54)),
    ("fire2", "features.3", (128, 54, 54)),
    ("fire3", "features.4", (128, 54, 54)),
    ("fire4", "features.5", (256, 54, 54)),
    ("pool4", "features.6", (256, 27, 27)),
    ("fire5", "features.7", (256, 27, 27)),
    ("fire6", "features.8", (384, 27, 27)),
    ("fire7", "features.9", (384, 27, 27)),
    ("fire8", "features.10", (512, 27, 27)),
    ("pool8", "features.11", (512, 13, 13)),
    ("fire9", "features.12", (512, 13, 13)),
    ("conv10", "classifier.2", (1000, 13, 13)),
    ("logits", "classifier", (1000, 1, 1)),
]
SQUEEZENET1_1: list[Row] = [
    INPUT,
    ("conv1", "features.1", (64, 111, 111)),
    ("pool1", "features.2", (64, 55, 55)),
    ("fire2", "features.3", (128, 55, 55)),
    ("fire3", "features.4", (128, 55, 55)),
    ("pool3", "features.5", (128, 27, 27)),
    ("fire4", "features.6", (256, 27, 27)),
    ("fire5", "features.7", (256, 27, 27)),
    ("pool5", "features.8", (256, 13, 13)),
    ("fire6", "features.9", (384, 13, 13)),
    ("fire7", "features.10", (384, 13, 13)),
    ("fire8", "features.11", (512, 13, 13)),
    ("fire9", "features.12", (512, 13, 13)),
    ("conv10", "classifier.2", (1000, 13, 13)),
    ("logits", "classifier", (1000, 1, 1)),
]

EXPECTED: dict[str, list[Row]] = {
    "resnet18": RESNET_BASIC,
    "resnet34": RESNET_BASIC,
    "resnet50": RESNET_BOTTLENECK,
    "resnet101": RESNET_BOTTLENECK,
    "resnet152": RESNET_BOTTLENECK,
    "alexnet": ALEXNET,
    "vgg11": vgg((1, 1, 2, 2, 2), bn=False),
    "vgg13": vgg((2, 2, 2, 2, 2), bn=False),
    "vgg16": VGG16,
    "vgg19": vgg((2, 2, 4, 4, 4), bn=False),
    "vgg11_bn": vgg((1, 1, 2, 2, 2), bn=True),
    "vgg13_bn": vgg((2, 2, 2, 2, 2), bn=True),
    "vgg16_bn": vgg((2, 2, 3, 3, 3), bn=True),
    "vgg19_bn": vgg((2, 2, 4, 4, 4), bn=True),
    "squeezenet1_0": SQUEEZENET1_0,
    "squeezenet1_1": SQUEEZENET1_1,
}
"""Every backbone the plugin registers → its public layers but ``softmax``, in forward order."""

LOGITS = {name: rows[-1][0] for name, rows in EXPECTED.items()}
HEAVY = {"resnet101", "resnet152"} | {n for n in EXPECTED if n.startswith("vgg")}
"""Run at batch 1."""
FAST = {
    *("resnet18", "resnet34", "resnet50", "resnet101"),
    *("alexnet", "vgg16", "squeezenet1_0", "squeezenet1_1"),
}
"""Checked on every run; the other backbones take the same code paths as one of these (a deeper
ResNet or VGG, a VGG with batch norm) and cost seconds each to build, so they are marked slow."""


def params(names: list[str], fast: set[str] = FAST) -> list[Any]:
    """``names`` as pytest params, those not in ``fast`` marked slow."""
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]


# -- fixtures -------------------------------------------------------------------------------------


def missing_plugin() -> str | None:
    """Why the plugin cannot be tested here (and how to fix it), or ``None``."""
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return (
            f"{DIST} is not installed in {sys.prefix}; run the README's install command: {INSTALL}"
        )
    return None


def _offline(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("innx-torchvision tried to open a network connection")


def require_plugin() -> None:
    """Fail the test (not skip it) when the plugin is not installed, saying how to install it."""
    reason = missing_plugin()
    if reason is not None:
        pytest.fail(reason, pytrace=False)


def build(name: str, **options: Any) -> Backbone:
    """:func:`build_backbone`, once the plugin is known to be installed."""
    require_plugin()
    return build_backbone(name, **options)


def load(name: str, weights: Path | None = None, **kwargs: Any) -> tuple[Backbone, Weights]:
    """:func:`load_backbone`, once the plugin is known to be installed."""
    require_plugin()
    return load_backbone(name, weights, **kwargs)


@functools.lru_cache(maxsize=1)
def _built(name: str) -> Backbone:
    torch.manual_seed(0)
    return build_backbone(name)


def built(name: str) -> Backbone:
    """Backbone ``name`` with default options, shared by the tests of :func:`arch`; they run
    grouped by backbone, so each is built once and only one is held at a time."""
    require_plugin()
    return _built(name)


@pytest.fixture(scope="module", autouse=True)
def environment() -> Iterator[None]:
    """Every installed plugin enabled, a fresh registry, no network connection allowed, and one
    torch thread: these small batches gain little from more, and on a busy machine (other test
    runs sharing its cores) torch's thread pool makes them several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("INNX_PLUGINS", raising=False)
        mp.setattr(socket.socket, "connect", _offline)
        registry().reset()
        yield
    registry().reset()
    torch.set_num_threads(threads)
    _built.cache_clear()


@pytest.fixture(scope="module", params=params(list(EXPECTED)))
def arch(request: pytest.FixtureRequest) -> str:
    """Each registered backbone's name; module-scoped so that pytest runs the tests grouped by it
    (see :func:`built`)."""
    return str(request.param)


def images(name: str, seed: int = 0) -> torch.Tensor:
    """A small batch of preprocessed inputs: 1 image for the heavy models, 2 for the others."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1 if name in HEAVY else 2, 3, 224, 224, generator=generator)


def forward_with_hook(model: nn.Module, path: str, x: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """``model(x)`` in full, and a copy of what module ``path`` output during it (taken before any
    in-place ReLU can change it)."""
    seen: list[torch.Tensor] = []
    module = model.get_submodule(path)
    handle = module.register_forward_hook(lambda _m, _a, out: seen.append(out.detach().clone()))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        handle.remove()
    assert len(seen) == 1, f"{path} ran {len(seen)} times"
    return out, seen[0]


def close(got: torch.Tensor, want: torch.Tensor) -> None:
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


# -- the plugin is found --------------------------------------------------------------------------


def test_plugin_is_installed() -> None:
    require_plugin()


def test_entry_points_name_every_backbone_and_the_distribution() -> None:
    require_plugin()
    ours = [e for e in registry().entries(GROUP) if e.dist == DIST]
    assert sorted(e.name for e in ours) == sorted(EXPECTED)
    version = importlib.metadata.version(DIST)
    for entry in ours:
        assert entry.version == version
        module, _, attribute = entry.value.partition(":")
        assert module.startswith("innx_torchvision.") and attribute == entry.name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_factories_describe_themselves_in_one_line(name: str) -> None:
    require_plugin()
    info = describe_factory(name)
    assert info["dist"] == DIST
    assert info["options"] == {"num_classes": 1000}
    summary = info["summary"]
    assert summary and "\n" not in summary and "from torchvision" in summary


def test_bad_options_say_what_to_pass() -> None:
    with pytest.raises(ConfigError, match=r"num_classes.*>= 1.*--num-classes"):
        build("resnet18", num_classes=0)
    with pytest.raises(ConfigError, match="num_classes"):
        build("alexnet", num_classes="ten")
    with pytest.raises(ConfigError, match=r"no option classes.*num_classes"):
        build("squeezenet1_1", classes=10)


# -- layers ---------------------------------------------------------------------------------------


def test_layers_in_forward_order_with_their_shapes(arch: str) -> None:
    backbone = built(arch)
    infos = backbone.layer_info()
    assert [(i.name, i.module, i.shape) for i in infos[:-1]] == EXPECTED[backbone.name]
    assert all(i.calls == 1 and i.computed is None for i in infos[:-1])
    softmax = infos[-1]
    assert (softmax.name, softmax.computed) == ("softmax", "softmax")
    assert backbone.logits == LOGITS[backbone.name]
    assert softmax.module == backbone.layers[backbone.logits]


def test_model_is_torchvisions_in_eval_mode(arch: str) -> None:
    backbone = built(arch)
    import torchvision.models

    with torch.device("meta"):  # the structure only: no memory, no initialisation
        reference = getattr(torchvision.models, backbone.name)(weights=None)
    assert type(backbone.model) is type(reference)
    assert list(backbone.model.state_dict()) == list(reference.state_dict())
    assert not backbone.model.training
    pre = backbone.preprocessing
    assert (pre.size, pre.resize, pre.interpolation) == ((224, 224), 256, "bilinear")
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)


def test_capture_equals_a_plain_forward_pass(arch: str) -> None:
    backbone = built(arch)
    rows = EXPECTED[backbone.name]
    mid, path, _ = rows[len(rows) // 2]
    x = images(backbone.name)
    with torch.no_grad():
        got = backbone.capture(x, [mid, "softmax"])
    out, want = forward_with_hook(backbone.model, path, x)
    close(got[mid], want)
    close(got["softmax"], torch.softmax(out, dim=1))


def test_capture_gives_the_shapes_layer_info_promises(arch: str) -> None:
    backbone = built(arch)
    names = [row[0] for row in EXPECTED[backbone.name]]
    x = images(backbone.name)
    with torch.no_grad():
        got = backbone.capture(x, names)
    for info in backbone.layer_info(names):
        assert got[info.name].shape == (len(x), *info.shape), info.name


def test_softmax_is_over_the_classes(arch: str) -> None:
    backbone = built(arch)  # squeezenet's logits are [C, 1, 1]: softmax flattens them
    x = images(backbone.name)
    with torch.no_grad():
        got = backbone.capture(x, ["softmax"])["softmax"]
    close(got.sum(dim=1), torch.ones(len(x)))
    assert got.shape == (len(x), 1000)
    assert backbone.layer_info(["softmax"])[0].shape == (1000,)
    assert backbone.num_classes == 1000


def test_capture_stops_after_the_deepest_layer(arch: str) -> None:
    backbone = built(arch)
    runs: list[str] = []
    last = backbone.model.get_submodule(backbone.layers[backbone.logits or ""])
    handle = last.register_forward_hook(lambda *_: runs.append("logits"))
    first = EXPECTED[backbone.name][1][0]
    x = images(backbone.name)
    try:
        with torch.no_grad():
            backbone.capture(x, [first])
            assert runs == [], f"capturing {first} ran the model to its logits"
            backbone.capture(x, ["softmax"])
            assert runs == ["logits"]
    finally:
        handle.remove()


@pytest.mark.parametrize(
    "name", params(list(EXPECTED), fast={"resnet18", "alexnet", "squeezenet1_0", "squeezenet1_1"})
)
def test_num_classes_sets_the_logits(name: str) -> None:
    backbone = build(name, num_classes=10)
    assert backbone.options == {"num_classes": 10}
    logits = LOGITS[name]
    shape = backbone.layer_info([logits])[0].shape
    assert shape == ((10, 1, 1) if name.startswith("squeezenet") else (10,))
    with torch.no_grad():
        assert backbone.capture(images(name)[:1], ["softmax"])["softmax"].shape == (1, 10)


def test_resnet_stem_is_reachable_by_module_path() -> None:
    backbone = build("resnet18")
    assert "conv1" not in backbone.public_layers()  # 'conv1' stays torchvision's raw convolution
    stem = backbone.layer_info(["conv1", "relu"])
    assert [(i.module, i.shape) for i in stem] == [
        ("conv1", (64, 112, 112)),
        ("relu", (64, 112, 112)),
    ]


# -- weights --------------------------------------------------------------------------------------


def trained_looking(name: str, **options: Any) -> Backbone:
    """A freshly built backbone whose batch-norm statistics are not the defaults either, so that a
    load that skipped buffers would show."""
    backbone = build(name, **options)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for buffer in backbone.model.buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
    return backbone


def save(model: nn.Module, path: Path) -> Path:
    """Write ``model``'s weights as a torch state dict or, for ``.safetensors``, as safetensors."""
    if path.suffix == ".safetensors":
        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize(
    "name",
    params(
        ["resnet18", "squeezenet1_1", "alexnet", "vgg16_bn"], fast={"resnet18", "squeezenet1_1"}
    ),
)
def test_weights_files_load_and_reproduce_the_model(name: str, suffix: str, tmp_path: Path) -> None:
    source = trained_looking(name)
    path = save(source.model, tmp_path / f"{name}{suffix}")
    loaded, weights = load(name, path)
    assert weights.path == str(path)
    assert weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    x = images(name)
    with torch.no_grad():
        want = source.model(x)
        assert torch.equal(loaded.model(x), want)
        assert not torch.equal(build(name).model(x), want)  # not equal by chance


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("resnet18", "fc.weight"),
        ("alexnet", "classifier.6.weight"),
        ("squeezenet1_1", "classifier.1.weight"),
    ],
)
def test_weights_for_other_classes_name_the_keys_and_shapes(
    name: str, key: str, tmp_path: Path
) -> None:
    path = save(build(name, num_classes=10).model, tmp_path / f"{name}-10.pth")
    with pytest.raises(ConfigError) as caught:
        load(name, path)
    message = str(caught.value)
    assert str(path) in message and key in message
    assert "[10, " in message and "[1000, " in message
    backbone, _ = load(name, path, options={"num_classes": 10})
    assert backbone.options == {"num_classes": 10}


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "squeezenet1_1"])
def test_weights_for_other_classes_say_pass_num_classes(name: str, tmp_path: Path) -> None:
    path = save(build(name, num_classes=10).model, tmp_path / f"{name}-10.pth")
    with pytest.raises(ConfigError, match="--num-classes 10"):
        load(name, path)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_corrupt_weights_file_is_named(suffix: str, tmp_path: Path) -> None:
    path = save(build("squeezenet1_1").model, tmp_path / f"weights{suffix}")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConfigError) as caught:
        load("squeezenet1_1", path)
    assert str(path) in str(caught.value)


def test_no_weights_warns_that_they_are_random() -> None:
    with pytest.warns(InnxWarning, match="random weights"):
        backbone, weights = load("resnet18")
    assert weights.path is None and backbone.name == "resnet18"


# -- the command line, in a real process ----------------------------------------------------------


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m innx ARGS`` in a fresh process, without INNX_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNX_")}
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_backbones_lists_the_plugin() -> None:
    require_plugin()
    result = innx("backbones", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(EXPECTED) <= set(rows)
    row = rows["resnet18"]
    assert row["dist"] == DIST and row["version"] == importlib.metadata.version(DIST)
    assert row["summary"] == describe_factory("resnet18")["summary"]


def test_cli_layers_shows_names_modules_and_shapes() -> None:
    require_plugin()
    result = innx("layers", "resnet18", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backbone"] == "resnet18" and report["input_shape"] == [3, 224, 224]
    expected = [*RESNET_BASIC, ("softmax", "fc", (1000,))]
    assert [(r["name"], r["module"], tuple(r["shape"])) for r in report["layers"]] == expected
    assert all(r["calls"] == 1 for r in report["layers"])
    assert [r["computed"] for r in report["layers"]] == [None] * 8 + ["softmax"]
