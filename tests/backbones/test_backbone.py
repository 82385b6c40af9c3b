"""The Backbone contract: layer names checked up front, hooks equal a plain forward, early stop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from innx.backbones import INPUT, Backbone, Preprocessing, Readout
from innx.errors import ConfigError

PRE = Preprocessing(size=(4, 4), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


class Twice(nn.Module):
    """Uses one ReLU twice and a BatchNorm followed by an in-place ReLU, like a ResNet block."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.bn = nn.BatchNorm2d(5)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(5, 3)
        self.ran_head = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        x = self.relu(x - 0.1)
        self.ran_head += 1
        return self.head(self.pool(x))


def make() -> Backbone:
    torch.manual_seed(0)
    model = Twice()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
    layers = {"input": INPUT, "bn": "bn", "relu": "relu", "pool": "pool", "head": "head"}
    return Backbone(model, layers, PRE, logits="head", name="twice")


def plain(model: Twice, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same activations, computed by hand without hooks."""
    bn = model.bn(model.conv(x))
    first = torch.relu(bn)
    second = torch.relu(first - 0.1)
    pool = model.pool(second)
    head = model.head(pool)
    return {"bn": bn, "relu": second, "pool": pool, "head": head, "softmax": head.softmax(1)}


def test_capture_equals_a_plain_forward_pass():
    bb = make()
    x = torch.randn(6, 3, 4, 4)
    with torch.no_grad():
        expected = plain(bb.model, x)
        got = bb.capture(x, ["input", "bn", "relu", "pool", "head", "softmax"])
    assert torch.equal(got["input"], x)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)


def test_in_place_operations_do_not_change_captured_outputs():
    bb = make()
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        bn = bb.capture(x, ["bn", "head"])["bn"]
        assert (bn < 0).any(), "the in-place ReLU after bn would have zeroed these"
        torch.testing.assert_close(bn, plain(bb.model, x)["bn"])


def test_forward_stops_after_the_deepest_requested_layer():
    bb = make()
    bb.layer_info()  # the probing pass runs the head once
    before = bb.model.ran_head
    bb.capture(torch.randn(2, 3, 4, 4), ["bn"])
    assert bb.model.ran_head == before
    bb.capture(torch.randn(2, 3, 4, 4), ["pool"])
    assert bb.model.ran_head == before + 1


def test_a_module_called_twice_gives_its_last_call():
    bb = make()
    (info,) = bb.layer_info(["relu"])
    assert info.calls == 2
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(bb.capture(x, ["relu"])["relu"], plain(bb.model, x)["relu"])


def test_layer_info_lists_public_layers_in_forward_order_with_shapes():
    infos = make().layer_info()
    assert [i.name for i in infos] == ["input", "bn", "relu", "pool", "head", "softmax"]
    shapes = {i.name: i.shape for i in infos}
    assert shapes == {
        "input": (3, 4, 4),
        "bn": (5, 4, 4),
        "relu": (5, 4, 4),
        "pool": (5,),
        "head": (3,),
        "softmax": (3,),
    }
    assert infos[-1].computed == "softmax" and infos[-1].module == "head"


def test_module_paths_are_layers_for_experts():
    bb = make()
    assert "pool.0" in bb.module_paths()
    assert bb.capture(torch.randn(2, 3, 4, 4), ["pool.0"])["pool.0"].shape == (2, 5, 1, 1)


def test_unknown_layer_lists_the_valid_names():
    with pytest.raises(
        ConfigError, match=r"layer 'layer5' is not in twice; choose one of: input, bn"
    ):
        make().resolve(["pool", "layer5"])


def test_a_layer_mapped_to_a_missing_module_is_a_factory_error():
    with pytest.raises(ConfigError, match=r"fc → 'classifier.9'"):
        Backbone(nn.Sequential(nn.Linear(2, 2)), {"fc": "classifier.9"}, PRE)


def test_a_module_that_never_runs_is_refused():
    model = Twice()
    model.unused = nn.Linear(2, 2)
    bb = Backbone(model, {"pool": "pool"}, PRE)
    with pytest.raises(ConfigError, match="not run by its forward pass"):
        bb.resolve(["unused"])


def test_num_classes_comes_from_the_logits_layer():
    assert make().num_classes == 3
    assert Backbone(Twice(), {"pool": "pool"}, PRE).num_classes is None


def test_readouts_take_a_modules_input_or_transform_its_output():
    torch.manual_seed(0)
    model = Twice()
    layers = {"input": INPUT, "features": "pool", "pooled": "head", "head": "head"}
    readouts = {
        "features": Readout(lambda t: t * 2, "doubled"),
        "pooled": Readout(of_input=True),
    }
    bb = Backbone(model, layers, PRE, logits="head", readouts=readouts)
    infos = {i.name: i for i in bb.layer_info()}
    assert [i.name for i in bb.layer_info()] == ["input", "features", "pooled", "head", "softmax"]
    assert (infos["features"].computed, infos["features"].shape) == ("doubled", (5,))
    assert infos["pooled"].of_input and infos["pooled"].module == "head"
    x = torch.randn(3, 3, 4, 4)
    with torch.no_grad():
        expected = plain(model, x)
        got = bb.capture(x, ["features", "pooled", "head", "softmax"])
    torch.testing.assert_close(got["features"], expected["pool"] * 2)
    torch.testing.assert_close(got["pooled"], expected["pool"])
    torch.testing.assert_close(got["softmax"], expected["softmax"])
    before = model.ran_head
    with torch.no_grad():
        alone = bb.capture(x, ["pooled"])["pooled"]
    assert model.ran_head == before + 1  # the forward ran up to the head's call, not through it
    torch.testing.assert_close(alone, expected["pool"])


def test_a_readout_of_no_layer_or_a_read_logits_layer_is_a_factory_error():
    with pytest.raises(ConfigError, match="readout of no layer"):
        Backbone(Twice(), {"input": INPUT}, PRE, readouts={"x": Readout(of_input=True)})
    with pytest.raises(ConfigError, match="logits layer 'head'"):
        layers = {"input": INPUT, "head": "head"}
        Backbone(Twice(), layers, PRE, logits="head", readouts={"head": Readout(of_input=True)})
