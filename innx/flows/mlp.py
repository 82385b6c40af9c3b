"""The small fully connected network that computes a coupling's scale and shift."""

from __future__ import annotations

import itertools

import torch.nn.functional as F
from torch import Tensor, nn

from innx.errors import ConfigError


class MLP(nn.Module):
    """``in_dim → width → … → width → out_dim`` with ``depth`` hidden layers and LeakyReLU.

    With ``zero_last`` the output layer starts at zero, so a coupling built on it starts as the
    identity. The activation runs in place on each hidden layer's fresh output, which autograd
    allows for LeakyReLU and saves one memory pass per layer.

    >>> import torch
    >>> net = MLP(6, 4, width=32, depth=2)
    >>> net(torch.randn(5, 6)).shape
    torch.Size([5, 4])
    """

    def __init__(
        self, in_dim: int, out_dim: int, width: int, depth: int, zero_last: bool = True
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ConfigError(f"an MLP needs depth >= 1 and width >= 1, got {depth=} {width=}")
        widths = [in_dim] + [width] * depth + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        if zero_last:
            last = self.layers[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        *hidden, last = self.layers
        for layer in hidden:
            x = F.leaky_relu(layer(x), inplace=True)
        return last(x)
