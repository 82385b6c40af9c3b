"""An invertible leaky ReLU: the optional activation between flow blocks in the paper's code."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from innx.errors import ConfigError
from innx.flows.base import InvertibleModule


class InvLeakyReLU(InvertibleModule):
    """``y = x`` where ``x >= 0``, ``y = slope * x`` elsewhere; invertible for ``slope > 0``.

    ``logdet`` counts ``log(slope)`` once per negative entry.

    >>> import torch
    >>> act = InvLeakyReLU(3, slope=0.9)
    >>> y, logdet = act(torch.tensor([[1.0, -1.0, -2.0]]))
    >>> y.tolist(), round(float(logdet), 4)
    ([[1.0, -0.8999999761581421, -1.7999999523162842]], -0.2107)
    """

    def __init__(self, dim: int, slope: float = 0.9) -> None:
        super().__init__()
        if not slope > 0.0:
            raise ConfigError(f"InvLeakyReLU needs slope > 0 to be invertible, got {slope}")
        self.dim = dim
        self.slope = slope
        self._log_slope = math.log(slope)

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # one fused kernel forward and backward (torch.where would need several)
        y = F.leaky_relu(x, self.slope)
        return y, (x < 0).sum(dim=1).to(x.dtype) * self._log_slope

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(y, 1.0 / self.slope)
        return x, (y < 0).sum(dim=1).to(y.dtype) * -self._log_slope

    def extra_repr(self) -> str:
        return f"dim={self.dim}, slope={self.slope}"
