"""A timm model's public layers, named after its own modules.

===================  =====================================================  ======================
model                layers (besides ``input``)                             each stored as
===================  =====================================================  ======================
CNN (ResNet,         the stages of its ``feature_info``: ``act1``,          its output ``[C, h, w]``
ConvNeXt, ...)       ``layer1`` … ``layer4`` (ResNet), ``stages.0`` … (ConvNeXt)
vision transformer   ``blocks.0`` … ``blocks.N-1``, ``norm``                its patch tokens as a map
(ViT, DeiT, DINOv2)                                                         ``[D, h, w]``
NHWC models (Swin)   the stages of its ``feature_info``                     permuted to ``[C, h, w]``
every classifier     ``pre_logits`` (the pooled vector the head reads),     ``[D]``, ``[classes]``
                     ``logits`` and ``softmax``
===================  =====================================================  ======================

A transformer block outputs tokens ``[N, D]``: the class and register tokens first
(``model.num_prefix_tokens``), then one token per patch, row by row. The layer keeps the patch
tokens as a ``[D, h, w]`` map (``h × w`` is the patch grid), so ``fit invariance`` takes it through
its spatial embedder like a CNN's feature map; the class token's content reaches ``norm`` and the
pooled ``pre_logits``. ``pre_logits`` is the input of the model's classifier module
(``model.get_classifier()``), which is how timm defines it, for every architecture alike. A
distilled DeiT has two heads (class and distillation token) whose predictions timm averages; its
``pre_logits`` and ``logits`` are the class token's head's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from innx.backbones import INPUT, Readout

PRE_LOGITS = "pre_logits"
LOGITS = "logits"


class TokensToMap:
    """``[B, prefix + h·w, D]`` tokens → ``[B, D, h, w]``: the patch tokens as a feature map."""

    def __init__(self, prefix: int, grid: tuple[int, int]) -> None:
        self.prefix = prefix
        self.grid = grid

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, self.prefix :]
        h, w = self.grid
        if h * w != patches.shape[1]:  # another input size than the model's: a square grid
            h = w = math.isqrt(patches.shape[1])
        return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)

    @property
    def label(self) -> str:
        tokens = "token" if self.prefix == 1 else "tokens"
        dropped = f" (first {self.prefix} {tokens} dropped)" if self.prefix else ""
        return f"patch tokens → map{dropped}"


def _nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def public_layers(model: nn.Module) -> tuple[dict[str, str], dict[str, Readout], str | None]:
    """``(layers, readouts, logits)`` for :class:`~innx.backbones.Backbone`: public name → module
    path, how the layers that are not a module's plain output are read, and the logits layer
    (``None`` when the model has no classifier, e.g. ``num_classes=0``)."""
    layers: dict[str, str] = {"input": INPUT}
    readouts: dict[str, Readout] = {}
    if _is_vision_transformer(model):
        vit: Any = model  # timm's attributes, which nn.Module's types do not know
        grid = tuple(vit.patch_embed.grid_size)
        to_map = TokensToMap(int(vit.num_prefix_tokens), (int(grid[0]), int(grid[1])))
        read = Readout(to_map, to_map.label)
        paths = [f"blocks.{i}" for i in range(len(vit.blocks))]
        if not isinstance(getattr(model, "norm", None), nn.Identity | None):
            paths.append("norm")
        for path in paths:
            layers[path] = path
            readouts[path] = read
    else:
        nhwc = getattr(model, "output_fmt", "NCHW") == "NHWC"
        for info in getattr(model, "feature_info", None) or []:
            path = str(info["module"])
            layers[path] = path
            if nhwc:
                readouts[path] = Readout(_nhwc_to_nchw, "NHWC → [C, h, w]")
    return layers, readouts, _head(model, layers, readouts)


def _head(model: nn.Module, layers: dict[str, str], readouts: dict[str, Readout]) -> str | None:
    """Add ``pre_logits`` and ``logits`` from the classifier module; the logits layer's name."""
    get_classifier = getattr(model, "get_classifier", None)
    classifier = get_classifier() if callable(get_classifier) else None
    if isinstance(classifier, tuple | list):  # distilled DeiT: (head, head_dist); the class head
        classifier = classifier[0]
    path = next((p for p, m in model.named_modules() if p and m is classifier), None)
    if path is None:
        return None
    layers[PRE_LOGITS] = path
    if isinstance(classifier, nn.Identity):  # num_classes=0: the pooled vector is the output
        return None
    readouts[PRE_LOGITS] = Readout(of_input=True)
    layers[LOGITS] = path
    return LOGITS


def _is_vision_transformer(model: nn.Module) -> bool:
    """Blocks of tokens after a patch embedding, with class/register tokens counted."""
    return (
        isinstance(getattr(model, "blocks", None), nn.Sequential | nn.ModuleList)
        and hasattr(getattr(model, "patch_embed", None), "grid_size")
        and isinstance(getattr(model, "num_prefix_tokens", None), int)
    )
