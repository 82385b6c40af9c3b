"""A timm model's input, from timm's own data config (``timm.data.resolve_model_data_config``).

timm's evaluation transform resizes the shorter side to ``floor(size / crop_pct)``, centre-crops
``size`` and normalises with the config's mean and std; innx's
:class:`~innx.backbones.Preprocessing` does the same with ``resize``. The size is the model's own
when it has one (a vision transformer built with ``img_size=64`` takes 64 px, although its config
still says 224), else the ``img_size`` asked for, else the config's.
"""

from __future__ import annotations

import math

from torch import nn

from innx.backbones import INTERPOLATIONS, Preprocessing

FALLBACK_INTERPOLATION = "bicubic"
"""For timm interpolations innx's resize does not have (``lanczos``, ``random``, ...)."""


def timm_preprocessing(model: nn.Module, size: int | None = None) -> Preprocessing:
    """The evaluation preprocessing of ``model``; ``size`` overrides the config's input size for
    a model that takes any size."""
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(model)
    channels, height, width = config["input_size"]
    own = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if own is not None:
        height, width = own
    elif size is not None:
        height, width = size, size
    crop_pct = float(config.get("crop_pct") or 1.0)
    resize = math.floor(min(height, width) / crop_pct) if crop_pct < 1.0 else None
    interpolation = config.get("interpolation", FALLBACK_INTERPOLATION)
    return Preprocessing(
        size=(int(height), int(width)),
        mean=tuple(float(m) for m in config["mean"]),
        std=tuple(float(s) for s in config["std"]),
        interpolation=interpolation if interpolation in INTERPOLATIONS else FALLBACK_INTERPOLATION,
        resize=resize,
        channels=int(channels),
    )
