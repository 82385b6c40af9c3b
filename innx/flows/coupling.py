"""The double affine coupling block of the paper: both halves transformed, one after the other."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from innx.errors import ConfigError
from innx.flows.base import InvertibleModule, check_condition, check_input
from innx.flows.mlp import MLP

Clamp = Literal["tanh", "atan"]


def bound_scale(raw: Tensor, clamp: Clamp, bound: float) -> Tensor:
    """Squash raw log-scales into ``(-bound, bound)`` so ``exp(s)`` can neither vanish nor explode.

    ``tanh`` is the paper's choice; ``atan`` is the softer clamp of Ardizzone et al. (FrEIA), whose
    tails approach the bound more slowly (and whose slope at zero is 2/π, FrEIA's convention).
    """
    if clamp == "tanh":
        return bound * torch.tanh(raw / bound)
    return bound * (2 / math.pi) * torch.atan(raw / bound)


class AffineCoupling(InvertibleModule):
    """Double affine coupling, conditioned by concatenation.

    ``x`` is split into ``x1`` (first ``dim // 2`` features) and ``x2`` (the rest). Then

        s, t = MLP₁([x1, c]);   x2 ← x2 · exp(s) + t
        s, t = MLP₂([x2, c]);   x1 ← x1 · exp(s) + t

    so every feature is transformed once per block. Each MLP gives scale and shift in one pass;
    scales are bounded by :func:`bound_scale`. ``logdet`` is the sum of all scales. The MLPs' last
    layers start at zero, so a fresh block is the identity. Odd ``dim`` works (halves differ by
    one); ``cond_dim=0`` makes the block unconditional.

    >>> import torch
    >>> block = AffineCoupling(8, cond_dim=3, width=16, depth=2)
    >>> x, c = torch.randn(4, 8), torch.randn(4, 3)
    >>> y, logdet = block(x, c)
    >>> torch.allclose(block.inverse(y, c)[0], x)
    True
    """

    def __init__(
        self,
        dim: int,
        cond_dim: int = 0,
        width: int = 1024,
        depth: int = 2,
        clamp: Clamp = "tanh",
        scale_bound: float = 1.0,
    ) -> None:
        super().__init__()
        if dim < 2:
            raise ConfigError(
                f"a coupling block splits its input in two halves and needs dim >= 2, got {dim}"
            )
        if clamp not in ("tanh", "atan"):
            raise ConfigError(f"clamp must be 'tanh' or 'atan', got {clamp!r}")
        if not scale_bound > 0:
            raise ConfigError(f"scale_bound must be positive, got {scale_bound}")
        if cond_dim < 0:
            raise ConfigError(f"cond_dim must be >= 0, got {cond_dim}")
        self.dim = dim
        self.cond_dim = cond_dim
        self.clamp: Clamp = clamp
        self.scale_bound = scale_bound
        self.split_at = dim // 2
        size1, size2 = self.split_at, dim - self.split_at
        self.net1 = MLP(size1 + cond_dim, 2 * size2, width, depth)  # transforms x2 given x1
        self.net2 = MLP(size2 + cond_dim, 2 * size1, width, depth)  # transforms x1 given x2

    def _scale_shift(self, net: MLP, kept: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        h = kept if c is None or self.cond_dim == 0 else torch.cat([kept, c], dim=1)
        raw_scale, shift = net(h).chunk(2, dim=1)
        return bound_scale(raw_scale, self.clamp, self.scale_bound), shift

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_input(x, self.dim)
        check_condition(c, self.cond_dim, x.shape[0])
        x1, x2 = x[:, : self.split_at], x[:, self.split_at :]
        s2, t2 = self._scale_shift(self.net1, x1, c)
        x2 = x2 * torch.exp(s2) + t2
        s1, t1 = self._scale_shift(self.net2, x2, c)
        x1 = x1 * torch.exp(s1) + t1
        return torch.cat([x1, x2], dim=1), s1.sum(dim=1) + s2.sum(dim=1)

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_input(y, self.dim)
        check_condition(c, self.cond_dim, y.shape[0])
        y1, y2 = y[:, : self.split_at], y[:, self.split_at :]
        s1, t1 = self._scale_shift(self.net2, y2, c)
        x1 = (y1 - t1) * torch.exp(-s1)
        s2, t2 = self._scale_shift(self.net1, x1, c)
        x2 = (y2 - t2) * torch.exp(-s2)
        return torch.cat([x1, x2], dim=1), -(s1.sum(dim=1) + s2.sum(dim=1))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, cond_dim={self.cond_dim}, clamp={self.clamp}"
