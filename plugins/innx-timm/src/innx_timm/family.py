"""The ``timm`` backbone family: ``timm:<name>`` → ``timm.create_model(name, pretrained=False, ...)``.

Options (``--option k=v``, ``--num-classes``) are keyword arguments of ``timm.create_model``, so of
the model's class: ``img_size=64`` for a vision transformer, ``num_classes=10``, ``drop_rate=0``...
One is innx's own: ``img_size`` for a model that takes images of any size (a CNN) sets the input
size of its preprocessing instead (timm's own default is 224 px), so that ``--option img_size=32``
means the same for every model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from innx.errors import ConfigError, first_line

if TYPE_CHECKING:
    from torch import nn

    from innx.backbones import Backbone

IMG_SIZE = "img_size"

REFUSED = {
    "pretrained": "innx never downloads weights: pass a local file with --weights FILE",
    "checkpoint_path": "pass the file with --weights FILE (checked and recorded like any weights)",
    "pretrained_cfg_overlay": "innx never downloads weights: pass a local file with --weights FILE",
    "features_only": "innx reads the layers itself: pick them with --layer",
}
"""``create_model`` arguments innx does not pass on, and why (weights have one way in)."""


class TimmFamily:
    """Every timm model, built with random weights; its layers and preprocessing from timm."""

    summary = (
        "Any timm model (ResNet, ConvNeXt, EfficientNet, ViT, DeiT, DINOv2, ...) as timm:<name>"
    )

    def members(self) -> list[str]:
        """``timm.list_models()``: the architectures (``vit_tiny_patch16_224``, ...)."""
        import timm

        return list(timm.list_models())

    def is_member(self, name: str) -> bool:
        """Whether timm knows ``name``; a pretrained tag (``vit_base_patch16_224.augreg_in21k``)
        selects that tag's data config."""
        import timm

        return bool(timm.is_model(name))

    def build(self, name: str, **options: Any) -> Backbone:
        """``timm:name`` with random weights: the model, its public layers and preprocessing."""
        from innx.backbones import Backbone
        from innx_timm.layers import public_layers
        from innx_timm.preprocessing import timm_preprocessing

        model, size = _create(name, dict(options))
        layers, readouts, logits = public_layers(model)
        preprocessing = timm_preprocessing(model, size)
        return Backbone(model, layers, preprocessing, logits=logits, readouts=readouts)


def _create(name: str, options: dict[str, Any]) -> tuple[nn.Module, int | None]:
    """The model, and the input size asked for when the model itself does not take one."""
    import timm

    refused = sorted(set(options) & set(REFUSED))
    if refused:
        raise ConfigError(f"timm:{name} does not take option {refused[0]}: {REFUSED[refused[0]]}")
    size = options.get(IMG_SIZE)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"img_size must be a whole number of pixels >= 1, got {size!r}")
    try:
        return timm.create_model(name, pretrained=False, **options), None
    except TypeError as err:
        if IMG_SIZE in options and f"'{IMG_SIZE}'" in str(err):
            # a CNN: any input size; innx sizes the preprocessing instead
            rest = {k: v for k, v in options.items() if k != IMG_SIZE}
            return _create(name, rest)[0], size
        raise _bad_options(name, options, err) from err
    except Exception as err:  # timm raises many kinds for bad arguments
        raise _bad_options(name, options, err) from err


def _bad_options(name: str, options: dict[str, Any], err: Exception) -> ConfigError:
    given = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "no options"
    return ConfigError(
        f"timm could not create {name} with {given} ({first_line(err)}); options are keyword "
        "arguments of timm.create_model and the model's class: fix or drop --option"
    )
