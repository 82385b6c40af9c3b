"""The coupling block's own promises: identity at start, bounded scales, helpful errors."""

from __future__ import annotations

import math

import pytest
import torch

from innx.errors import ConfigError, ShapeError
from innx.flows import ActNorm, AffineCoupling, Sequential, Shuffle
from innx.flows.base import check_finite
from innx.flows.coupling import bound_scale


@pytest.mark.parametrize("cond_dim", [0, 4])
def test_fresh_coupling_is_the_identity(cond_dim: int) -> None:
    block = AffineCoupling(7, cond_dim, width=32, depth=2)
    x = torch.randn(5, 7)
    c = torch.randn(5, cond_dim) if cond_dim else None
    y, logdet = block(x, c)
    assert torch.equal(y, x)
    assert torch.equal(logdet, torch.zeros(5))


@pytest.mark.parametrize(("clamp", "bound"), [("tanh", 1.0), ("atan", 2.0), ("tanh", 0.5)])
def test_scales_stay_within_the_bound(clamp: str, bound: float) -> None:
    torch.manual_seed(0)
    block = AffineCoupling(6, 0, width=8, depth=1, clamp=clamp, scale_bound=bound)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 50.0)  # absurd weights: raw scales in the thousands
    _, logdet = block(torch.randn(64, 6) * 10)
    assert logdet.abs().max() <= 6 * bound
    raw = torch.tensor([-1e4, -1e-3, 0.0, 1e-3, 1e4])
    squashed = bound_scale(raw, clamp, bound)  # type: ignore[arg-type]
    torch.testing.assert_close(
        squashed[[0, 2, 4]], torch.tensor([-bound, 0.0, bound]), atol=1e-3 * bound, rtol=0
    )
    slope_at_zero = 1.0 if clamp == "tanh" else 2 / math.pi  # atan is FrEIA's soft clamp
    torch.testing.assert_close(squashed[[1, 3]], slope_at_zero * raw[[1, 3]], atol=1e-9, rtol=1e-4)


def test_condition_errors_say_what_was_expected() -> None:
    block = AffineCoupling(6, cond_dim=3, width=8)
    x = torch.randn(4, 6)
    with pytest.raises(ShapeError, match=r"needs a condition of shape \(batch, 3\), got none"):
        block(x)
    with pytest.raises(ShapeError, match=r"condition must have shape \(4, 3\).*got \(4, 2\)"):
        block(x, torch.randn(4, 2))
    with pytest.raises(ShapeError, match=r"got \(3, 3\)"):
        block.inverse(x, torch.randn(3, 3))
    with pytest.raises(ShapeError, match=r"input must have shape \(batch, 6\), got \(4, 5\)"):
        block(torch.randn(4, 5), torch.randn(4, 3))


def test_build_time_errors() -> None:
    with pytest.raises(ConfigError, match="needs dim >= 2, got 1"):
        AffineCoupling(1)
    with pytest.raises(ConfigError, match="clamp must be 'tanh' or 'atan'"):
        AffineCoupling(4, clamp="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="one dim"):
        Sequential([ActNorm(4), Shuffle(5)])
    with pytest.raises(ConfigError, match="depth >= 1"):
        AffineCoupling(4, width=8, depth=0)


def test_finite_check_is_exact() -> None:
    check_finite(torch.full((4, 4), 3e38), "x")  # the sum overflows, the values are finite
    bad = torch.zeros(3, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ShapeError, match="x holds 1 non-finite"):
        check_finite(bad, "x")
