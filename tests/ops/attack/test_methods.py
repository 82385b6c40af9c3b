"""FGSM, PGD and the noise control on linear classifiers, where the answer is known: the gradient
of the loss is a fixed direction, and the margin says which eps flips the decision."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from innx.ops.attack.methods import fgsm, noise, pgd, project

SHAPE = (4, 3, 5, 5)


def linear(w: torch.Tensor):  # type: ignore[no-untyped-def]
    """Two classes, logits ``(w·x, −w·x)``: class 0 wins where ``w·x > 0``."""

    def model(x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1) @ w
        return torch.stack([score, -score], dim=1)

    return model


def images(low: float = 0.2, high: float = 0.8, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(SHAPE, generator=gen, dtype=torch.float64)


def weights(seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(75, generator=gen, dtype=torch.float64)


def test_fgsm_moves_every_pixel_by_eps_in_the_sign_of_the_gradient():
    w, x = weights(), images()
    model = linear(w)
    labels = model(x).argmax(1)
    x_adv = fgsm(model, x, labels, 0.1)
    x_grad = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_grad), labels), x_grad)
    torch.testing.assert_close(x_adv - x, 0.1 * grad.sign(), rtol=0, atol=1e-12)
    # away from each row's class: down w for class 0, up w for class 1
    away = torch.where(labels == 0, -1.0, 1.0).double()[:, None] * w.sign()
    torch.testing.assert_close((x_adv - x).flatten(1), 0.1 * away, rtol=0, atol=1e-12)


def test_fgsm_and_pgd_stay_in_the_image_range_and_the_ball():
    w, x = weights(), images(0.0, 1.0)
    model = linear(w)
    labels = model(x).argmax(1)
    for x_adv in (
        fgsm(model, x, labels, 0.3),
        pgd(model, x, labels, 0.05, steps=7, step_size=0.02),
        pgd(model, x, labels, 0.3, steps=3, step_size=0.2, targeted=True),
    ):
        assert x_adv.min() >= 0 and x_adv.max() <= 1
    inside = pgd(model, x, labels, 0.05, steps=7, step_size=0.02)
    assert (inside - x).abs().max() <= 0.05 + 1e-12
    assert not inside.requires_grad
    clipped = project(x + 0.5, x, 0.1)
    assert torch.equal(clipped, (x + 0.1).clamp(0, 1))


def test_fgsm_flips_a_linear_decision_exactly_when_eps_exceeds_the_margin():
    w, x = weights(), images(0.45, 0.55)
    model = linear(w)
    labels = model(x).argmax(1)
    # one FGSM step moves w·x by eps·‖w‖₁ towards the boundary (no pixel is clipped here)
    margin = (x.flatten(1) @ w).abs() / w.abs().sum()
    for i in range(len(x)):
        row, label = x[i : i + 1], labels[i : i + 1]
        below = fgsm(model, row, label, 0.99 * float(margin[i]))
        above = fgsm(model, row, label, 1.01 * float(margin[i]))
        assert model(below).argmax(1) == label
        assert model(above).argmax(1) != label


def test_targeted_attacks_reach_the_target():
    gen = torch.Generator().manual_seed(2)
    w3 = torch.randn(75, 3, generator=gen, dtype=torch.float64)

    def model(x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - 0.5) @ w3

    x = images(0.4, 0.6)
    original = model(x).argmax(1)
    target = (original + 1) % 3
    found = pgd(model, x, target, 0.3, steps=20, step_size=0.05, targeted=True)
    assert torch.equal(model(found).argmax(1), target)
    assert (found - x).abs().max() <= 0.3 + 1e-12
    step = fgsm(model, x, target, 0.01, targeted=True)  # one small step: towards the target
    target_logit = model(step).gather(1, target[:, None]) - model(x).gather(1, target[:, None])
    assert (target_logit > 0).all()


def test_noise_moves_every_pixel_by_eps_before_clipping():
    x = torch.full(SHAPE, 0.5, dtype=torch.float64)
    found = noise(x, 0.1, torch.Generator().manual_seed(3))
    torch.testing.assert_close((found - x).abs(), torch.full(SHAPE, 0.1, dtype=torch.float64))
    ups = float(((found - x) > 0).double().mean())
    assert 0.35 < ups < 0.65  # up or down at random
    again = noise(x, 0.1, torch.Generator().manual_seed(3))
    assert torch.equal(found, again)  # the same seed, the same noise
    edge = noise(torch.zeros(SHAPE), 0.2, torch.Generator().manual_seed(3))
    assert edge.min() == 0 and edge.max() <= 0.2 + 1e-7  # clipped to [0, 1]
