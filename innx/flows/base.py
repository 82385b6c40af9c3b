"""The contract every invertible block follows, and the checks they share.

An invertible module maps ``x`` of shape ``(batch, dim)`` to ``y`` of the same shape:

    y, logdet = block(x, c)          # logdet = log|det ∂y/∂x|, shape (batch,)
    x, logdet_inv = block.inverse(y, c)   # logdet_inv == -logdet

``c`` is an optional condition of shape ``(batch, cond_dim)``; blocks that take none accept and
ignore it, so a ``Sequential`` can hand the same ``c`` to every block. There are no ``rev=`` flags:
the two directions are two methods.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from innx.errors import ShapeError
from innx.kernels.dispatch import check_kernels


class InvertibleModule(nn.Module):
    """Base class: ``forward(x, c=None) -> (y, logdet)``, ``inverse(y, c=None) -> (x, logdet)``.

    Subclasses set ``dim`` (features per sample) and ``cond_dim`` (0 when they take no condition).
    """

    dim: int
    cond_dim: int = 0
    kernels: str = "auto"  # the elementwise work: innx.kernels.dispatch (set by use_kernels)

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def use_kernels(model: nn.Module, name: str) -> None:
    """Run every block of ``model`` with the kernels ``name`` (``auto``, ``torch``, ``triton``)."""
    check_kernels(name)
    for module in model.modules():
        if isinstance(module, InvertibleModule):
            module.kernels = name


def capturing() -> bool:
    """Whether a CUDA graph is being captured now: checks that read a tensor's value (a host
    sync, which capture forbids) are skipped then; the eager steps before capture ran them."""
    return torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing()


def check_input(x: Tensor, dim: int, what: str = "input") -> None:
    """Raise a ``ShapeError`` unless ``x`` has shape ``(batch, dim)``."""
    if x.dim() != 2 or x.shape[1] != dim:
        raise ShapeError(f"{what} must have shape (batch, {dim}), got {tuple(x.shape)}")


def check_condition(c: Tensor | None, cond_dim: int, batch: int) -> None:
    """Raise a ``ShapeError`` unless ``c`` is what a block built for ``cond_dim`` expects."""
    if cond_dim == 0:
        return
    if c is None:
        raise ShapeError(
            f"this block is conditional and needs a condition of shape (batch, {cond_dim}), "
            "got none; pass c=..."
        )
    if c.dim() != 2 or c.shape[1] != cond_dim or c.shape[0] != batch:
        raise ShapeError(
            f"condition must have shape ({batch}, {cond_dim}) to match the input, "
            f"got {tuple(c.shape)}"
        )


def check_finite(x: Tensor, what: str) -> None:
    """Raise a ``ShapeError`` when ``x`` holds NaN or infinite values.

    A sum is one cheap pass and NaN/inf propagate through it; only when it is not finite (which
    an overflow of huge finite values can also cause) is the exact elementwise check run.
    """
    if capturing():  # reading the sum back is a host sync; the eager warm-up steps checked
        return
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ShapeError(
            f"{what} holds {bad} non-finite value(s) (NaN or inf); check the data that produced it"
        )
