"""The options of ``innx fit semantic`` (:class:`SemanticFit`) and the store field they name."""

from __future__ import annotations

from dataclasses import dataclass

from innx.data.pairs import FactorSpec
from innx.errors import ConfigError
from innx.flows.semantic import RESIDUAL, SEMANTIC_PRESETS
from innx.ops.fit.flow_training import FlowTraining

NOISE_ROWS = 10_000
"""Training rows whose per-dimension standard deviation scales the noise levels."""
EVAL_BATCH = 1024
DEFAULT_EPOCHS = 120.0
MAX_DEFAULT_STEPS = 40_000
"""The default length never exceeds this many steps, however large the store."""


def input_field(on: str) -> str:
    """The store field named by ``--on``: ``latents`` or ``layer:NAME`` → ``latents`` or NAME."""
    if on == "latents":
        return on
    if on.startswith("layer:") and len(on) > len("layer:"):
        return on[len("layer:") :]
    raise ConfigError(f"--on must be 'latents' or 'layer:NAME', got {on!r}")


@dataclass(frozen=True)
class SemanticFit(FlowTraining):
    """The arguments of ``innx fit semantic`` (everything that determines the result).

    ``factors`` are factor specs (``shape``, ``scale:bins=8``, ``scale:tol=0.01``, and with a
    stated kind ``digit:categorical`` or ``age:continuous``, which overrides the store's for this
    fit: :func:`~innx.ops.fit.semantic.inputs.factor_attributes`); ``dims`` are their block
    sizes, optionally followed by the residual's (``None``: estimated from pairs).
    """

    store: str
    factors: tuple[str, ...]
    dims: tuple[int, ...] | None = None
    on: str = "latents"
    pairs: str | None = None
    rho: float = 0.975
    negative: float = 0.0
    noise: float = 0.5
    noise_final: float = 0.1
    preset: str = "small"
    autoencoder: str | None = None  # for swap rates; None: the run the store's latents name
    swaps: bool = True  # measure swap rates after training (a judge CNN is trained for them)

    def __post_init__(self) -> None:
        if not self.factors:
            raise ConfigError("name at least one factor with --factor NAME")
        names = [FactorSpec.parse(f).name for f in self.factors]
        if len(set(names)) != len(names) or RESIDUAL in names:
            raise ConfigError(f"factor names must be distinct and not {RESIDUAL!r}, got {names}")
        input_field(self.on)
        if self.preset not in SEMANTIC_PRESETS:
            raise ConfigError(
                f"unknown preset {self.preset!r}; choose one of: {', '.join(SEMANTIC_PRESETS)}"
            )
        if not (self.noise >= 0 and self.noise_final >= 0):
            raise ConfigError(
                f"--noise and --noise-final must be non-negative, got {self.noise}, "
                f"{self.noise_final}"
            )
        if not 0.0 <= self.rho < 1.0:
            raise ConfigError(f"--rho must lie in [0, 1), got {self.rho}")
        super().__post_init__()

    @property
    def specs(self) -> list[FactorSpec]:
        return [FactorSpec.parse(f) for f in self.factors]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]
