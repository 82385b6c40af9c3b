"""FGSM and PGD under an L∞ budget, and the random-noise control of the same size: a few lines of
torch each, on any differentiable ``model`` from images ``[B, C, H, W]`` in [0, 1] to logits.

Every image these return lies in [0, 1] and within ``eps`` of ``x`` in every pixel
(:func:`project`). Untargeted, an attack raises the cross-entropy of ``labels`` (the classes the
model predicts on ``x``: it pushes the images away from them); targeted, it lowers the
cross-entropy of ``labels`` (the target classes: it pulls the images towards them).

>>> model = lambda x: torch.cat([x.flatten(1).sum(1, keepdim=True), torch.zeros(len(x), 1)], 1)
>>> x = torch.full((1, 1, 2, 2), 0.5)
>>> x_adv = fgsm(model, x, torch.tensor([0]), 0.1)  # logit 0 grows with every pixel: all go down
>>> [round(v, 4) for v in x_adv.flatten().tolist()]
[0.4, 0.4, 0.4, 0.4]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

Model = Callable[[Tensor], Tensor]
"""Images ``[B, C, H, W]`` in [0, 1] → logits ``[B, K]`` (any trailing shape is flattened)."""

METHODS = ("fgsm", "pgd")


def loss_sign(model: Model, x: Tensor, labels: Tensor, *, targeted: bool) -> Tensor:
    """The sign of the gradient, with respect to ``x``, of the loss an attack ascends: the
    cross-entropy of ``labels`` (untargeted) or minus it (targeted). Each image's sign is its own:
    the loss is summed over the batch, not averaged."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).flatten(1), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return -grad.sign() if targeted else grad.sign()


def project(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """``x_adv`` clipped to the L∞ ball of radius ``eps`` around ``x`` and to [0, 1]."""
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0).detach()


def fgsm(model: Model, x: Tensor, labels: Tensor, eps: float, *, targeted: bool = False) -> Tensor:
    """The fast gradient sign method: one step of ``eps`` in the sign of the loss's gradient,
    ``x + eps · sign(∇ loss)``, clipped to [0, 1]."""
    return project(x + eps * loss_sign(model, x, labels, targeted=targeted), x, eps)


def pgd(
    model: Model,
    x: Tensor,
    labels: Tensor,
    eps: float,
    *,
    steps: int,
    step_size: float,
    targeted: bool = False,
) -> Tensor:
    """Projected gradient descent on the loss (its L∞ form): ``steps`` sign steps of
    ``step_size`` from ``x`` itself (no random start, so that a seed is not needed), each
    projected back into the ball of radius ``eps`` and into [0, 1]."""
    x_adv = x.detach().clone()
    for _ in range(steps):
        step = step_size * loss_sign(model, x_adv, labels, targeted=targeted)
        x_adv = project(x_adv + step, x, eps)
    return x_adv


def noise(x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """The control of the same size: ``x + eps · sign(N(0, I))``, every pixel moved by ``eps``
    up or down at random (drawn on the CPU from ``generator``), clipped to [0, 1]."""
    signs = torch.randn(x.shape, generator=generator).sign().to(x.device, x.dtype)
    return (x + eps * signs).clamp(0.0, 1.0)
