"""What every torchvision backbone shares: argument checks, the model, the preprocessing.

The factories of the other modules differ only in which torchvision function they call and how
they name its layers; everything else is here, so that they all behave the same.

torch, torchvision and ``innx.backbones`` (which imports torch) are imported inside the functions:
innx imports a plugin's module to list it (``innx backbones``, ``innx plugins``), and that should
not cost a torch import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from innx.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from innx.backbones import Backbone, Preprocessing


def imagenet_preprocessing() -> Preprocessing:
    """torchvision's evaluation transform for its ImageNet weights: shorter side resized to 256
    (bilinear), centre crop 224 × 224, ImageNet mean and std."""
    from innx.backbones import IMAGENET, Preprocessing

    return Preprocessing(
        size=(224, 224),
        resize=256,
        interpolation="bilinear",
        mean=IMAGENET["mean"],
        std=IMAGENET["std"],
    )


def check_num_classes(name: str, num_classes: Any) -> int:
    """``num_classes`` as an ``int`` ≥ 1, or a :class:`ConfigError` that says what to pass."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(
            f"{name} needs num_classes to be a whole number >= 1, got {num_classes!r}; "
            "pass e.g. --num-classes 1000 (ImageNet)"
        )
    return num_classes


def torchvision_model(name: str, num_classes: Any) -> nn.Module:
    """``torchvision.models.<name>(weights=None, num_classes=num_classes)``: random weights.

    ``weights=None`` is what keeps this offline: torchvision downloads only when asked for
    pretrained weights, and innx loads weights itself, from a local path, into the model.
    """
    classes = check_num_classes(name, num_classes)
    models = importlib.import_module("torchvision.models")
    model: nn.Module = getattr(models, name)(weights=None, num_classes=classes)
    return model


def classifier(model: nn.Module, layers: dict[str, str], logits: str) -> Backbone:
    """The :class:`~innx.backbones.Backbone` of an ImageNet classifier: ``input``, then ``layers``
    (public name → module path), with layer ``logits`` holding the class scores (innx adds the
    computed ``softmax`` layer from it)."""
    from innx.backbones import INPUT, Backbone

    return Backbone(model, {"input": INPUT, **layers}, imagenet_preprocessing(), logits=logits)
