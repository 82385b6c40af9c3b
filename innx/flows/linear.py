"""An invertible linear map, parameterised by its LU decomposition (Glow's 1×1 convolution)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from innx.flows.base import InvertibleModule


class LULinear(InvertibleModule):
    """``y = x @ W.T`` with ``W = P @ L @ (U + diag(sign * exp(log_s)))``.

    ``P`` is a fixed permutation, ``L`` unit lower triangular, ``U`` strictly upper triangular;
    ``logdet = sum(log_s)`` costs nothing and the inverse is two triangular solves. Starts from a
    random rotation drawn from ``seed`` (not the identity), as in Glow.

    >>> lin = LULinear(4)
    >>> x = torch.randn(2, 4)
    >>> torch.allclose(lin.inverse(lin(x)[0])[0], x, atol=1e-5)
    True
    """

    perm: Tensor
    sign: Tensor
    lower_mask: Tensor

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.dim = dim
        generator = torch.Generator().manual_seed(seed)
        rotation, _ = torch.linalg.qr(
            torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        )
        perm, lower, upper = torch.linalg.lu(rotation)
        diagonal = torch.diagonal(upper)
        self.register_buffer("perm", perm.float())
        self.register_buffer("sign", torch.sign(diagonal).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), diagonal=-1))
        self.lower = nn.Parameter(torch.tril(lower, diagonal=-1).float())
        self.upper = nn.Parameter(torch.triu(upper, diagonal=1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(diagonal)).float())

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.dim, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return lower, upper

    def weight(self) -> Tensor:
        """The ``(dim, dim)`` matrix ``W``."""
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = x @ self.weight().T
        return y, self.log_s.sum().expand(x.shape[0])

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        # y.T = P L U x.T  →  x.T = U⁻¹ L⁻¹ Pᵀ y.T
        rhs = self.perm.T @ y.T
        rhs = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, rhs, upper=True).T
        return x, -self.log_s.sum().expand(y.shape[0])

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
