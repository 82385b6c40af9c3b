"""The elementwise parts of the flows in plain torch: the reference every fused kernel must match.

- **Affine step** of a coupling: raw log-scales are bounded (:func:`bound_scale`), then
  ``y = x · exp(s) + t`` with ``logdet = Σ_d s`` per row; the inverse is
  ``x = (y − t) · exp(−s)`` with ``logdet = −Σ_d s``.
- **ActNorm**: ``y = (x + loc) · exp(log_scale)`` per feature; the inverse
  ``x = y · exp(−log_scale) − loc``. Its log-det does not depend on the data.

Autograd differentiates these directly; the Triton kernels (:mod:`innx.kernels.triton_flows`)
compute the same values and gradients in one pass each.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Clamp = Literal["tanh", "atan"]


def bound_scale(raw: Tensor, clamp: Clamp, bound: float) -> Tensor:
    """Squash raw log-scales into ``(-bound, bound)`` so ``exp(s)`` can neither vanish nor explode.

    ``tanh`` is the paper's choice; ``atan`` is the softer clamp of Ardizzone et al. (FrEIA), whose
    tails approach the bound more slowly (and whose slope at zero is 2/π, FrEIA's convention).
    """
    if clamp == "tanh":
        return bound * torch.tanh(raw / bound)
    return bound * (2 / math.pi) * torch.atan(raw / bound)


def affine_forward(
    x: Tensor, raw: Tensor, shift: Tensor, clamp: Clamp, bound: float
) -> tuple[Tensor, Tensor]:
    """``y = x · exp(s) + shift`` with ``s = bound_scale(raw)``, and ``Σ_d s`` per row."""
    s = bound_scale(raw, clamp, bound)
    return x * torch.exp(s) + shift, s.sum(dim=1)


def affine_inverse(
    y: Tensor, raw: Tensor, shift: Tensor, clamp: Clamp, bound: float
) -> tuple[Tensor, Tensor]:
    """``x = (y − shift) · exp(−s)`` with ``s = bound_scale(raw)``, and ``−Σ_d s`` per row."""
    s = bound_scale(raw, clamp, bound)
    return (y - shift) * torch.exp(-s), -s.sum(dim=1)


def actnorm_forward(x: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """``(x + loc) · exp(log_scale)``, per feature."""
    return (x + loc) * torch.exp(log_scale)


def actnorm_inverse(y: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """``y · exp(−log_scale) − loc``, per feature."""
    return y * torch.exp(-log_scale) - loc
