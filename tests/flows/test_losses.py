"""Each objective against an independent reference: torch.distributions densities."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import MultivariateNormal, Normal

from innx.errors import ShapeError
from innx.flows import (
    LULinear,
    bits_per_dim,
    estimate_factor_sizes,
    invariance_nll,
    semantic_pair_nll,
)
from innx.flows.losses import shared_blocks


def test_invariance_nll_is_the_density_of_the_data_under_the_flow() -> None:
    # v = W zbar is a linear flow; then zbar ~ N(0, (WᵀW)⁻¹) and -log p(zbar) is known exactly.
    torch.manual_seed(0)
    flow = LULinear(5, seed=3).double()
    with torch.no_grad():
        flow.log_s.add_(torch.randn(5, dtype=torch.float64) * 0.3)
        flow.upper.add_(torch.randn(5, 5, dtype=torch.float64) * 0.3)
    zbar = torch.randn(64, 5, dtype=torch.float64)
    v, logdet = flow(zbar)
    weight = flow.weight().detach()
    reference = MultivariateNormal(
        torch.zeros(5, dtype=torch.float64), precision_matrix=weight.T @ weight
    )
    expected = -reference.log_prob(zbar).mean()
    torch.testing.assert_close(invariance_nll(v, logdet), expected)


def test_invariance_nll_adds_the_constant_to_the_papers_loss() -> None:
    v, logdet = torch.randn(16, 7), torch.randn(16)
    paper = 0.5 * v.pow(2).sum(1).mean() - logdet.mean()
    standard = -(Normal(0.0, 1.0).log_prob(v).sum(1) + logdet).mean()
    torch.testing.assert_close(invariance_nll(v, logdet), standard)
    torch.testing.assert_close(
        invariance_nll(v, logdet) - paper, torch.tensor(3.5 * math.log(2 * math.pi))
    )


def test_bits_per_dim_of_a_standard_normal_at_zero() -> None:
    nll = invariance_nll(torch.zeros(3, 10), torch.zeros(3))
    assert bits_per_dim(nll, 10) == pytest.approx(0.5 * math.log2(2 * math.pi))


def pair_reference(za, zb, factor, sizes, rho):
    """-log p(za, zb) from the joint Gaussian [[I, ρM], [ρM, I]] with M the shared dimensions."""
    n, d = za.shape
    masks = shared_blocks(factor, len(sizes) - 1, n)
    out = []
    for i in range(n):
        shared = torch.cat([masks[i, k].repeat(size) for k, size in enumerate(sizes)]).double()
        cov = torch.eye(2 * d, dtype=torch.float64)
        cov[:d, d:] = torch.diag(rho * shared)
        cov[d:, :d] = torch.diag(rho * shared)
        joint = MultivariateNormal(torch.zeros(2 * d, dtype=torch.float64), covariance_matrix=cov)
        out.append(-joint.log_prob(torch.cat([za[i], zb[i]])))
    return torch.stack(out)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.975])
def test_semantic_pair_nll_matches_the_joint_gaussian(rho: float) -> None:
    torch.manual_seed(1)
    sizes = [2, 1, 3]  # two named factors, residual of 3
    factor = torch.tensor([1, 2, -1, -2, 0, 1])
    za = torch.randn(6, 6, dtype=torch.float64)
    zb = 0.8 * za + 0.3 * torch.randn(6, 6, dtype=torch.float64)
    logdet_a, logdet_b = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    expected = (pair_reference(za, zb, factor, sizes, rho) - logdet_a - logdet_b).mean()
    actual = semantic_pair_nll(za, logdet_a, zb, logdet_b, factor, sizes, rho=rho)
    torch.testing.assert_close(actual, expected)


def test_negative_factor_shares_everything_but_that_factor() -> None:
    masks = shared_blocks(torch.tensor([2, -2, 0]), n_factors=3, batch=3)
    assert masks.tolist() == [
        [False, True, False, False],
        [True, False, True, True],
        [False, False, False, False],
    ]


def test_semantic_pair_nll_rejects_bad_labels_and_sizes() -> None:
    za, ld = torch.randn(2, 4), torch.zeros(2)
    with pytest.raises(ShapeError, match="lie in -2…2"):
        semantic_pair_nll(za, ld, za, ld, torch.tensor([3, 1]), [1, 1, 2])
    with pytest.raises(ShapeError, match="add up to 5"):
        semantic_pair_nll(za, ld, za, ld, torch.tensor([1, 1]), [1, 2, 2])
    with pytest.raises(ShapeError, match="logdet must have shape"):
        semantic_pair_nll(za, torch.zeros(3), za, ld, torch.tensor([1, 1]), [1, 1, 2])


def correlated_pairs(n: int, sizes: dict[str, int], seed: int = 0):
    """Codes where factor k lives in its own dims, and pairs sharing k share those dims."""
    generator = torch.Generator().manual_seed(seed)
    d = sum(sizes.values()) + 4
    za = torch.randn(n, d, generator=generator)
    zb = torch.randn(n, d, generator=generator)
    factor = torch.randint(1, len(sizes) + 1, (n,), generator=generator)
    start = 0
    for k, size in enumerate(sizes.values(), start=1):
        rows = factor == k
        zb[rows, start : start + size] = za[rows, start : start + size]
        start += size
    return za, zb, factor


def test_factor_with_more_shared_dimensions_gets_a_larger_block() -> None:
    za, zb, factor = correlated_pairs(4000, {"big": 12, "small": 2})
    sizes = estimate_factor_sizes(za, zb, factor, ["big", "small"])
    assert list(sizes) == ["big", "small", "residual"]
    assert sum(sizes.values()) == za.shape[1]
    assert sizes["big"] > sizes["small"]


@settings(max_examples=40, deadline=None)
@given(
    n_factors=st.integers(1, 5),
    extra=st.integers(0, 40),
    seed=st.integers(0, 10_000),
    residual_score=st.floats(-3, 3),
)
def test_estimated_sizes_are_positive_and_fill_the_code(
    n_factors, extra, seed, residual_score
) -> None:
    names = [f"f{k}" for k in range(n_factors)]
    za, zb, factor = correlated_pairs(300, dict.fromkeys(names, 1), seed)
    za, zb = za[:, : n_factors + 1 + extra], zb[:, : n_factors + 1 + extra]
    sizes = estimate_factor_sizes(za, zb, factor, names, residual_score=residual_score)
    assert sum(sizes.values()) == za.shape[1]
    assert min(sizes.values()) >= 1


def test_estimator_needs_pairs_for_every_factor() -> None:
    za = torch.randn(10, 6)
    with pytest.raises(ShapeError, match="share 'b'"):
        estimate_factor_sizes(za, za, torch.ones(10, dtype=torch.long), ["a", "b"])
