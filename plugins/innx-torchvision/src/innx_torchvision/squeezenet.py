"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016): fire modules instead of wide convolutions.

Layers are named as in the paper's Table 1: ``conv1`` (after its ReLU), ``fire2`` … ``fire9``
(each the concatenated output of a fire module's two expand branches, after their ReLUs), and
``poolN``, the max-pool after layer N (1.0: pool1, pool4, pool8; 1.1 moves them earlier: pool1,
pool3, pool5). The head is a 1 × 1 convolution and an average pool:

- ``conv10`` (``classifier.2``): ReLU after the 1 × 1 convolution, num_classes × 13 × 13, one map
  per class;
- ``logits`` (``classifier``, the paper's avgpool10): its spatial mean, **num_classes × 1 × 1**.
  torchvision flattens it to ``[B, num_classes]`` inside ``forward()``, which has no module to
  hook, so the logits layer keeps its two trailing 1s; innx's computed ``softmax`` flattens it
  (num_classes). The scores are averages of ReLU outputs, so never negative.

SqueezeNet 1.1, for a 224 px input:

=======  ================  ===================
name     module            shape
=======  ================  ===================
input    (the input)       3 × 224 × 224
conv1    ``features.1``    64 × 111 × 111
pool1    ``features.2``    64 × 55 × 55
fire2    ``features.3``    128 × 55 × 55
fire3    ``features.4``    128 × 55 × 55
pool3    ``features.5``    128 × 27 × 27
fire4    ``features.6``    256 × 27 × 27
fire5    ``features.7``    256 × 27 × 27
pool5    ``features.8``    256 × 13 × 13
fire6    ``features.9``    384 × 13 × 13
fire7    ``features.10``   384 × 13 × 13
fire8    ``features.11``   512 × 13 × 13
fire9    ``features.12``   512 × 13 × 13
conv10   ``classifier.2``  num_classes × 13 × 13
logits   ``classifier``    num_classes × 1 × 1
softmax  ``classifier``    num_classes (computed)
=======  ================  ===================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from innx_torchvision._build import classifier, torchvision_model

if TYPE_CHECKING:
    from torch import nn

    from innx.backbones import Backbone

HEAD = {"conv10": "classifier.2", "logits": "classifier"}
"""The classifier: ReLU after the 1 × 1 class convolution, and the average pool (the logits)."""


def feature_layers(features: nn.Module) -> dict[str, str]:
    """``conv1``, ``fireN`` and ``poolN`` → module paths, for the ``features`` block of a
    torchvision SqueezeNet (module paths ``features.<i>``)."""
    from torch import nn

    layers: dict[str, str] = {}
    number, pending = 0, False
    for child, module in features.named_children():
        path = f"features.{child}"
        if isinstance(module, nn.Conv2d):
            number, pending = number + 1, True
        elif isinstance(module, nn.ReLU) and pending:
            layers[f"conv{number}"], pending = path, False
        elif isinstance(module, nn.MaxPool2d):
            layers[f"pool{number}"] = path
        elif type(module).__name__ == "Fire":
            number += 1
            layers[f"fire{number}"] = path
    assert number == 9, "torchvision's SqueezeNet has conv1 and fire2 … fire9"
    return layers


def _squeezenet(name: str, num_classes: int) -> Backbone:
    model = torchvision_model(name, num_classes)
    layers = {**feature_layers(model.get_submodule("features")), **HEAD}
    return classifier(model, layers, logits="logits")


def squeezenet1_0(*, num_classes: int = 1000) -> Backbone:
    """SqueezeNet 1.0 from torchvision (1.2 M parameters): conv1, fire2–fire9, conv10, logits [C,1,1], softmax.

    ``logits`` is ``num_classes × 1 × 1`` (the average pool torchvision flattens in ``forward``).
    Published ImageNet weights: ``squeezenet1_0-b66bff10.pth`` (see the README).
    """
    return _squeezenet("squeezenet1_0", num_classes)


def squeezenet1_1(*, num_classes: int = 1000) -> Backbone:
    """SqueezeNet 1.1 from torchvision (1.2 M parameters, 2.4× less compute than 1.0): conv1, fire2–fire9, conv10, logits [C,1,1], softmax.

    ``logits`` is ``num_classes × 1 × 1`` (the average pool torchvision flattens in ``forward``).
    Published ImageNet weights: ``squeezenet1_1-b8a52dc0.pth`` (see the README).
    """
    return _squeezenet("squeezenet1_1", num_classes)
