"""Backbones through the entry-point registry, and weights from local files."""

from __future__ import annotations

import pickle
import re
import warnings
from importlib.metadata import entry_points

import pytest
import torch
from safetensors.torch import save_file

from innx.backbones import GROUP, Backbone, backbone_names, build_backbone, load_backbone
from innx.backbones.smallcnn import SmallCNN
from innx.errors import ConfigError, InnxWarning, PluginError, RunError
from innx.plugins import registry
from innx.store.runs import write_run


def test_smallcnn_is_an_entry_point_of_innx_itself():
    (ep,) = [ep for ep in entry_points(group=GROUP) if ep.name == "smallcnn"]
    assert ep.value == "innx.backbones.smallcnn:smallcnn"
    assert "smallcnn" in backbone_names()


def test_smallcnn_layers_and_options():
    bb = build_backbone("smallcnn", num_classes=4, size=48)
    names = [i.name for i in bb.layer_info()]
    assert names == ["input", "conv1", "conv2", "conv3", "conv4", "pool", "fc", "logits", "softmax"]
    shapes = {i.name: i.shape for i in bb.layer_info()}
    assert shapes["input"] == (3, 48, 48) and shapes["conv4"] == (128, 6, 6)
    assert shapes["softmax"] == (4,)
    assert bb.name == "smallcnn" and bb.options == {"num_classes": 4, "size": 48}


def test_unknown_backbone_and_option_list_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown backbone .resnet5.; choose one of: .*smallcnn"):
        build_backbone("resnet5")
    with pytest.raises(ConfigError, match="no option depth; its options are: num_classes, size"):
        build_backbone("smallcnn", depth=3)


def test_a_factory_that_returns_something_else_is_a_plugin_error():
    def broken() -> object:
        return torch.nn.Linear(2, 2)

    with (
        registry().registered(GROUP, "broken-net", broken, dist="acme"),
        pytest.raises(PluginError, match="returned a Linear"),
    ):
        build_backbone("broken-net")


def test_a_registered_backbone_goes_through_the_same_path():
    def tiny(num_classes: int = 3) -> Backbone:
        from innx.backbones.smallcnn import smallcnn

        return smallcnn(num_classes=num_classes)

    with registry().registered(GROUP, "tiny-net", tiny, dist="acme"):
        assert "tiny-net" in backbone_names()
        assert build_backbone("tiny-net", num_classes=5).num_classes == 5


def trained(num_classes: int = 4) -> SmallCNN:
    torch.manual_seed(1)
    model = SmallCNN(num_classes)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        model.conv1[1].running_mean.uniform_(-1, 1)
    return model.eval()


def outputs(bb: Backbone) -> torch.Tensor:
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return bb(x)


@pytest.mark.parametrize("fmt", ["safetensors", "torch", "nested", "ddp"])
def test_weights_files_load_exactly(tmp_path, fmt):
    model = trained()
    state = model.state_dict()
    path = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pt")
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "torch":
        torch.save(state, path)
    elif fmt == "nested":
        torch.save({"state_dict": state, "epoch": 3}, path)
    else:
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    bb, weights = load_backbone("smallcnn", path, options={"num_classes": 4})
    assert weights.path == str(path) and weights.sha256 and len(weights.sha256) == 64
    with torch.no_grad():
        expected = model(torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(outputs(bb), expected)


def test_weights_for_other_classes_say_what_differs_and_the_fix(tmp_path):
    path = tmp_path / "ten.pt"
    torch.save(trained(10).state_dict(), path)
    with pytest.raises(ConfigError) as err:
        load_backbone("smallcnn", path, options={"num_classes": 4})
    message = str(err.value)
    assert "logits.weight: file [10, 128], model [4, 128]" in message
    assert "pass --num-classes 10" in message


def test_weights_with_missing_and_unknown_keys(tmp_path):
    state = trained().state_dict()
    state["extra.weight"] = state.pop("fc.0.weight")
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(
        ConfigError, match=r"missing from the file: fc\.0\.weight; not in the model: extra\.weight"
    ):
        load_backbone("smallcnn", path, options={"num_classes": 4})


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken"])
def test_corrupt_weights_name_the_file(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"cannot read {path}"):
        load_backbone("smallcnn", path)
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=f"cannot read {bad} as safetensors"):
        load_backbone("smallcnn", bad)


def test_a_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):  # runs on unpickling, unless weights_only refuses it
            return (print, ("owned",))

    path = tmp_path / "evil.pt"
    torch.save({"a": Evil()}, path)
    with pytest.raises(ConfigError) as caught:
        load_backbone("smallcnn", path)
    message = str(caught.value)
    assert re.match(
        rf"cannot read {re.escape(str(path))}: it holds Python objects \((builtins\.)?print\)",
        message,
    )
    assert "weights_only" not in message and "\n" not in message


def test_a_raw_pickle_is_one_line_without_torchs_advice(tmp_path):
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"fc.weight": [[0.0]]}, protocol=4))
    with pytest.raises(ConfigError) as caught, warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning from torch about the pickle's protocol
        load_backbone("smallcnn", path)
    assert str(caught.value) == (
        f"cannot read {path}: it is a Python pickle, not a torch state dict; innx does not "
        "unpickle it (that could run code); save the weights alone with "
        "torch.save(model.state_dict(), path) or as .safetensors"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            {"size": "abc"},
            "option size takes a whole number, got size='abc'; e.g. --option size=32",
        ),
        ({"size": True}, "option size takes a whole number, got size=True"),
        ({"size": 2**70}, "cannot be built with size=1180591620717411303424"),
    ],
)
def test_an_option_of_the_wrong_type_is_one_line(option, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_backbone("smallcnn", **option)


def test_missing_weights_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_backbone("smallcnn", tmp_path / "nope.pt")


def test_no_weights_warns_random():
    with pytest.warns(InnxWarning, match="smallcnn has random weights"):
        load_backbone("smallcnn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_backbone("smallcnn", warn_random=False)


def test_a_classifier_run_directory_carries_backbone_and_options(tmp_path):
    model = trained(5)
    config = {
        "backbone": "smallcnn",
        "options": {"num_classes": 5, "size": 32},
        "classes": list("abcde"),
    }
    write_run(tmp_path / "run", model.state_dict(), "classifier", config)
    bb, weights = load_backbone(None, tmp_path / "run")
    assert bb.name == "smallcnn" and bb.num_classes == 5
    assert weights.sha256 is not None
    with torch.no_grad():
        expected = model(torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(outputs(bb), expected)
    with pytest.raises(ConfigError, match="trained as backbone 'smallcnn', not 'resnet18'"):
        load_backbone("resnet18", tmp_path / "run")
    write_run(tmp_path / "inv", {"w": torch.zeros(1)}, "invariance", {})
    with pytest.raises(ConfigError, match=r"holds a run of kind .invariance., not a classifier"):
        load_backbone("smallcnn", tmp_path / "inv")
    (tmp_path / "run" / "manifest.json").unlink()
    with pytest.raises(RunError, match="not a finished run"):
        load_backbone("smallcnn", tmp_path / "run")
