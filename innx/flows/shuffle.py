"""A fixed random permutation of the features, so every dimension gets transformed in turn."""

from __future__ import annotations

import torch
from torch import Tensor

from innx.flows.base import InvertibleModule


class Shuffle(InvertibleModule):
    """Permutes features with a permutation drawn once from ``seed`` and kept as a buffer.

    The permutation is saved with the weights, so a loaded model permutes the same way even if
    the seed handling of torch changes. ``logdet`` is zero.

    >>> s = Shuffle(5, seed=0)
    >>> x = torch.arange(5.0)[None]
    >>> torch.equal(s.inverse(s(x)[0])[0], x)
    True
    """

    perm: Tensor
    inv_perm: Tensor

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.dim = dim
        generator = torch.Generator().manual_seed(seed)
        perm = torch.randperm(dim, generator=generator)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return y[:, self.inv_perm], y.new_zeros(y.shape[0])

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
