"""Backbones: the CNNs innx explains, their public layers, and their preprocessing as data.

- :class:`Backbone`: ``(model, layers, preprocessing)``; :meth:`Backbone.capture` reads layers
  with forward hooks and stops after the deepest one asked for.
- :class:`Preprocessing`: size, mean, std, interpolation — recorded, checked, undoable.
- :func:`load_backbone`: build a registered backbone (``innx.backbones`` entry points) and load
  local weights; :func:`backbone_names` lists them. A :class:`BackboneFamily` entry names many
  (``timm:resnet18``).

Example::

    from innx.backbones import load_backbone

    backbone, weights = load_backbone("smallcnn", "runs/classifier")
    acts = backbone.capture(backbone.preprocessing(images_uint8), ["conv2", "softmax"])
"""

from innx.backbones.backbone import INPUT, SOFTMAX, Backbone, LayerInfo, Readout
from innx.backbones.family import BackboneFamily
from innx.backbones.preprocessing import IMAGENET, INTERPOLATIONS, Preprocessing
from innx.backbones.registry import (
    CLASSIFIER_KIND,
    GROUP,
    Weights,
    backbone_names,
    build_backbone,
    describe_factory,
    family_members,
    load_backbone,
)
from innx.backbones.weights import load_weights, read_state_dict

__all__ = [
    "CLASSIFIER_KIND",
    "GROUP",
    "IMAGENET",
    "INPUT",
    "INTERPOLATIONS",
    "SOFTMAX",
    "Backbone",
    "BackboneFamily",
    "LayerInfo",
    "Preprocessing",
    "Readout",
    "Weights",
    "backbone_names",
    "build_backbone",
    "describe_factory",
    "family_members",
    "load_backbone",
    "load_weights",
    "read_state_dict",
]
