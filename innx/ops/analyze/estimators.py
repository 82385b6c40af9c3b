"""The ceiling, *kept* and the intervals of ``innx analyze`` as pure functions of tensors.

- :func:`between_share`: the share of a block's variance that lies between the categories of a
  factor: the **ceiling** of the share explained, what a layer that knew the factor and nothing
  else would reach. :func:`quantile_groups` makes categories of a continuous factor.
- :func:`kept_categorical`, :func:`kept_continuous`: how much of a factor invariance samples keep,
  read by a judge; 1 = as much as a plain reconstruction, 0 = chance (:func:`chance_agreement`).
- :func:`bootstrap_interval` (and :func:`share_interval`, :func:`between_interval`,
  :func:`kept_interval`): percentile intervals over rows; :func:`format_interval` prints one as
  ``0.45 ± 0.03``.

Everything is computed in float64, on the CPU (the inputs are per-row readings, small next to the
models that made them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from innx.errors import ConfigError, ShapeError
from innx.ops.analyze.stats import explained_share

_TINY = 1e-12
"""Relative size under which a variance (or a margin over chance) counts as zero."""

_Core = Callable[[Tensor], Tensor]
"""A statistic of resampled rows: ``index`` int64 ``[B, N]`` (``B`` resamples) → ``[B, s]``."""


def between_share(block: Tensor, groups: Tensor) -> float:
    """The share of the variance of ``block`` ``[N, D]`` between the means of ``groups`` ``[N]``.

    Sums over the ``D`` dimensions: ``SS_T = Σ_n ‖x_n − x̄‖²``, ``SS_B = Σ_c n_c ‖x̄_c − x̄‖²``,
    ``SS_W = SS_T − SS_B``; with ``K`` groups present and ``MS_W = SS_W / (N − K)``, the share is
    ``(SS_B − (K − 1)·MS_W) / (SS_T + MS_W)`` (omega squared) clipped to [0, 1]: 1 when the block
    is a function of the group, about 0 (not ``(K − 1) / N``) when it is independent of it. NaN
    for a constant block or ``D = 0``.

    >>> groups = torch.tensor([0, 0, 1, 1, 2, 2])
    >>> between_share(torch.nn.functional.one_hot(groups).double(), groups)
    1.0
    >>> between_share(torch.tensor([[0.0], [1.0], [0.0], [1.0], [0.0], [1.0]]), groups)
    0.0
    """
    omega = float(_between(block, groups)(torch.arange(len(block))[None])[0, 0])
    return omega if math.isnan(omega) else min(max(omega, 0.0), 1.0)


def _between(block: Tensor, groups: Tensor) -> _Core:
    """Checks the arguments of :func:`between_share`; its core gives omega squared unclipped and
    the uncorrected ``SS_B / SS_T`` (NaN for a constant block)."""
    if block.dim() != 2 or groups.dim() != 1 or len(groups) != len(block):
        raise ShapeError(
            f"between_share needs a block [N, D] and groups [N], got {tuple(block.shape)} and {tuple(groups.shape)}"
        )
    if groups.is_floating_point() or groups.is_complex():
        raise ShapeError(
            f"between_share needs integer groups, got {groups.dtype}; use quantile_groups for a continuous factor"
        )
    _, inverse = torch.unique(groups.cpu(), return_inverse=True)
    n, k, x = len(block), int(inverse.max()) + 1 if len(inverse) else 0, block.double().cpu()
    if n <= k:
        raise ShapeError(
            f"between_share needs more rows than groups, got {n} rows in {k} groups; use fewer groups"
        )

    def core(index: Tensor) -> Tensor:
        rows, labels = x[index], inverse[index]  # [B, N, D], [B, N]
        sizes = torch.zeros(len(index), k, dtype=x.dtype).scatter_add_(
            1, labels, torch.ones(labels.shape, dtype=x.dtype)
        )
        spread = labels[..., None].expand(rows.shape)
        sums = torch.zeros(len(index), k, x.shape[1], dtype=x.dtype).scatter_add_(1, spread, rows)
        means = sums / sizes.clamp_min(1)[..., None]
        ss_within = (rows - means.gather(1, spread)).pow(2).sum((1, 2))
        ss_total = (rows - rows.mean(1, keepdim=True)).pow(2).sum((1, 2))
        present = (sizes > 0).sum(1)
        ms_within = ss_within / (n - present)
        ss_between = ss_total - ss_within
        omega = (ss_between - (present - 1) * ms_within) / (ss_total + ms_within)
        flat = ~(ss_total > _TINY * rows.pow(2).sum((1, 2)))  # constant, or D = 0
        return torch.stack([omega, ss_between / ss_total], 1).masked_fill(flat[:, None], math.nan)

    return core


def quantile_groups(values: np.ndarray | Tensor, bins: int = 16) -> Tensor:
    """Int64 groups ``[N]`` of a continuous factor ``values`` ``[N]`` by quantile bins.

    A row's group is ``rank · bins // N`` with tied values sharing their lowest rank, so equal
    values always share a group (fewer groups when values repeat); groups are renumbered
    ``0, 1, …`` in increasing order of value.

    >>> quantile_groups(np.array([5.0, 1.0, 3.0, 2.0, 4.0, 6.0]), bins=3)
    tensor([2, 0, 1, 0, 1, 2])
    >>> quantile_groups(np.array([1.0, 1.0, 1.0, 2.0]), bins=4)
    tensor([0, 0, 0, 1])
    """
    array = np.asarray(values.cpu() if isinstance(values, Tensor) else values, np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ShapeError(f"quantile_groups needs values [N >= 1], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ShapeError("quantile_groups got NaN or infinite values; drop those rows first")
    if bins < 1:
        raise ConfigError(f"quantile_groups needs bins >= 1, got {bins}")
    ranks = np.searchsorted(np.sort(array), array, side="left")
    _, groups = np.unique(ranks * bins // len(array), return_inverse=True)
    return torch.as_tensor(groups.reshape(-1), dtype=torch.int64)


def chance_agreement(labels: np.ndarray | Tensor) -> float:
    """``Σ_c p_c²`` of the empirical distribution of ``labels`` ``[N]``.

    The probability that an independent draw from the labels' marginal equals a row's own label:
    the accuracy of the invariance samples of a layer that knows nothing about the factor (not
    the share of the most frequent label, which a layer would only reach by always showing it).

    >>> chance_agreement(torch.tensor([0, 0, 0, 1]))  # 0.75² + 0.25²
    0.625
    """
    array = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    if array.ndim != 1 or len(array) == 0:
        raise ShapeError(f"chance_agreement needs labels [N >= 1], got shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ShapeError("chance_agreement got NaN or infinite labels; drop those rows first")
    _, counts = np.unique(array, return_counts=True)
    return float(((counts / len(array)) ** 2).sum())


@dataclass(frozen=True)
class Kept:
    """How much of a factor invariance samples keep: ``value = (samples − chance) /
    (reconstructions − chance)``, 1 = as much as a plain reconstruction, 0 = chance; not clipped.

    ``measure`` says what ``samples`` and ``reconstructions`` are: the judge's accuracy
    (``"accuracy"``, a categorical factor) or the adjusted R² of its readings on the true value
    (``"r2"``, a continuous factor, ``chance = 0``).
    """

    value: float
    samples: float
    reconstructions: float
    chance: float
    measure: Literal["accuracy", "r2"]


def kept_categorical(samples_correct: Tensor, recon_correct: Tensor, chance: float) -> Kept:
    """*Kept* of a categorical factor from the judge's hits.

    ``samples_correct`` bool ``[N, K]``: the judge reads row ``n``'s true value on its ``k``-th
    invariance sample; ``recon_correct`` bool ``[N]``: the same on its reconstruction; ``chance``
    from :func:`chance_agreement` of the factor's labels. The value is NaN when reconstructions
    are not read better than chance: then the judge (or the autoencoder) cannot show the factor
    at all and the samples measure nothing.

    >>> hits = torch.tensor([[True, False], [True, True]])
    >>> kept_categorical(hits, torch.tensor([True, True]), chance=0.5).value  # (0.75 − 0.5) / 0.5
    0.5
    """
    value, samples, recon = _categorical(samples_correct, recon_correct, chance)(
        torch.arange(len(recon_correct))[None]
    )[0].tolist()
    return Kept(value, samples, recon, chance, "accuracy")


def _categorical(samples_correct: Tensor, recon_correct: Tensor, chance: float) -> _Core:
    if (
        samples_correct.dim() != 2
        or recon_correct.shape != samples_correct.shape[:1]
        or not samples_correct.numel()
    ):
        raise ShapeError(
            f"kept_categorical needs samples_correct [N >= 1, K >= 1] and recon_correct [N], got {tuple(samples_correct.shape)} and {tuple(recon_correct.shape)}"
        )
    if not 0.0 <= chance <= 1.0:
        raise ConfigError(f"kept_categorical needs a chance in [0, 1], got {chance}")
    hits, recon_hits = samples_correct.double().sum(1).cpu(), recon_correct.double().cpu()
    total = samples_correct.numel()

    def core(index: Tensor) -> Tensor:
        samples, recon = hits[index].sum(1) / total, recon_hits[index].sum(1) / len(hits)
        value = ((samples - chance) / (recon - chance)).masked_fill(
            ~(recon - chance > _TINY), math.nan
        )
        return torch.stack([value, samples, recon], 1)

    return core


def kept_continuous(truth: Tensor, samples_pred: Tensor, recon_pred: Tensor) -> Kept:
    """*Kept* of a continuous factor from the judge's readings.

    ``truth`` ``[N]``: the factor's true value per row; ``samples_pred`` ``[N, K]``: the judge's
    reading on ``K`` invariance samples per row; ``recon_pred`` ``[N]``: on the reconstruction.
    The measure is the R² of the best line through (truth, reading) pairs, the squared Pearson
    correlation (the share of the readings' variation explained by the original's value),
    adjusted for the number of pairs ``P`` as ``1 − (1 − r²)(P − 1)/(P − 2)`` so that readings
    independent of the truth score about 0 rather than ``1/P`` (chance is 0). Constant readings
    count as ``r² = 0``. ``value = r2_samples / r2_recon``; NaN for a constant truth or when
    ``r2_recon`` is not above 0 (the reconstructions show nothing of the factor).
    """
    value, samples, recon = _continuous(truth, samples_pred, recon_pred)(
        torch.arange(len(truth))[None]
    )[0].tolist()
    return Kept(value, samples, recon, 0.0, "r2")


def _continuous(truth: Tensor, samples_pred: Tensor, recon_pred: Tensor) -> _Core:
    ok = truth.dim() == 1 and len(truth) >= 3 and recon_pred.shape == truth.shape
    if not (
        ok and samples_pred.dim() == 2 and len(samples_pred) == len(truth) and samples_pred.numel()
    ):
        raise ShapeError(
            f"kept_continuous needs truth [N >= 3], samples_pred [N, K >= 1] and recon_pred [N], got {tuple(truth.shape)}, {tuple(samples_pred.shape)} and {tuple(recon_pred.shape)}"
        )
    t, y, r = truth.double().cpu(), samples_pred.double().cpu(), recon_pred.double().cpu()

    def core(index: Tensor) -> Tensor:
        r2_samples = _adjusted_r2(t[index, None].expand(*index.shape, y.shape[1]), y[index])
        r2_recon = _adjusted_r2(t[index], r[index])
        value = (r2_samples / r2_recon).masked_fill(~(r2_recon > _TINY), math.nan)
        return torch.stack([value, r2_samples, r2_recon], 1)

    return core


def _adjusted_r2(truth: Tensor, readings: Tensor) -> Tensor:
    """Adjusted R² of ``readings`` on ``truth``, ``[B, ...]`` each, over all pairs of a row ``b``."""
    a, b = truth.flatten(1), readings.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    saa, sbb, sab = (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)
    moves = sbb > _TINY * readings.flatten(1).pow(2).sum(1)
    r2 = torch.where(moves, sab**2 / (saa * sbb.where(moves, 1.0)), 0.0)
    pairs = a.shape[1]
    adjusted = 1.0 - (1.0 - r2) * (pairs - 1) / (pairs - 2)
    return adjusted.masked_fill(~(saa > _TINY * truth.flatten(1).pow(2).sum(1)), math.nan)


def _resamples(n: int, draws: int, seed: int, width: int) -> Iterator[Tensor]:
    """The bootstrap's ``draws`` resamples of ``n`` rows, int64 ``[B, n]`` at a time, ``B`` such
    that a statistic holding ``width`` numbers per row and resample sees about 2²² of them."""
    if n < 1 or draws < 1:
        raise ConfigError(f"a bootstrap needs n >= 1 rows and draws >= 1, got n={n}, draws={draws}")
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, (1 << 22) // (n * max(width, 1)))
    for start in range(0, draws, chunk):
        yield torch.stack(
            [torch.randint(n, (n,), generator=gen) for _ in range(min(chunk, draws - start))]
        )


def _percentiles(found: np.ndarray, level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"a bootstrap interval needs a level in (0, 1), got {level}")
    found = found[~np.isnan(found)]
    if len(found) == 0:
        return math.nan, math.nan
    low, high = np.quantile(found, [(1.0 - level) / 2, (1.0 + level) / 2])
    return float(low), float(high)


def bootstrap_interval(
    statistic: Callable[[Tensor], float],
    n: int,
    *,
    draws: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval over ``n`` rows.

    ``statistic(index)`` is evaluated on ``draws`` resamples ``index`` (int64 ``[n]``, rows drawn
    with replacement from ``torch.Generator().manual_seed(seed)``, so the interval is
    deterministic for a seed); NaN results are left out. Returns the ``(1 − level)/2`` and
    ``(1 + level)/2`` quantiles, ``(nan, nan)`` when every result is NaN.
    """
    found = [statistic(index) for chunk in _resamples(n, draws, seed, 0) for index in chunk]
    return _percentiles(np.array(found, dtype=np.float64), level)


