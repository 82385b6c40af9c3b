"""The backbone ``mymodel``: replace ``MyModel`` with your network and ``LAYERS`` with its layers.

innx needs three things of a backbone (see ``innx.backbones.Backbone``):

- ``model``: an ``nn.Module``; innx puts it in eval mode and never trains or changes it;
- ``layers``: public layer names → module paths in ``model.named_modules()`` (``""`` is the
  input); ``innx layers mymodel`` checks and lists them with their shapes;
- ``preprocessing``: the input size, mean and std as data, so innx can record and undo it.

Weights are never downloaded: users pass ``--weights FILE`` (a ``.safetensors`` file or a torch
state dict of ``MyModel``) to ``innx extract`` and ``innx layers``.
"""

from __future__ import annotations

from typing import Any


def mymodel(num_classes: int = 4, size: int = 32) -> Any:
    """A small CNN for ``size``-pixel RGB images with ``num_classes`` outputs (the factory's
    keyword arguments become ``--option name=value`` on the command line)."""
    # Import torch and innx inside the factory: innx loads entry points lazily, and a light
    # module keeps `innx --help` fast.
    from torch import nn

    from innx.backbones import Backbone, Preprocessing

    class MyModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            )  # fmt: skip
            self.head = nn.Linear(32, num_classes)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.head(self.features(x).flatten(1))

    layers = {
        "input": "",  # the preprocessed image
        "block1": "features.2",  # after the first conv block: 16 × size/2 × size/2
        "features": "features",  # the pooled features: 32 × 1 × 1
        "logits": "head",
    }
    preprocessing = Preprocessing(size=(size, size), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    # logits= names the classifier output: innx then also offers the computed layer "softmax"
    return Backbone(MyModel(), layers, preprocessing, logits="logits")
