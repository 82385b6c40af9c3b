"""A tiny trained pipeline on shapes (classifier, autoencoder, store, t per layer, e), made in
seconds by the demo's own stages (:func:`innx.ops.demo.stages.demo_stages`) on a tiny plan: for
tests of render and analyze, which need every part but not good ones. Built once per test session
by the ``tiny_pipeline`` fixture of ``tests/conftest.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from innx.ops.demo.plan import DemoPlan
from innx.ops.demo.stages import demo_stages

LAYERS = ("input", "conv2", "pool", "logits")
TINY = DemoPlan(
    name="tiny",
    n=400,
    layers=LAYERS,
    classifier_steps=20,
    autoencoder_epochs=2.0,  # about 20 steps of 32 images
    latent_dim=16,
    invariance_steps=(15,) * len(LAYERS),
    semantic_steps=15,
    semantic_dims=(4, 4, 4),
    semantic_swaps=True,  # the semantic run carries swap rates, as a user's would
    batch_size=64,
    seed=5,
)
FITS = ("classifier", "autoencoder", "extract", *(f"invariance {layer}" for layer in LAYERS),
        "semantic")  # fmt: skip
"""The demo's stages the pipeline needs (not its image folder, figures or report)."""


@dataclass(frozen=True)
class TinyPipeline:
    root: Path
    classifier: Path
    autoencoder: Path
    store: Path
    invariance: dict[str, Path]  # layer → run
    semantic: Path


def build_tiny_pipeline(root: Path) -> TinyPipeline:
    stages = {stage.name: stage for stage in demo_stages(root, TINY, log=None)}
    for name in FITS:
        stages[name].make(False)
    return TinyPipeline(
        root,
        stages["classifier"].output,
        stages["autoencoder"].output,
        stages["extract"].output,
        {layer: stages[f"invariance {layer}"].output for layer in LAYERS},
        stages["semantic"].output,
    )