def _interval(
    core: _Core, n: int, width: int, draws: int, seed: int, level: float, shift: float = 0.0
) -> tuple[float, float]:
    """:func:`bootstrap_interval` of column 0 of ``core`` minus ``shift``, many resamples at once."""
    found = [core(index)[:, 0].numpy() for index in _resamples(n, draws, seed, width)]
    return _percentiles(np.concatenate(found) - shift, level)


def share_interval(
    x: Tensor, *, draws: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap interval over rows of ``explained_share(x).share`` for ``x`` ``[N, M, D]``: the
    numbers of ``bootstrap_interval(lambda i: explained_share(x[i]).share, N)``, from per-row
    sums."""
    explained_share(x[:2])  # its checks
    x = x.double().cpu()
    n, m, d = x.shape
    means, within, squares = x.mean(1), x.var(1).sum(1), x.pow(2).sum((1, 2))

    def core(index: Tensor) -> Tensor:
        inside = within[index].mean(1)
        between = means[index].var(1).sum(1) - inside / m
        total = between + inside
        flat = ~(total > _TINY * squares[index].mean(1) / m) | (total == 0)
        return (between / total).clamp(0.0, 1.0).masked_fill(flat, math.nan)[:, None]

    return _interval(core, n, d, draws, seed, level) if d else (math.nan, math.nan)


def between_interval(
    block: Tensor, groups: Tensor, *, draws: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap interval over rows of ``between_share(block, groups)`` (the ceiling).

    A resample's group means carry their own sampling noise on top of the sample's, so the
    resamples' omega squared centres on the sample's uncorrected ``SS_B / SS_T``, not on its
    omega squared (by about ``(K − 1) / N``): the percentiles are moved back by that difference
    before clipping to [0, 1]. The plain percentile interval would miss the truth most of the
    time at 16 groups and 512 rows.
    """
    core = _between(block, groups)
    omega, eta = core(torch.arange(len(block))[None])[0].tolist()
    low, high = _interval(core, len(block), 2 * block.shape[1] + 2, draws, seed, level, eta - omega)
    return min(max(low, 0.0), 1.0), min(max(high, 0.0), 1.0)


def kept_interval(
    kept: Callable[..., Kept],
    *rows: Tensor,
    draws: int = 200,
    seed: int = 0,
    level: float = 0.95,
    **fixed: float,
) -> tuple[float, float]:
    """Bootstrap interval of ``kept(*rows, **fixed).value``, resampling the rows of all ``rows``
    together: ``kept_interval(kept_categorical, samples_correct, recon_correct, chance=c)`` or
    ``kept_interval(kept_continuous, truth, samples_pred, recon_pred)``, many resamples at once.
    ``chance`` stays fixed: it belongs to the factor's labels over the store, not to the rows."""
    cores: dict[Callable[..., Kept], Callable[..., _Core]] = {
        kept_categorical: _categorical,
        kept_continuous: _continuous,
    }
    if kept not in cores:
        raise ConfigError("kept_interval takes kept_categorical or kept_continuous")
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise ShapeError(f"kept_interval needs aligned rows, got lengths {[len(r) for r in rows]}")
    width = 2 * max(r[0].numel() for r in rows) + 2
    return _interval(cores[kept](*rows, **fixed), len(rows[0]), width, draws, seed, level)


def plus_minus(low: float, high: float, value: float) -> float:
    """Half width ``h`` such that ``value ± h`` contains ``[low, high]``."""
    return max(value - low, high - value)


def format_interval(
    value: float | None, low: float | None = None, high: float | None = None, digits: int = 2
) -> str:
    """``value ± h`` with ``digits`` decimals, ``h`` rounded up so that the printed range contains
    ``[low, high]``; ``"–"`` for a missing value, the value alone for a missing interval.

    >>> format_interval(0.4512, 0.425, 0.478)
    '0.45 ± 0.03'
    >>> format_interval(float("nan"), 0.1, 0.2)
    '–'
    """
    if value is None or math.isnan(value):
        return "–"
    shown = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = f"{shown:.{digits}f}"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return text
    scale = 10.0**digits
    half = math.ceil(plus_minus(low, high, shown) * scale - 1e-9) / scale
    return f"{text} ± {half:.{digits}f}"
