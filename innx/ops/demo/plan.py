"""The sizes of the demo's stages: :data:`PLANS` holds ``quick`` and ``full`` (see :mod:`innx.ops.demo.runner`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

FACTORS = ("shape", "fg_color", "bg_color")


@dataclass(frozen=True)
class DemoPlan:
    """How big each stage of the demo is; :data:`PLANS` holds the two the command line offers."""

    name: str
    n: int
    layers: tuple[str, ...]
    classifier_steps: int
    autoencoder_epochs: float | None  # None: innx fit autoencoder's default length
    latent_dim: int
    invariance_steps: tuple[int, ...]  # one per layer: feature maps cost more per step
    semantic_steps: int
    semantic_dims: tuple[int, ...] | None = None
    semantic_swaps: bool = False  # the judge would double the stage; analyze measures what it shows
    analyze_rows: int = 512
    analyze_draws: int = 16
    judge_steps: int | None = None  # None: analyze's default
    size: int = 32
    seed: int = 0
    batch_size: int = 256
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert len(self.invariance_steps) == len(self.layers), "one invariance_steps per layer"

    def with_seed(self, seed: int) -> DemoPlan:
        """The same plan on another draw of everything: data, initialisations, rows, v."""
        return replace(self, seed=seed)

    @property
    def data(self) -> str:
        return f"shapes:n={self.n},size={self.size},seed={self.seed}"


PLANS = {
    "quick": DemoPlan(
        name="quick",
        n=1200,
        layers=("input", "conv2", "logits"),
        classifier_steps=60,
        autoencoder_epochs=4.0,
        latent_dim=16,
        invariance_steps=(60, 60, 60),
        semantic_steps=80,
        semantic_dims=(4, 4, 4),
        analyze_rows=128,
        analyze_draws=8,
        judge_steps=100,
        batch_size=128,
    ),
    "full": DemoPlan(
        name="full",
        n=20000,
        layers=("input", "conv2", "pool", "logits"),
        classifier_steps=200,
        autoencoder_epochs=None,  # the default: reconstructions keep the classifier's prediction
        latent_dim=32,
        invariance_steps=(500, 200, 2000, 2000),
        semantic_steps=6000,
        # small blocks: a share is over the whole block, and dimensions a factor does not need
        # carry variation within its classes that no layer can explain
        semantic_dims=(3, 3, 3),
    ),
}
