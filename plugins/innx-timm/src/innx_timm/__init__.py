"""innx-timm: every model timm can create, as an innx backbone named ``timm:<model name>``.

One entry point (``timm`` in ``innx.backbones``) is a backbone family: ``--backbone
timm:convnext_atto`` builds ``timm.create_model("convnext_atto", pretrained=False, **options)``
(nothing is ever downloaded; trained weights come from a local file with ``--weights``), names its
layers from the model itself and takes its preprocessing from timm's data config. See
:mod:`innx_timm.layers` for which layers, and :mod:`innx_timm.preprocessing` for the input.

timm and torch are imported when a model is built or listed, not here: innx imports this module
to list its plugins.
"""

from innx_timm.family import TimmFamily

__version__ = "0.1.0"

family = TimmFamily()
"""The entry point: builds ``timm:<name>`` backbones."""

__all__ = ["TimmFamily", "family"]
