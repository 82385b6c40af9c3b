"""Composition of invertible blocks, and a block run backwards."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from torch import Tensor, nn

from innx.errors import ConfigError
from innx.flows.base import InvertibleModule


class Sequential(InvertibleModule):
    """Runs blocks in order; the inverse runs their inverses in reverse order.

    Every block receives the same condition ``c``; log-dets add up.

    >>> import torch
    >>> from innx.flows import ActNorm, Shuffle
    >>> flow = Sequential([ActNorm(4), Shuffle(4)])
    >>> y, logdet = flow(torch.randn(8, 4))
    """

    def __init__(self, blocks: Iterable[InvertibleModule]) -> None:
        super().__init__()
        block_list = list(blocks)
        if not block_list:
            raise ConfigError("Sequential needs at least one block")
        self.blocks = nn.ModuleList(block_list)
        self._block_list = block_list  # typed view of the same modules, for iteration
        dims = {block.dim for block in block_list}
        if len(dims) != 1:
            raise ConfigError(f"all blocks of a Sequential must have one dim, got {sorted(dims)}")
        cond_dims = {block.cond_dim for block in block_list} - {0}
        if len(cond_dims) > 1:
            raise ConfigError(
                f"conditional blocks of a Sequential must share one cond_dim, got {sorted(cond_dims)}"
            )
        self.dim = dims.pop()
        self.cond_dim = cond_dims.pop() if cond_dims else 0

    def __iter__(self) -> Iterator[InvertibleModule]:
        return iter(self._block_list)

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for block in self._block_list:
            x, block_logdet = block(x, c)
            logdet = logdet + block_logdet
        return x, logdet

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        for block in reversed(self._block_list):
            y, block_logdet = block.inverse(y, c)
            logdet = logdet + block_logdet
        return y, logdet


class Inverse(InvertibleModule):
    """Swaps the two directions of ``block``: ``Inverse(b)(y) == b.inverse(y)``.

    >>> import torch
    >>> from innx.flows import Shuffle
    >>> s = Shuffle(3)
    >>> x = torch.randn(2, 3)
    >>> torch.equal(Inverse(s)(x)[0], s.inverse(x)[0])
    True
    """

    def __init__(self, block: InvertibleModule) -> None:
        super().__init__()
        self.block = block
        self.dim = block.dim
        self.cond_dim = block.cond_dim

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.block.inverse(x, c)

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.block(y, c)
