"""AlexNet (Krizhevsky et al., 2012), in torchvision's "one weird trick" variant (Krizhevsky, 2014:
64 and 192 channels in the first two convolutions, no local response normalisation).

Public layers, in forward order, with their shapes for a 224 px input:

=======  ==================  ==============  ===========================================
name     module              shape           what
=======  ==================  ==============  ===========================================
input    (the input)         3 × 224 × 224
conv1    ``features.1``      64 × 55 × 55    ReLU after the 1st convolution
conv2    ``features.4``      192 × 27 × 27   ReLU after the 2nd convolution
conv3    ``features.7``      384 × 13 × 13   ReLU after the 3rd convolution
conv4    ``features.9``      256 × 13 × 13   ReLU after the 4th convolution
conv5    ``features.11``     256 × 13 × 13   ReLU after the 5th convolution, before pooling
pool5    ``features.12``     256 × 6 × 6     max-pool after conv5 (what fc6 reads)
fc6      ``classifier.2``    4096            ReLU after the 1st fully connected layer
fc7      ``classifier.5``    4096            ReLU after the 2nd fully connected layer
fc8      ``classifier.6``    num_classes     the last fully connected layer: the logits
softmax  ``classifier.6``    num_classes     computed: softmax of fc8
=======  ==================  ==============  ===========================================

These follow the code of the paper (Rombach, Esser & Ommer, ECCV 2020), which cut AlexNet after
the ReLU of each layer: its conv5 is 256 × 13 × 13 (before the last max-pool), fc6 and fc7 are the
activations after their ReLU, fc8 the logits and softmax their softmax. In eval mode dropout is the
identity, so fc6 and fc7 are also exactly what the next linear layer reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from innx_torchvision._build import classifier, torchvision_model

if TYPE_CHECKING:
    from innx.backbones import Backbone

LAYERS = {
    "conv1": "features.1",
    "conv2": "features.4",
    "conv3": "features.7",
    "conv4": "features.9",
    "conv5": "features.11",
    "pool5": "features.12",
    "fc6": "classifier.2",
    "fc7": "classifier.5",
    "fc8": "classifier.6",
}
"""Public layer name → module path in torchvision's ``AlexNet`` (``input`` is added by
:func:`~innx_torchvision._build.classifier`)."""


def alexnet(*, num_classes: int = 1000) -> Backbone:
    """AlexNet from torchvision (61.1 M parameters), as in the paper: conv1–conv5, pool5, fc6, fc7, fc8, softmax.

    Every convolutional and fully connected layer is read after its ReLU; ``fc8`` is the logits
    (``num_classes`` of them; use the value the weights were trained with). Published ImageNet
    weights: ``alexnet-owt-7be5be79.pth`` (see the README).
    """
    return classifier(torchvision_model("alexnet", num_classes), dict(LAYERS), logits="fc8")
