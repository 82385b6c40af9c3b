"""VGG-11/13/16/19, with and without batch norm (Simonyan & Zisserman, 2015).

Layers are named as in the paper and in Caffe: ``convB_I`` is the I-th convolution of block B,
read after its ReLU (after batch norm and ReLU in the ``_bn`` variants); ``pool5`` is the last
max-pool; ``fc6``, ``fc7`` the fully connected layers after their ReLU; ``fc8`` the logits. The
names are found by walking ``model.features`` (a new block starts after each max-pool), so one
rule serves every depth. VGG-16, for a 224 px input:

=======  =================  ===============
name     module             shape
=======  =================  ===============
input    (the input)        3 × 224 × 224
conv1_1  ``features.1``     64 × 224 × 224
conv1_2  ``features.3``     64 × 224 × 224
conv2_1  ``features.6``     128 × 112 × 112
conv2_2  ``features.8``     128 × 112 × 112
conv3_1  ``features.11``    256 × 56 × 56
conv3_2  ``features.13``    256 × 56 × 56
conv3_3  ``features.15``    256 × 56 × 56
conv4_1  ``features.18``    512 × 28 × 28
conv4_2  ``features.20``    512 × 28 × 28
conv4_3  ``features.22``    512 × 28 × 28
conv5_1  ``features.25``    512 × 14 × 14
conv5_2  ``features.27``    512 × 14 × 14
conv5_3  ``features.29``    512 × 14 × 14
pool5    ``features.30``    512 × 7 × 7
fc6      ``classifier.1``   4096
fc7      ``classifier.4``   4096
fc8      ``classifier.6``   num_classes (the logits)
softmax  ``classifier.6``   num_classes (computed)
=======  =================  ===============
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from innx_torchvision._build import classifier, torchvision_model

if TYPE_CHECKING:
    from torch import nn

    from innx.backbones import Backbone

HEAD = {"fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"}
"""The fully connected layers: ReLU after the 1st and 2nd linear layer, and the last linear layer."""


def feature_layers(features: nn.Module) -> dict[str, str]:
    """``convB_I`` → the ReLU after that convolution, and ``pool5`` → the last max-pool, for the
    ``features`` block of a torchvision VGG (module paths ``features.<i>``)."""
    from torch import nn

    layers: dict[str, str] = {}
    block, conv, pending = 1, 0, None
    last_pool = None
    for child, module in features.named_children():
        path = f"features.{child}"
        if isinstance(module, nn.Conv2d):
            conv += 1
            pending = f"conv{block}_{conv}"
        elif isinstance(module, nn.ReLU) and pending is not None:
            layers[pending] = path
            pending = None
        elif isinstance(module, nn.MaxPool2d):
            block, conv, last_pool = block + 1, 0, path
    assert last_pool is not None and pending is None, "torchvision's VGG ends with ReLU, max-pool"
    layers["pool5"] = last_pool
    return layers


def _vgg(name: str, num_classes: int) -> Backbone:
    model = torchvision_model(name, num_classes)
    layers = {**feature_layers(model.get_submodule("features")), **HEAD}
    return classifier(model, layers, logits="fc8")


def vgg11(*, num_classes: int = 1000) -> Backbone:
    """VGG-11 from torchvision (132.9 M parameters): conv1_1–conv5_2, pool5, fc6, fc7, fc8, softmax.

    Convolutions are read after their ReLU; ``fc8`` is the logits (``num_classes`` of them).
    Published ImageNet weights: ``vgg11-8a719046.pth`` (see the README).
    """
    return _vgg("vgg11", num_classes)


def vgg13(*, num_classes: int = 1000) -> Backbone:
    """VGG-13 from torchvision (133.0 M parameters): conv1_1–conv5_2, pool5, fc6, fc7, fc8, softmax.

    Convolutions are read after their ReLU; ``fc8`` is the logits (``num_classes`` of them).
    Published ImageNet weights: ``vgg13-19584684.pth`` (see the README).
    """
    return _vgg("vgg13", num_classes)


def vgg16(*, num_classes: int = 1000) -> Backbone:
    """VGG-16 from torchvision (138.4 M parameters): conv1_1–conv5_3, pool5, fc6, fc7, fc8, softmax.

    Convolutions are read after their ReLU; ``fc8`` is the logits (``num_classes`` of them).
    Published ImageNet weights: ``vgg16-397923af.pth`` (see the README).
    """
    return _vgg("vgg16", num_classes)


def vgg19(*, num_classes: int = 1000) -> Backbone:
    """VGG-19 from torchvision (143.7 M parameters): conv1_1–conv5_4, pool5, fc6, fc7, fc8, softmax.

    Convolutions are read after their ReLU; ``fc8`` is the logits (``num_classes`` of them).
    Published ImageNet weights: ``vgg19-dcbb9e9d.pth`` (see the README).
    """
    return _vgg("vgg19", num_classes)


def vgg11_bn(*, num_classes: int = 1000) -> Backbone:
    """VGG-11 with batch norm from torchvision (132.9 M parameters): conv1_1–conv5_2, pool5, fc6–fc8, softmax.

    Convolutions are read after batch norm and ReLU; ``fc8`` is the logits (``num_classes`` of
    them). Published ImageNet weights: ``vgg11_bn-6002323d.pth`` (see the README).
    """
    return _vgg("vgg11_bn", num_classes)


def vgg13_bn(*, num_classes: int = 1000) -> Backbone:
    """VGG-13 with batch norm from torchvision (133.1 M parameters): conv1_1–conv5_2, pool5, fc6–fc8, softmax.

    Convolutions are read after batch norm and ReLU; ``fc8`` is the logits (``num_classes`` of
    them). Published ImageNet weights: ``vgg13_bn-abd245e5.pth`` (see the README).
    """
    return _vgg("vgg13_bn", num_classes)


def vgg16_bn(*, num_classes: int = 1000) -> Backbone:
    """VGG-16 with batch norm from torchvision (138.4 M parameters): conv1_1–conv5_3, pool5, fc6–fc8, softmax.

    Convolutions are read after batch norm and ReLU; ``fc8`` is the logits (``num_classes`` of
    them). Published ImageNet weights: ``vgg16_bn-6c64b313.pth`` (see the README).
    """
    return _vgg("vgg16_bn", num_classes)


def vgg19_bn(*, num_classes: int = 1000) -> Backbone:
    """VGG-19 with batch norm from torchvision (143.7 M parameters): conv1_1–conv5_4, pool5, fc6–fc8, softmax.

    Convolutions are read after batch norm and ReLU; ``fc8`` is the logits (``num_classes`` of
    them). Published ImageNet weights: ``vgg19_bn-c79401a0.pth`` (see the README).
    """
    return _vgg("vgg19_bn", num_classes)
