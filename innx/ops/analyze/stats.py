"""The numbers of ``innx analyze`` as pure functions of tensors, so that each can be checked exactly.

- :func:`explained_share`: the share of a concept's variance that a layer explains,
  ``Var_z(E_v[e_i | z]) / Var(e_i)``, from ``M`` draws of ``v`` per row.
- :func:`v_statistics`: how standard normal the invariances ``v = t(zbar | z)`` are.
- :func:`independence`: how well ``z`` predicts ``v`` (held-out R² of a ridge regression; about 0
  when ``v`` is independent of ``z``, as ``t`` is trained to make it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from innx.errors import ShapeError

RIDGE_LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3)
"""Ridge penalties tried, per fitted row: the best on an inner split of the fitted rows wins."""

MAX_FEATURES = 256
"""``z`` is reduced to at most this many principal components before the ridge regression."""


@dataclass(frozen=True)
class Share:
    """The variance decomposition of one block ``e_i`` (sums over its dimensions).

    ``between`` estimates ``Σ_d Var_z(E_v[e_d | z])`` (corrected for the finite number of draws),
    ``within`` estimates ``Σ_d E_z[Var_v(e_d | z)]``, ``total = between + within`` estimates
    ``Σ_d Var(e_d)``; ``share = between / total`` clipped to [0, 1] (NaN for a constant block).
    """

    share: float
    between: float
    within: float
    total: float


def explained_share(x: Tensor) -> Share:
    """The share of the variance of ``x`` explained by its rows.

    ``x`` is ``[N, M, D]``: ``N`` rows (values of ``z``), ``M`` draws of ``v`` each, a block of ``D``
    dimensions. With row means ``x̄_n`` and unbiased within-row variances ``s²_n`` (summed over
    dimensions), ``within = mean_n s²_n`` and ``between = Σ_d Var_n(x̄_{n,d}) − within / M``: the
    variance of a mean of ``M`` draws holds ``1/M`` of the within-row variance, which is taken
    out so that a layer that explains nothing scores about 0 rather than ``1/M``.

    >>> rows = torch.arange(4.0).reshape(4, 1, 1).expand(4, 8, 2)  # every draw the same: z decides
    >>> explained_share(rows).share
    1.0
    >>> draws = torch.arange(8.0).reshape(1, 8, 1).expand(4, 8, 2)  # only the draw matters
    >>> explained_share(draws).share
    0.0
    """
    if x.dim() != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ShapeError(
            f"explained_share needs [rows >= 2, draws >= 2, dims], got {tuple(x.shape)}"
        )
    if x.shape[2] == 0:
        return Share(math.nan, 0.0, 0.0, 0.0)
    x = x.double()
    draws = x.shape[1]
    within = float(x.var(1, unbiased=True).sum(1).mean())
    between = float(x.mean(1).var(0, unbiased=True).sum()) - within / draws
    total = between + within
    scale = float(x.pow(2).mean()) * x.shape[2]
    if not total > 1e-12 * scale or total == 0.0:
        return Share(math.nan, between, within, total)
    return Share(min(max(between / total, 0.0), 1.0), between, within, total)


def v_statistics(v: Tensor) -> dict[str, float]:
    """Summary of ``v`` ``[N, D]`` against ``N(0, I)``: per-dimension means (``mean_abs``, the
    mean of ``|mean_d|``, and ``mean_abs_max``), standard deviations (``std_min``, ``std_max``),
    skewness (``skew_abs_mean``, ``skew_abs_max``) and excess kurtosis (``kurtosis_mean``,
    ``kurtosis_abs_max``); all 0 but the standard deviations (1) for a standard normal ``v``."""
    if v.dim() != 2 or v.shape[0] < 4:
        raise ShapeError(f"v_statistics needs [rows >= 4, dims], got {tuple(v.shape)}")
    v = v.double()
    mean, std = v.mean(0), v.std(0)
    centred = (v - mean) / v.std(0, unbiased=False).clamp_min(1e-12)
    skew = centred.pow(3).mean(0)
    kurtosis = centred.pow(4).mean(0) - 3.0
    return {
        "mean_abs": float(mean.abs().mean()),
        "mean_abs_max": float(mean.abs().max()),
        "std_min": float(std.min()),
        "std_max": float(std.max()),
        "skew_abs_mean": float(skew.abs().mean()),
        "skew_abs_max": float(skew.abs().max()),
        "kurtosis_mean": float(kurtosis.mean()),
        "kurtosis_abs_max": float(kurtosis.abs().max()),
    }


def independence(
    v: Tensor, z: Tensor, *, seed: int = 0, held_fraction: float = 1 / 3
) -> dict[str, float]:
    """Held-out R² of predicting ``v`` ``[N, D]`` from ``z`` ``[N, ...]`` (``r2``), and the same
    with ``v`` paired with shuffled rows (``r2_shuffled``: what independence looks like at this
    size).

    ``z`` is flattened and reduced to its first :data:`MAX_FEATURES` principal components, fitted
    on the fitting rows (through the rows' Gram matrix, read in column chunks, so a large layer is
    never copied whole); the ridge penalty is chosen on an inner split of the fitting rows. R²
    pools all dimensions of ``v``: 1 when ``z`` determines ``v``, about 0 (or a little below) when
    it does not.
    """
    if len(v) != len(z) or len(v) < 12:
        raise ShapeError(f"independence needs >= 12 aligned rows, got {len(v)} and {len(z)}")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(v), generator=gen)
    held = max(3, round(len(v) * held_fraction))
    fit_rows, held_rows = order[held:], order[:held]
    x_fit, x_held = _principal(z.reshape(len(z), -1), fit_rows, held_rows, MAX_FEATURES)
    v = v.double()
    shuffled = v[torch.randperm(len(v), generator=gen)]
    return {
        "r2": _held_out_r2(x_fit, v[fit_rows], x_held, v[held_rows]),
        "r2_shuffled": _held_out_r2(x_fit, shuffled[fit_rows], x_held, shuffled[held_rows]),
    }


def r2(truth: Tensor, predicted: Tensor) -> float:
    """``1 − Σ (truth − predicted)² / Σ (truth − mean)²`` over all entries (pooled R²)."""
    total = (truth - truth.mean(0)).pow(2).sum()
    if not float(total) > 0:
        return math.nan
    return float(1 - (truth - predicted).pow(2).sum() / total)


def _held_out_r2(x_fit: Tensor, y_fit: Tensor, x_held: Tensor, y_held: Tensor) -> float:
    inner = max(2, len(x_fit) // 4)

    def inner_r2(lam: float) -> float:
        score = r2(y_fit[:inner], _ridge(x_fit[inner:], y_fit[inner:], lam, x_fit[:inner]))
        return -math.inf if math.isnan(score) else score

    return r2(y_held, _ridge(x_fit, y_fit, max(RIDGE_LAMBDAS, key=inner_r2), x_held))


def _principal(
    x: Tensor, fit_rows: Tensor, held_rows: Tensor, k: int, chunk: int = 4096
) -> tuple[Tensor, Tensor]:
    """Rows ``fit_rows`` and ``held_rows`` of ``x`` ``[N, P]`` on the first ``k`` principal
    components of the fitting rows (fewer when their rank is lower, none when they are
    constant), in float64."""
    n_fit = len(fit_rows)
    gram = torch.zeros(n_fit, n_fit, dtype=torch.float64)
    cross = torch.zeros(len(held_rows), n_fit, dtype=torch.float64)
    for start in range(0, x.shape[1], chunk):
        cols = x[:, start : start + chunk].double()
        fit = cols[fit_rows]
        mean = fit.mean(0)
        fit, held = fit - mean, cols[held_rows] - mean
        gram += fit @ fit.T
        cross += held @ fit.T
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    top = float(eigenvalues[0]) if len(eigenvalues) else 0.0
    rank = int((eigenvalues > top * 1e-9).sum()) if top > 0 else 0
    keep = min(k, rank, n_fit - 1)
    lam, u = eigenvalues[:keep], eigenvectors[:, :keep]
    # the scores of the fitting rows are u·sqrt(λ), a held row's are x_fitᵀ·u / sqrt(λ); one
    # common scale gives the components unit variance on average (ridge still shrinks the
    # weak ones most)
    scale = (lam.mean() / (n_fit - 1)).sqrt() if keep else torch.ones(())
    return u * lam.sqrt() / scale, cross @ u / lam.sqrt() / scale


def _ridge(x: Tensor, y: Tensor, lam: float, x_new: Tensor) -> Tensor:
    """Predictions at ``x_new`` of a ridge regression (intercept unpenalised) with penalty
    ``lam`` per row of ``x``."""
    x_mean, y_mean = x.mean(0), y.mean(0)
    if x.shape[1] == 0:
        return y_mean.expand(len(x_new), -1)
    xc = x - x_mean
    gram = xc.T @ xc + lam * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    coef = torch.linalg.solve(gram, xc.T @ (y - y_mean))
    return (x_new - x_mean) @ coef + y_mean
