"""The semantic INN ``e``: maps ``zbar`` onto named concept blocks plus a residual.

``zhat = e(zbar)`` is split into one block of dimensions per concept (``e_1 … e_K``) and the
residual ``e_0`` last. Trained on attribute pairs (see :func:`innx.flows.semantic_pair_nll`), each
block comes to hold one concept, so concepts can be read off, swapped and walked along.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from innx.errors import ConfigError, ShapeError
from innx.flows.base import check_finite, check_input, use_kernels
from innx.flows.coupling import Clamp
from innx.flows.stack import flow_stack

#: Name of the residual block, always last.
RESIDUAL = "residual"

#: Named sizes of ``e``: ``paper`` is the paper's code; ``small`` trains in minutes on a CPU.
SEMANTIC_PRESETS: dict[str, dict[str, int]] = {
    "paper": {"n_blocks": 12, "width": 512, "depth": 2},
    "small": {"n_blocks": 4, "width": 128, "depth": 2},
}


@dataclass(frozen=True)
class SemanticConfig:
    """Everything needed to rebuild a :class:`SemanticFlow`; saved as ``config.json``.

    ``factors`` maps concept names to block sizes, in order; the residual gets what is left of
    ``dim`` (it may be empty).
    """

    dim: int
    factors: dict[str, int] = field(default_factory=dict)
    n_blocks: int = 12
    width: int = 512
    depth: int = 2
    activation: bool = True
    clamp: Clamp = "tanh"
    seed: int = 0
    kernels: str = "auto"  # the blocks' elementwise work (innx.kernels.dispatch): part of the model

    def __post_init__(self) -> None:
        if not self.factors:
            raise ConfigError("a semantic flow needs at least one named factor, e.g. {'shape': 8}")
        for name, size in self.factors.items():
            if not name or name == RESIDUAL:
                raise ConfigError(
                    f"factor names must be non-empty and not {RESIDUAL!r}, got {name!r}"
                )
            if int(size) < 1:
                raise ConfigError(f"factor {name!r} needs a size >= 1, got {size}")
        if sum(self.factors.values()) > self.dim:
            raise ConfigError(
                f"factor sizes add up to {sum(self.factors.values())}, more than dim={self.dim}; "
                "make the factors smaller"
            )

    @property
    def residual_size(self) -> int:
        return self.dim - sum(self.factors.values())

    @property
    def block_sizes(self) -> dict[str, int]:
        """Sizes of all blocks in order, residual last."""
        return {**self.factors, RESIDUAL: self.residual_size}

    @classmethod
    def preset(
        cls, name: str, dim: int, factors: dict[str, int], **overrides: Any
    ) -> SemanticConfig:
        """A config from a named preset (``paper`` or ``small``), with overrides."""
        if name not in SEMANTIC_PRESETS:
            raise ConfigError(
                f"unknown preset {name!r}; choose one of: {', '.join(SEMANTIC_PRESETS)}"
            )
        return cls(dim=dim, factors=dict(factors), **{**SEMANTIC_PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SemanticConfig:
        return cls(**data)


class SemanticFlow(nn.Module):
    """The INN ``e``: ``zhat, logdet = e(zbar)``; ``factors = e.split(e(zbar))``; ``e.merge``.

    >>> import torch
    >>> e = SemanticFlow(SemanticConfig.preset("small", dim=8, factors={"shape": 2, "colour": 3}))
    >>> factors = e.split(e(torch.randn(4, 8)))
    >>> {name: f.shape[1] for name, f in factors.items()}
    {'shape': 2, 'colour': 3, 'residual': 3}
    >>> e.merge(factors).shape
    torch.Size([4, 8])
    """

    kind = "semantic"

    def __init__(self, config: SemanticConfig) -> None:
        super().__init__()
        self.config = config
        self.flow = flow_stack(
            config.dim,
            config.n_blocks,
            width=config.width,
            depth=config.depth,
            activation=config.activation,
            clamp=config.clamp,
            seed=config.seed,
        )
        self.check_finite = True
        use_kernels(self, config.kernels)

    def with_kernels(self, name: str) -> SemanticFlow:
        """Run with the kernels ``name`` (``auto``, ``torch``, ``triton``) from now on; the config
        records the choice, so a saved run keeps it."""
        use_kernels(self, name)
        self.config = replace(self.config, kernels=name)
        return self

    @property
    def factor_names(self) -> list[str]:
        """Concept names in block order (without the residual)."""
        return list(self.config.factors)

    def forward(self, zbar: Tensor) -> tuple[Tensor, Tensor]:
        """``zhat`` (batch, dim) and ``log|det ∂zhat/∂zbar|`` (batch,)."""
        check_input(zbar, self.config.dim, "zbar")
        if self.check_finite:
            check_finite(zbar, "zbar")
        return self.flow(zbar)

    def inverse(self, zhat: Tensor) -> Tensor:
        """``zbar`` (batch, dim) from ``zhat``."""
        check_input(zhat, self.config.dim, "zhat")
        if self.check_finite:
            check_finite(zhat, "zhat")
        return self.flow.inverse(zhat)[0]

    def split(self, zhat: Tensor | tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        """Named blocks of ``zhat`` (residual last). Takes ``zhat`` or the pair ``e`` returns."""
        if isinstance(zhat, tuple):
            zhat = zhat[0]
        check_input(zhat, self.config.dim, "zhat")
        sizes = self.config.block_sizes
        return dict(zip(sizes, torch.split(zhat, list(sizes.values()), dim=1), strict=True))

    def merge(self, factors: dict[str, Tensor]) -> Tensor:
        """Inverse of :meth:`split`: one ``zhat`` from every named block and the residual."""
        sizes = self.config.block_sizes
        missing = [name for name in sizes if name not in factors]
        unknown = [name for name in factors if name not in sizes]
        if missing or unknown:
            raise ShapeError(
                f"merge needs exactly the blocks {list(sizes)}; "
                f"missing {missing}, unknown {unknown}"
            )
        for name, size in sizes.items():
            if factors[name].dim() != 2 or factors[name].shape[1] != size:
                raise ShapeError(
                    f"factor {name!r} must have shape (batch, {size}), "
                    f"got {tuple(factors[name].shape)}"
                )
        return torch.cat([factors[name] for name in sizes], dim=1)
