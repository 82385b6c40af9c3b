"""innx-torchvision: torchvision's ImageNet classifiers as innx backbones.

Each architecture is a factory in the ``innx.backbones`` entry-point group (see this
distribution's ``pyproject.toml``): ``resnet18`` … ``resnet152``, ``alexnet``, ``vgg11`` …
``vgg19_bn``, ``squeezenet1_0`` and ``squeezenet1_1``. A factory builds the torchvision model with
random weights (``weights=None``: nothing is ever downloaded), names its layers as the papers do,
and records torchvision's ImageNet preprocessing. innx loads trained weights from a local file
given with ``--weights``.

Nothing heavy is imported here or at the top of the factory modules: torchvision is imported when
a factory is called.
"""

__version__ = "0.1.0"
