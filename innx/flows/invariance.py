"""The invariance cINN ``t``: what a layer's representation ``z`` does not determine about ``zbar``.

``v = t(zbar | z)`` is trained to be standard normal and independent of ``z``, so ``v`` holds what
the layer is invariant to; ``zbar = t⁻¹(v | z)`` with ``v ~ N(0, I)`` draws every code the layer
cannot tell apart from the one that produced ``z``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from innx.errors import ConfigError
from innx.flows.base import check_finite, check_input, use_kernels
from innx.flows.coupling import Clamp
from innx.flows.embedders import check_condition_shape, make_embedder
from innx.flows.stack import flow_stack

#: Named sizes of ``t``: ``paper`` is the paper's code; ``small`` trains in minutes on a CPU.
INVARIANCE_PRESETS: dict[str, dict[str, int]] = {
    "paper": {"n_blocks": 20, "width": 1024, "depth": 2},
    "small": {"n_blocks": 6, "width": 256, "depth": 2, "embed_depth": 2},
}


@dataclass(frozen=True)
class InvarianceConfig:
    """Everything needed to rebuild an :class:`InvarianceFlow`; saved as ``config.json``.

    ``cond_shape`` is the per-sample shape of the layer (``(4096,)`` or ``(256, 13, 13)``);
    ``embed_dim`` defaults to ``zbar_dim`` as in the paper.
    """

    zbar_dim: int
    cond_shape: tuple[int, ...]
    n_blocks: int = 20
    width: int = 1024
    depth: int = 2
    embed_dim: int | None = None
    embed_depth: int = 4
    activation: bool = True
    clamp: Clamp = "tanh"
    seed: int = 0
    kernels: str = "auto"  # the blocks' elementwise work (innx.kernels.dispatch): part of the model

    def __post_init__(self) -> None:
        # JSON and callers may give a list; one canonical form keeps configs comparable
        object.__setattr__(self, "cond_shape", tuple(int(s) for s in self.cond_shape))

    @classmethod
    def preset(
        cls, name: str, zbar_dim: int, cond_shape: tuple[int, ...], **overrides: Any
    ) -> InvarianceConfig:
        """A config from a named preset (``paper`` or ``small``), with overrides."""
        if name not in INVARIANCE_PRESETS:
            raise ConfigError(
                f"unknown preset {name!r}; choose one of: {', '.join(INVARIANCE_PRESETS)}"
            )
        sizes = {**INVARIANCE_PRESETS[name], **overrides}
        return cls(zbar_dim=zbar_dim, cond_shape=cond_shape, **sizes)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cond_shape": list(self.cond_shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InvarianceConfig:
        return cls(**data)

    @property
    def resolved_embed_dim(self) -> int:
        return self.embed_dim if self.embed_dim is not None else self.zbar_dim


class InvarianceFlow(nn.Module):
    """The cINN ``t``: ``v, logdet = t(zbar, z)``; ``zbar = t.inverse(v, z)``; ``t.sample(z)``.

    ``zbar`` is ``(batch, zbar_dim)``; ``z`` is ``(batch, *cond_shape)``. The condition is embedded
    once per call and fed to every block.

    >>> import torch
    >>> t = InvarianceFlow(InvarianceConfig.preset("small", zbar_dim=8, cond_shape=(16,)))
    >>> zbar, z = torch.randn(32, 8), torch.randn(32, 16)
    >>> v, logdet = t(zbar, z)
    >>> torch.allclose(t.inverse(v, z), zbar, atol=1e-5)
    True
    """

    kind = "invariance"

    def __init__(self, config: InvarianceConfig) -> None:
        super().__init__()
        self.config = config
        embed_dim = config.resolved_embed_dim
        self.embedder = make_embedder(config.cond_shape, embed_dim, depth=config.embed_depth)
        self.flow = flow_stack(
            config.zbar_dim,
            config.n_blocks,
            cond_dim=embed_dim,
            width=config.width,
            depth=config.depth,
            activation=config.activation,
            clamp=config.clamp,
            seed=config.seed,
        )
        #: Check inputs for NaN/inf on every call (one reduction each); turn off in hot loops.
        self.check_finite = True
        use_kernels(self, config.kernels)

    def with_kernels(self, name: str) -> InvarianceFlow:
        """Run with the kernels ``name`` (``auto``, ``torch``, ``triton``) from now on; the config
        records the choice, so a saved run keeps it."""
        use_kernels(self, name)
        self.config = replace(self.config, kernels=name)
        return self

    def embed(self, z: Tensor) -> Tensor:
        """The condition vector ``c`` (batch, embed_dim) for a layer representation ``z``."""
        return self._embed_checked(z, batch=z.shape[0])

    def _embed_checked(self, z: Tensor, batch: int) -> Tensor:
        check_condition_shape(z, self.config.cond_shape, batch)
        if self.check_finite:
            check_finite(z, "condition z")
        return self.embedder(z)

    def _checked(self, x: Tensor, z: Tensor, what: str) -> Tensor:
        """Check ``x`` and ``z`` once per call, and embed ``z``."""
        check_input(x, self.config.zbar_dim, what)
        if self.check_finite:
            check_finite(x, what)
        return self._embed_checked(z, batch=x.shape[0])

    def forward(self, zbar: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``v`` (batch, zbar_dim) and ``log|det ∂v/∂zbar|`` (batch,)."""
        c = self._checked(zbar, z, "zbar")
        return self.flow(zbar, c)

    def inverse(self, v: Tensor, z: Tensor) -> Tensor:
        """``zbar`` (batch, zbar_dim) from invariances ``v`` and representation ``z``."""
        c = self._checked(v, z, "v")
        return self.flow.inverse(v, c)[0]

    @torch.no_grad()
    def sample(
        self, z: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """One ``zbar`` per row of ``z``, with ``v ~ N(0, temperature² I)``."""
        # draw where the generator lives (a CPU generator stays reproducible for GPU models)
        device = generator.device if generator is not None else z.device
        v = torch.randn(z.shape[0], self.config.zbar_dim, generator=generator, device=device)
        return self.inverse(v.to(z.device, z.dtype) * temperature, z)
