"""ActNorm: a per-feature affine map, initialised from the first training batch."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from innx.flows.base import InvertibleModule, capturing, check_input
from innx.kernels import dispatch


class ActNorm(InvertibleModule):
    """``y = (x + loc) * exp(log_scale)``, per feature; ``logdet = sum(log_scale)``.

    On the first forward pass in training mode the parameters are set so that this batch comes
    out with zero mean and unit variance per feature (Kingma & Dhariwal 2018). The ``initialized``
    flag is a buffer, so it is saved with the weights and a loaded model is not re-initialised.
    Call :meth:`initialize` to do it explicitly from a batch of your choice.

    >>> norm = ActNorm(4)
    >>> y, logdet = norm(torch.randn(256, 4) * 3 + 1)   # training mode: initialises here
    >>> bool(norm.initialized)
    True
    """

    initialized: Tensor

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))
        # Reading the flag is a host sync on a GPU: once it has been seen set, trust this copy
        # (a loaded state dict may clear it, so loading forgets it).
        self._seen_initialized = False

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``loc`` and ``log_scale`` so that ``x`` (batch, dim) maps to zero mean, unit std."""
        check_input(x, self.dim)
        std = x.std(dim=0, unbiased=False) if x.shape[0] > 1 else torch.ones_like(x[0])
        self.loc.copy_(-x.mean(dim=0))
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)
        self._seen_initialized = True

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not self._seen_initialized and not capturing():
            if not bool(self.initialized):
                self.initialize(x)
            self._seen_initialized = True
        y = dispatch.actnorm_forward(x, self.loc, self.log_scale, self.kernels)  # fused on CUDA
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = dispatch.actnorm_inverse(y, self.loc, self.log_scale, self.kernels)
        return x, -self.log_scale.sum().expand(y.shape[0])

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._seen_initialized = False  # the loaded flag decides again
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
