"""The double affine coupling block of the paper: both halves transformed, one after the other."""

from __future__ import annotations

import torch
from torch import Tensor

from innx.errors import ConfigError
from innx.flows.base import InvertibleModule, check_condition, check_input
from innx.flows.mlp import MLP
from innx.kernels import dispatch
from innx.kernels.reference import Clamp, bound_scale

__all__ = ["AffineCoupling", "Clamp", "bound_scale"]


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

    def _raw_shift(self, net: MLP, kept: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        h = kept if c is None or self.cond_dim == 0 else torch.cat([kept, c], dim=1)
        raw_scale, shift = net(h).chunk(2, dim=1)
        # Under bf16 autocast the MLP gives bf16; the elementwise step and its log-det run in
        # (at least) float32, so the log-det summed over many blocks keeps its precision.
        precise = _precise(kept)
        return raw_scale.to(precise), shift.to(precise)

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_input(x, self.dim)
        check_condition(c, self.cond_dim, x.shape[0])
        x = x.to(_precise(x))
        x1, x2 = x[:, : self.split_at], x[:, self.split_at :]
        # the elementwise step (bound, exp, affine, log-det) runs fused on CUDA: innx.kernels
        raw2, t2 = self._raw_shift(self.net1, x1, c)
        x2, logdet2 = dispatch.affine_forward(
            x2, raw2, t2, self.clamp, self.scale_bound, self.kernels
        )
        raw1, t1 = self._raw_shift(self.net2, x2, c)
        x1, logdet1 = dispatch.affine_forward(
            x1, raw1, t1, self.clamp, self.scale_bound, self.kernels
        )
        return torch.cat([x1, x2], dim=1), logdet1 + logdet2

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_input(y, self.dim)
        check_condition(c, self.cond_dim, y.shape[0])
        y = y.to(_precise(y))
        y1, y2 = y[:, : self.split_at], y[:, self.split_at :]
        raw1, t1 = self._raw_shift(self.net2, y2, c)
        x1, logdet1 = dispatch.affine_inverse(
            y1, raw1, t1, self.clamp, self.scale_bound, self.kernels
        )
        raw2, t2 = self._raw_shift(self.net1, x1, c)
        x2, logdet2 = dispatch.affine_inverse(
            y2, raw2, t2, self.clamp, self.scale_bound, self.kernels
        )
        return torch.cat([x1, x2], dim=1), logdet1 + logdet2

    def extra_repr(self) -> str:
        return f"dim={self.dim}, cond_dim={self.cond_dim}, clamp={self.clamp}"


def _precise(x: Tensor) -> torch.dtype:
    """float32 for lower-precision tensors (bf16 under autocast); float64 stays float64."""
    return torch.promote_types(x.dtype, torch.float32)
