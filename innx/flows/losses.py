"""The two training objectives, bits per dimension, and the factor-size estimator.

Both objectives are full negative log-likelihoods in nats per sample (or per pair), including
the ``log 2π`` and variance constants that the original code dropped. The constants do not change
gradients, but keep the numbers comparable across dimensions and runs and make
:func:`bits_per_dim` a true code length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import Tensor

from innx.errors import ShapeError

LOG_2PI = math.log(2 * math.pi)
_Number = TypeVar("_Number", Tensor, float)


def standard_normal_nll(u: Tensor) -> Tensor:
    """``-log N(u; 0, I)`` per row of ``u`` (batch, d): ``½‖u‖² + d/2 · log 2π``."""
    return 0.5 * u.pow(2).sum(dim=1) + 0.5 * u.shape[1] * LOG_2PI


def invariance_nll(v: Tensor, logdet: Tensor) -> Tensor:
    """Mean ``-log p(zbar | z)`` in nats of the invariance cINN, ``v ~ N(0, I)``.

    ``v`` (batch, d) and ``logdet`` (batch,) are what ``t(zbar, z)`` returns. Equals the paper's
    ``mean(½‖v‖²) − mean(logdet)`` plus the constant ``d/2 · log 2π``.
    """
    _check_pair(v, logdet, "v")
    return (standard_normal_nll(v) - logdet).mean()


def semantic_pair_nll(
    zhat_a: Tensor,
    logdet_a: Tensor,
    zhat_b: Tensor,
    logdet_b: Tensor,
    factor: Tensor,
    sizes: Sequence[int],
    rho: float = 0.975,
) -> Tensor:
    """Mean ``-log p(zbar_a, zbar_b)`` in nats per pair of the semantic INN.

    ``zhat_a``, ``zhat_b`` (batch, d) are ``e`` of the two images of a pair, ``sizes`` the block
    sizes in order (factors ``1 … K``, then the residual; their sum is ``d``). ``factor`` (batch,)
    says what the pair shares: ``F`` in ``1 … K`` shares concept ``F``; ``-j`` shares every block
    but ``j`` (the residual included); ``0`` shares nothing. A shared block ``i`` of ``zhat_b`` is
    modelled as ``N(ρ · zhat_a_i, (1 − ρ²) I)``, every other block as ``N(0, I)``.
    """
    _check_pair(zhat_a, logdet_a, "zhat_a")
    _check_pair(zhat_b, logdet_b, "zhat_b")
    if zhat_a.shape != zhat_b.shape:
        raise ShapeError(
            f"zhat_a and zhat_b differ in shape: {tuple(zhat_a.shape)} vs {tuple(zhat_b.shape)}"
        )
    if sum(sizes) != zhat_a.shape[1]:
        raise ShapeError(
            f"block sizes {list(sizes)} add up to {sum(sizes)}, not d={zhat_a.shape[1]}"
        )
    if not 0.0 <= rho < 1.0:
        raise ShapeError(f"rho must lie in [0, 1), got {rho}")
    masks = shared_blocks(factor, n_factors=len(sizes) - 1, batch=zhat_a.shape[0])
    nll = standard_normal_nll(zhat_a) - logdet_a - logdet_b
    blocks_a = torch.split(zhat_a, list(sizes), dim=1)
    blocks_b = torch.split(zhat_b, list(sizes), dim=1)
    for mask, block_a, block_b in zip(masks.T, blocks_a, blocks_b, strict=True):
        m = mask.to(zhat_a.dtype)
        variance = 1.0 - m * rho**2
        residual = block_b - (m * rho)[:, None] * block_a
        size = block_a.shape[1]
        nll = nll + 0.5 * residual.pow(2).sum(dim=1) / variance
        nll = nll + 0.5 * size * (LOG_2PI + torch.log(variance))
    return nll.mean()


def shared_blocks(factor: Tensor, n_factors: int, batch: int) -> Tensor:
    """Which blocks each pair shares: bool (batch, n_factors + 1), the residual last."""
    if factor.shape != (batch,):
        raise ShapeError(f"factor labels must have shape ({batch},), got {tuple(factor.shape)}")
    factor = factor.long()
    if factor.device.type == "cpu":  # on a GPU reading them back is a host sync every step
        check_factor_labels(factor, n_factors)
    index = torch.arange(1, n_factors + 1, device=factor.device)
    negative = (factor < 0)[:, None]
    named = (factor[:, None] == index) | (negative & (factor[:, None] != -index))
    return torch.cat([named, negative], dim=1)


def check_factor_labels(factor: Tensor, n_factors: int) -> None:
    """Raise a ``ShapeError`` unless every label lies in ``-n_factors … n_factors``. The loss
    checks labels on the CPU itself; check labels bound for a GPU before moving them there."""
    if factor.numel() and int(factor.abs().max()) > n_factors:
        raise ShapeError(
            f"factor labels must lie in -{n_factors}…{n_factors} "
            f"(there are {n_factors} factors), got {int(factor.abs().max())}"
        )


def bits_per_dim(nll: _Number, dim: int) -> _Number:
    """Nats per sample → bits per dimension: ``nll / (dim · ln 2)``. A tensor stays a tensor (on
    its device: no host sync, so a CUDA graph can capture it)."""
    return nll / (dim * math.log(2))


def estimate_factor_sizes(
    za: Tensor,
    zb: Tensor,
    factor: Tensor,
    names: Sequence[str],
    residual_score: float = 1.0,
) -> dict[str, int]:
    """Block sizes for ``names`` (and the residual, last) estimated from attribute pairs.

    For each concept ``F`` the score ``s_F = Σ_d Cov(za_d, zb_d) / Σ_d Var(z_d)`` over the pairs
    that share ``F`` measures how much of the code that concept moves; the residual gets the fixed
    ``residual_score``. Sizes are ``softmax(s) · d`` rounded to integers that add up to ``d``
    (largest remainder), each at least 1. ``za``, ``zb`` (n, d) are codes of the pairs' images,
    ``factor`` (n,) their labels as in :func:`semantic_pair_nll` (only positive labels are used).
    """
    if za.shape != zb.shape or za.dim() != 2:
        raise ShapeError(
            f"za and zb must be (n, d) of one shape, got {tuple(za.shape)} and {tuple(zb.shape)}"
        )
    dim = za.shape[1]
    if dim < len(names) + 1:
        raise ShapeError(f"d={dim} is too small for {len(names)} factors and a residual")
    total_variance = torch.cat([za, zb]).double().var(dim=0).sum()
    scores = []
    for index, name in enumerate(names, start=1):
        chosen = factor == index
        count = int(chosen.sum())
        if count < 2:
            raise ShapeError(
                f"need at least 2 pairs that share {name!r} to estimate its size, got {count}"
            )
        a, b = za[chosen].double(), zb[chosen].double()
        mean = torch.cat([a, b]).mean(dim=0)
        covariance = ((a - mean) * (b - mean)).mean(dim=0).sum()
        scores.append(float(covariance / total_variance))
    scores.append(residual_score)
    shares = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
    sizes = _round_preserving_sum(shares * dim, dim)
    return dict(zip([*names, "residual"], sizes, strict=True))


def _round_preserving_sum(values: Tensor, total: int) -> list[int]:
    """Integers >= 1 close to ``values`` that add up to ``total`` (largest remainder)."""
    sizes = [max(1, int(v)) for v in values.tolist()]
    remainders = [v - int(v) for v in values.tolist()]
    order = sorted(range(len(sizes)), key=lambda i: -remainders[i])
    i = 0
    while sum(sizes) < total:
        sizes[order[i % len(order)]] += 1
        i += 1
    while sum(sizes) > total:
        largest = max(range(len(sizes)), key=lambda j: sizes[j])
        sizes[largest] -= 1
    return sizes


def _check_pair(x: Tensor, logdet: Tensor, what: str) -> None:
    if x.dim() != 2:
        raise ShapeError(f"{what} must have shape (batch, d), got {tuple(x.shape)}")
    if logdet.shape != (x.shape[0],):
        raise ShapeError(
            f"logdet must have shape ({x.shape[0]},) to match {what}, got {tuple(logdet.shape)}"
        )
