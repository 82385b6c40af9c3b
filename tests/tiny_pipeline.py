"""A tiny trained pipeline on shapes (classifier, autoencoder, store, t per layer, e), made in
seconds with the real fits: for tests of render and analyze, which need every part but not good
ones. Built once per test session by the ``tiny_pipeline`` fixture of ``tests/conftest.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from innx.ops.extract.extraction import ExtractOptions, extract
from innx.ops.fit.autoencoder import AutoencoderFit, fit_autoencoder
from innx.ops.fit.classifier import ClassifierFit, fit_classifier
from innx.ops.fit.invariance import InvarianceFit, fit_invariance
from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic

DATA = "shapes:n=400,size=32,seed=5"
LAYERS = ("input", "conv2", "pool", "logits")
FACTORS = ("shape", "fg_color", "bg_color")


@dataclass(frozen=True)
class TinyPipeline:
    root: Path
    classifier: Path
    autoencoder: Path
    store: Path
    invariance: dict[str, Path]  # layer → run
    semantic: Path


def build_tiny_pipeline(root: Path) -> TinyPipeline:
    clf, ae, store, sem = root / "clf", root / "ae", root / "acts.h5", root / "sem"
    fit_classifier(ClassifierFit(DATA, steps=20, batch_size=64), clf)
    fit_autoencoder(AutoencoderFit(DATA, latent_dim=16, steps=20, batch_size=32), ae)
    extract(
        ExtractOptions(
            DATA, None, LAYERS, weights=str(clf), autoencoder=str(ae), store_images=True
        ),
        store,
    )
    inv = {}
    for layer in LAYERS:
        inv[layer] = root / f"inv-{layer}"
        fit_invariance(
            InvarianceFit(store=str(store), layer=layer, steps=15, batch_size=64), inv[layer]
        )
    fit_semantic(
        SemanticFit(store=str(store), factors=FACTORS, dims=(4, 4, 4), steps=15, batch_size=64),
        sem,
    )
    return TinyPipeline(root, clf, ae, store, inv, sem)
