"""The ceiling, *kept* and interval estimators on constructed cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from innx.errors import ConfigError, ShapeError
from innx.ops.analyze.estimators import (
    between_interval,
    between_share,
    bootstrap_interval,
    chance_agreement,
    format_interval,
    kept_categorical,
    kept_continuous,
    kept_interval,
    plus_minus,
    quantile_groups,
    share_interval,
)
from innx.ops.analyze.stats import explained_share

SKEWED = torch.tensor([0.6, 0.2, 0.1, 0.1], dtype=torch.float64)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- between_share -------------------------------------------------------------------------------


def test_a_block_that_is_the_category_is_explained_exactly():
    groups = torch.randint(5, (300,), generator=_gen(0))
    assert between_share(torch.nn.functional.one_hot(groups).double(), groups) == 1.0
    embedded = groups[:, None].double() * torch.randn(1, 6, generator=_gen(1), dtype=torch.float64)
    assert between_share(embedded, groups) == 1.0


def test_category_plus_noise_is_the_between_over_total_variance():
    # x = c·w + σ·noise, c uniform on {0..3}: between variance Var(c)·‖w‖² = 1.25·‖w‖², within D·σ²
    n, d, sigma = 8000, 4, 1.5
    groups = torch.randint(4, (n,), generator=_gen(2))
    w = torch.tensor([1.0, -0.5, 2.0, 0.0], dtype=torch.float64)
    x = groups[:, None].double() * w + sigma * torch.randn(
        n, d, generator=_gen(3), dtype=torch.float64
    )
    between = 1.25 * float(w @ w)
    expected = between / (between + d * sigma**2)
    assert between_share(x, groups) == pytest.approx(expected, abs=0.02)
    low, high = between_interval(x, groups)
    assert low <= expected <= high


def test_noise_in_random_groups_is_about_zero_and_its_interval_contains_zero():
    x = torch.randn(5000, 8, generator=_gen(4), dtype=torch.float64)
    groups = torch.randint(6, (5000,), generator=_gen(5))
    assert 0.0 <= between_share(x, groups) <= 0.02
    low, high = between_interval(x, groups)
    assert low <= 0.0 <= high


def test_between_share_is_invariant_to_rotation_scale_and_relabelling():
    groups = torch.randint(3, (400,), generator=_gen(6))
    x = groups[:, None].double() + torch.randn(400, 5, generator=_gen(7), dtype=torch.float64)
    share = between_share(x, groups)
    assert 0.1 < share < 0.9
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=_gen(8), dtype=torch.float64))
    assert between_share(x @ rotation, groups) == pytest.approx(share, abs=1e-12)
    assert between_share(3.0 * x - 7.0, groups) == pytest.approx(share, abs=1e-12)
    relabelled = torch.tensor([42, -1, 7])[groups]
    assert between_share(x, relabelled) == pytest.approx(share, abs=1e-12)


def test_between_share_of_constant_or_empty_blocks_is_nan_and_bad_shapes_are_refused():
    groups = torch.tensor([0, 0, 1, 1])
    assert math.isnan(between_share(torch.ones(4, 3), groups))
    assert math.isnan(between_share(torch.ones(4, 0), groups))
    assert between_share(torch.randn(4, 2), torch.zeros(4, dtype=torch.int64)) == 0.0
    for block, bad in [
        (torch.zeros(4), groups),
        (torch.zeros(4, 2), groups[:3]),
        (torch.zeros(4, 2), groups[:, None]),
        (torch.zeros(4, 2), groups.double()),
        (torch.zeros(4, 2), torch.arange(4)),  # N <= K
    ]:
        with pytest.raises(ShapeError):
            between_share(block, bad)


# -- quantile_groups and chance_agreement --------------------------------------------------------


def test_quantile_groups_are_balanced_ordered_and_keep_ties_together():
    values = np.random.default_rng(0).permutation(160).astype(float)
    groups = quantile_groups(values)
    assert groups.dtype == torch.int64
    assert torch.bincount(groups).tolist() == [10] * 16
    assert torch.equal(groups, torch.as_tensor(values // 10, dtype=torch.int64))
    repeated = torch.tensor([3.0, 1.0, 2.0, 1.0, 3.0, 2.0] * 10)
    tied = quantile_groups(repeated, bins=16)
    assert torch.equal(tied, (repeated - 1).long())
    mostly_zero = np.concatenate([np.zeros(100), np.arange(1.0, 61.0)])
    assert quantile_groups(mostly_zero).unique().numel() == 7  # all zeros in one group, 6 more
    assert quantile_groups(np.arange(5.0), bins=16).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ShapeError):
        quantile_groups(np.array([1.0, math.nan]))
    with pytest.raises(ConfigError):
        quantile_groups(np.arange(4.0), bins=0)


def test_chance_agreement_is_the_sum_of_squared_frequencies():
    assert chance_agreement(torch.arange(5).repeat(20)) == pytest.approx(1 / 5, abs=1e-15)
    labels = np.repeat([0.0, 1.0, 2.0, 3.0], [60, 20, 10, 10])
    assert chance_agreement(labels) == pytest.approx(float(SKEWED.pow(2).sum()), abs=1e-15)
    with pytest.raises(ShapeError):
        chance_agreement(np.zeros((2, 2)))


# -- kept ----------------------------------------------------------------------------------------


def _skewed_case(n: int = 2000, k: int = 8, kept_draws: int = 0):
    """Truth labels with a skewed marginal; the first ``kept_draws`` samples of each row keep the
    truth, the rest are independent draws from the marginal; the judge is perfect."""
    gen = _gen(10)
    truth = torch.multinomial(SKEWED, n, replacement=True, generator=gen)
    shown = torch.multinomial(SKEWED, n * k, replacement=True, generator=gen).reshape(n, k)
    shown[:, :kept_draws] = truth[:, None]
    return truth, shown == truth[:, None], torch.ones(n, dtype=torch.bool)


def test_samples_as_good_as_reconstructions_keep_exactly_one():
    recon = torch.rand(300, generator=_gen(11)) < 0.8
    kept = kept_categorical(recon[:, None].expand(300, 5), recon, chance=0.3)
    assert kept.value == 1.0 and kept.measure == "accuracy"
    assert kept.samples == kept.reconstructions == float(recon.double().mean())


def test_samples_drawn_from_the_marginal_keep_zero_and_the_majority_share_is_not_chance():
    truth, samples_correct, recon_correct = _skewed_case()
    chance = chance_agreement(truth)
    kept = kept_categorical(samples_correct, recon_correct, chance)
    low, high = kept_interval(kept_categorical, samples_correct, recon_correct, chance=chance)
    assert low <= 0.0 <= high and abs(kept.value) < 0.05
    # chance as the share of the most frequent class would call this layer clearly worse than chance
    majority = float(torch.bincount(truth).max()) / len(truth)
    assert kept_categorical(samples_correct, recon_correct, majority).value < -0.3


def test_half_the_samples_keeping_the_value_keep_one_half():
    truth, samples_correct, recon_correct = _skewed_case(kept_draws=4)
    chance = chance_agreement(truth)
    kept = kept_categorical(samples_correct, recon_correct, chance)
    low, high = kept_interval(kept_categorical, samples_correct, recon_correct, chance=chance)
    assert low <= 0.5 <= high and kept.value == pytest.approx(0.5, abs=0.05)


def test_kept_is_nan_when_reconstructions_are_no_better_than_chance_and_shapes_are_checked():
    assert math.isnan(
        kept_categorical(torch.ones(4, 2, dtype=torch.bool), torch.ones(4) < 0, 0.25).value
    )
    with pytest.raises(ShapeError):
        kept_categorical(torch.ones(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool), 0.25)
    with pytest.raises(ConfigError):
        kept_categorical(torch.ones(4, 2, dtype=torch.bool), torch.ones(4, dtype=torch.bool), 1.5)
    with pytest.raises(ShapeError):
        kept_continuous(torch.zeros(4), torch.zeros(4, 2), torch.zeros(3))


def test_kept_continuous_of_exact_independent_and_half_readings():
    n, k = 1000, 8
    truth = torch.randn(n, generator=_gen(12), dtype=torch.float64)
    exact = kept_continuous(truth, truth[:, None].expand(n, k), truth)
    assert (
        exact.value == pytest.approx(1.0, abs=1e-12) and exact.measure == "r2" and exact.chance == 0
    )
    independent = torch.randn(n, k, generator=_gen(13), dtype=torch.float64)
    assert abs(kept_continuous(truth, independent, truth).value) < 0.01
    low, high = kept_interval(kept_continuous, truth, independent, truth)
    assert low <= 0.0 <= high
    # half the readings are the truth, half independent draws of the same marginal:
    # corr = Cov / sqrt(Var·Var) = (1/2) / 1, so R² = 1/4
    half = torch.cat([truth[:, None].expand(n, k // 2), independent[:, k // 2 :]], 1)
    assert kept_continuous(truth, half, truth).value == pytest.approx(0.25, abs=0.03)
    low, high = kept_interval(kept_continuous, truth, half, truth)
    assert low <= 0.25 <= high
    assert math.isnan(
        kept_continuous(truth, half, torch.zeros(n)).value
    )  # reconstructions show nothing


# -- intervals -----------------------------------------------------------------------------------


def test_bootstrap_interval_is_deterministic_covers_the_mean_and_shrinks_as_one_over_sqrt_n():
    x = torch.randn(200, generator=_gen(14), dtype=torch.float64)
    mean = lambda index: float(x[index].mean())  # noqa: E731
    assert bootstrap_interval(mean, 200, seed=3) == bootstrap_interval(mean, 200, seed=3)
    assert bootstrap_interval(mean, 200, seed=3) != bootstrap_interval(mean, 200, seed=4)
    assert (
        bootstrap_interval(lambda index: math.nan, 10)
        == (pytest.approx(math.nan, nan_ok=True),) * 2
    )
    gen = _gen(15)
    covered = 0
    for seed in range(200):
        sample = torch.randn(40, generator=gen, dtype=torch.float64)
        low, high = bootstrap_interval(
            lambda i, s=sample: float(s[i].mean()), 40, draws=100, seed=seed
        )
        covered += low <= 0.0 <= high
    assert 0.85 <= covered / 200 <= 0.99
    widths = []
    for n in (100, 1600):
        sample = torch.randn(n, generator=gen, dtype=torch.float64)
        low, high = bootstrap_interval(lambda i, s=sample: float(s[i].mean()), n, draws=400)
        widths.append(high - low)
        assert high - low == pytest.approx(2 * 1.96 / n**0.5, rel=0.25)
    assert widths[0] / widths[1] == pytest.approx(4.0, rel=0.25)
    with pytest.raises(ConfigError):
        bootstrap_interval(mean, 200, level=1.0)


def test_share_interval_contains_the_share_of_a_known_mix_and_is_the_plain_bootstrap():
    # variance 2 from the row, 1 from the draw: share 2/3
    gen = _gen(16)
    x = 2**0.5 * torch.randn(512, 1, 8, generator=gen) + torch.randn(512, 16, 8, generator=gen)
    low, high = share_interval(x)
    assert low <= explained_share(x).share <= high and low <= 2 / 3 <= high and high - low < 0.1
    small = x[:128]
    plain = bootstrap_interval(lambda i: explained_share(small[i]).share, 128, draws=30, seed=1)
    assert share_interval(small, draws=30, seed=1) == pytest.approx(plain, abs=1e-12)


def test_batched_kept_intervals_are_the_plain_bootstrap():
    _, samples_correct, recon_correct = _skewed_case(n=300, kept_draws=2)
    recon_correct[::3] = False
    plain = bootstrap_interval(
        lambda i: kept_categorical(samples_correct[i], recon_correct[i], 0.4).value, 300, draws=50
    )
    assert kept_interval(
        kept_categorical, samples_correct, recon_correct, chance=0.4, draws=50
    ) == pytest.approx(plain, abs=1e-12)
    t = torch.randn(300, generator=_gen(17), dtype=torch.float64)
    y = t[:, None] + torch.randn(300, 4, generator=_gen(18), dtype=torch.float64)
    plain = bootstrap_interval(lambda i: kept_continuous(t[i], y[i], 2 * t[i]).value, 300, draws=50)
    assert kept_interval(kept_continuous, t, y, 2 * t, draws=50) == pytest.approx(plain, abs=1e-9)
    with pytest.raises(ConfigError):
        kept_interval(lambda *rows: kept_categorical(*rows, 0.4), samples_correct, recon_correct)


def test_between_interval_is_the_plain_bootstrap_moved_back_to_omega_squared():
    # the resamples' omega squared centres on the sample's SS_B / SS_T: the plain interval misses
    # a between share it should contain, the moved one does not
    groups = torch.randint(16, (512,), generator=_gen(19))
    x = 0.5 * torch.linspace(-1, 1, 16, dtype=torch.float64)[groups, None] + torch.randn(
        512, 8, generator=_gen(20), dtype=torch.float64
    )
    means = torch.zeros(16, 8, dtype=torch.float64).index_add_(0, groups, x)
    means /= torch.bincount(groups, minlength=16)[:, None]
    eta = float((x.mean(0) - means[groups]).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    omega = between_share(x, groups)
    plain = bootstrap_interval(lambda i: between_share(x[i], groups[i]), 512, draws=20)
    moved = between_interval(x, groups, draws=20)
    assert moved == pytest.approx((plain[0] - (eta - omega), plain[1] - (eta - omega)), abs=1e-9)
    assert moved[0] < omega < moved[1]
    # with no between variance at all, the plain interval sits at about (K − 1) / N = 0.03
    noise = torch.randn(512, 8, generator=_gen(21), dtype=torch.float64)
    plain = bootstrap_interval(lambda i: between_share(noise[i], groups[i]), 512, draws=20)
    assert plain[0] > 0.01 and between_interval(noise, groups)[0] == 0.0


def test_format_interval():
    assert format_interval(0.4512, 0.425, 0.478) == "0.45 ± 0.03"
    assert format_interval(0.10, 0.02, 0.11) == "0.10 ± 0.08"  # the wider side
    assert format_interval(0.5, 0.47, 0.53) == "0.50 ± 0.03"  # no spurious rounding up
    assert format_interval(-0.001, -0.004, 0.003) == "0.00 ± 0.01"  # never "-0.00"
    assert format_interval(0.12345, 0.1200, 0.1250, digits=3) == "0.123 ± 0.003"
    assert format_interval(0.5) == "0.50" == format_interval(0.5, math.nan, math.nan)
    assert format_interval(None) == "–" == format_interval(math.nan, 0.1, 0.2)
    assert plus_minus(0.2, 0.5, 0.3) == pytest.approx(0.2)
