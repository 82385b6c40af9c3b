"""ResNet-18/34/50/101/152 (He et al., "Deep Residual Learning for Image Recognition", 2016).

Public layers, in forward order, with their shapes for a 224 px input (ResNet-18/34 | 50/101/152):

=========  ===========  ==========================================
name       module       shape
=========  ===========  ==========================================
input      (the input)  3 × 224 × 224
maxpool    ``maxpool``  64 × 56 × 56 (the stem: conv, BN, ReLU, max-pool)
layer1     ``layer1``   64 | 256 × 56 × 56
layer2     ``layer2``   128 | 512 × 28 × 28
layer3     ``layer3``   256 | 1024 × 14 × 14
layer4     ``layer4``   512 | 2048 × 7 × 7
avgpool    ``avgpool``  512 | 2048 × 1 × 1
fc         ``fc``       num_classes (the logits)
softmax    ``fc``       num_classes (computed: softmax of ``fc``)
=========  ===========  ==========================================

These are the layers the paper's code reads out of a ResNet, under torchvision's module names.
Each stage's output is that of its last residual block, after the block's final ReLU. The stem's
activation before pooling is module path ``relu`` (64 × 112 × 112), for experts; it has no public
name so that the name ``conv1`` keeps meaning torchvision's module, the raw convolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from innx_torchvision._build import classifier, torchvision_model

if TYPE_CHECKING:
    from innx.backbones import Backbone

LAYERS = {
    "maxpool": "maxpool",
    **{f"layer{i}": f"layer{i}" for i in range(1, 5)},
    "avgpool": "avgpool",
    "fc": "fc",
}
"""Public layer name → module path, the same for every depth (``input`` is added by
:func:`~innx_torchvision._build.classifier`)."""


def _resnet(name: str, num_classes: int) -> Backbone:
    return classifier(torchvision_model(name, num_classes), dict(LAYERS), logits="fc")


def resnet18(*, num_classes: int = 1000) -> Backbone:
    """ResNet-18 from torchvision (11.7 M parameters): maxpool, layer1–layer4, avgpool, fc, softmax.

    ``num_classes`` sets the size of ``fc``; use the value the weights were trained with.
    Published ImageNet weights: ``resnet18-f37072fd.pth`` (see the README).
    """
    return _resnet("resnet18", num_classes)


def resnet34(*, num_classes: int = 1000) -> Backbone:
    """ResNet-34 from torchvision (21.8 M parameters): maxpool, layer1–layer4, avgpool, fc, softmax.

    ``num_classes`` sets the size of ``fc``; use the value the weights were trained with.
    Published ImageNet weights: ``resnet34-b627a593.pth`` (see the README).
    """
    return _resnet("resnet34", num_classes)


def resnet50(*, num_classes: int = 1000) -> Backbone:
    """ResNet-50 from torchvision (25.6 M parameters): maxpool, layer1–layer4, avgpool, fc, softmax.

    ``num_classes`` sets the size of ``fc``; use the value the weights were trained with.
    Published ImageNet weights: ``resnet50-0676ba61.pth`` (see the README).
    """
    return _resnet("resnet50", num_classes)


def resnet101(*, num_classes: int = 1000) -> Backbone:
    """ResNet-101 from torchvision (44.5 M parameters), as in the paper: maxpool, layer1–layer4, avgpool, fc, softmax.

    ``num_classes`` sets the size of ``fc``; use the value the weights were trained with.
    Published ImageNet weights: ``resnet101-63fe2227.pth`` (see the README).
    """
    return _resnet("resnet101", num_classes)


def resnet152(*, num_classes: int = 1000) -> Backbone:
    """ResNet-152 from torchvision (60.2 M parameters): maxpool, layer1–layer4, avgpool, fc, softmax.

    ``num_classes`` sets the size of ``fc``; use the value the weights were trained with.
    Published ImageNet weights: ``resnet152-394f9c45.pth`` (see the README).
    """
    return _resnet("resnet152", num_classes)
