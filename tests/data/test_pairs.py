"""Attribute pairs: what the sampler draws, how continuous factors match, and the CSV reader."""

from __future__ import annotations

import numpy as np
import pytest

from innx.data.pairs import FactorSpec, PairSampler, read_pairs_csv
from innx.errors import ConfigError, DataError

CAT = "categorical"
CONT = "continuous"


def table(n=3000, seed=0):
    """Rows 100, 102, … (not 0-based, not contiguous) with two categorical factors and one
    continuous one."""
    rng = np.random.default_rng(seed)
    rows = 100 + 2 * np.arange(n)
    values = np.stack([rng.integers(0, 4, n), rng.integers(0, 3, n), rng.random(n)], axis=1)
    return rows, values


def lookup(rows, values, wanted):
    return values[np.searchsorted(rows, wanted)]


def test_positive_pairs_share_their_factor_and_are_never_one_row():
    rows, values = table()
    specs = [FactorSpec("a"), FactorSpec("b"), FactorSpec("c", bins=5)]
    sampler = PairSampler(rows, values, [CAT, CAT, CONT], specs, seed=3)
    pairs = sampler.sample(0, 30_000)
    va, vb = lookup(rows, values, pairs.a), lookup(rows, values, pairs.b)
    assert set(np.unique(pairs.factor)) == {1, 2, 3}
    assert np.isin(pairs.a, rows).all() and np.isin(pairs.b, rows).all()
    assert (pairs.a != pairs.b).all()
    for k in (1, 2):
        chosen = pairs.factor == k
        assert (va[chosen, k - 1] == vb[chosen, k - 1]).all()
        # the other factor is not held fixed: it agrees only by chance
        other = 2 - k
        assert (va[chosen, other] == vb[chosen, other]).mean() < 0.45
    edges = np.quantile(values[:, 2], [0.2, 0.4, 0.6, 0.8])
    bins = np.searchsorted(edges, np.stack([va[:, 2], vb[:, 2]]), side="right")
    chosen = pairs.factor == 3
    assert (bins[0, chosen] == bins[1, chosen]).all()
    # factors are drawn uniformly: 10 000 of each expected, ±4 standard deviations
    counts = np.bincount(pairs.factor)[1:]
    assert np.abs(counts - 10_000).max() < 4 * np.sqrt(30_000 * (1 / 3) * (2 / 3))
    # anchors cover the rows: each row is drawn about 10 times
    assert len(np.unique(pairs.a)) > 0.99 * len(rows)


def test_tolerance_matches_continuous_values_within_it():
    rows, values = table()
    sampler = PairSampler(rows, values[:, 2:], [CONT], [FactorSpec("c", tol=0.01)])
    pairs = sampler.sample(5, 5000)
    gap = np.abs(lookup(rows, values, pairs.a)[:, 2] - lookup(rows, values, pairs.b)[:, 2])
    assert gap.max() <= 0.01 and gap.mean() > 0.003  # spread over the window, not just neighbours


def test_pairs_depend_only_on_the_seed_and_the_step():
    rows, values = table()
    specs = [FactorSpec("a"), FactorSpec("b")]
    one = PairSampler(rows, values[:, :2], [CAT, CAT], specs, seed=1)
    two = PairSampler(rows, values[:, :2], [CAT, CAT], specs, seed=1)
    for step in (0, 7):
        p, q = one.sample(step, 64), two.sample(step, 64)
        assert (p.a == q.a).all() and (p.b == q.b).all() and (p.factor == q.factor).all()
    assert (one.sample(0, 64).a != one.sample(1, 64).a).any()
    other_seed = PairSampler(rows, values[:, :2], [CAT, CAT], specs, seed=2).sample(0, 64)
    assert (other_seed.a != one.sample(0, 64).a).any()


def test_negative_pairs_share_every_factor_but_one():
    rows, values = table()
    specs = [FactorSpec("a"), FactorSpec("b"), FactorSpec("c", bins=4)]
    sampler = PairSampler(rows, values, [CAT, CAT, CONT], specs, negative=0.5, seed=0)
    pairs = sampler.sample(0, 20_000)
    negative = pairs.factor < 0
    assert 0.47 < negative.mean() < 0.53
    edges = np.quantile(values[:, 2], [0.25, 0.5, 0.75])
    codes_a = lookup(rows, values, pairs.a).copy()
    codes_b = lookup(rows, values, pairs.b).copy()
    codes_a[:, 2] = np.searchsorted(edges, codes_a[:, 2], side="right")
    codes_b[:, 2] = np.searchsorted(edges, codes_b[:, 2], side="right")
    for j in (1, 2, 3):
        chosen = pairs.factor == -j
        assert chosen.sum() > 2000
        same = codes_a[chosen] == codes_b[chosen]
        assert not same[:, j - 1].any()
        assert np.delete(same, j - 1, axis=1).all()


def test_factors_that_cannot_pair_are_refused():
    rows, values = table(n=50)
    with pytest.raises(ConfigError, match=r"factor 'k' takes 1 value\(s\).*at least two values"):
        PairSampler(rows, np.zeros((50, 1)), [CAT], [FactorSpec("k")])
    with pytest.raises(ConfigError, match="categorical; bins= and tol= apply only"):
        PairSampler(rows, values[:, :1], [CAT], [FactorSpec("a", bins=3)])
    unique = np.arange(50, dtype=float)[:, None]  # 50 categories, one row each
    with pytest.raises(ConfigError, match="no two rows share a value of factor 'u'"):
        PairSampler(rows, unique, [CAT], [FactorSpec("u")])
    with pytest.raises(ConfigError, match="negative pairs need at least two factors"):
        PairSampler(rows, values[:, :1], [CAT], [FactorSpec("a")], negative=0.5)
    with pytest.raises(ConfigError, match="negative pairs need categorical or binned"):
        PairSampler(
            rows, values[:, 1:], [CAT, CONT], [FactorSpec("b"), FactorSpec("c", tol=0.1)],
            negative=0.5,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("shape", FactorSpec("shape")),
        ("scale:bins=4", FactorSpec("scale", bins=4)),
        ("scale:tol=0.02", FactorSpec("scale", tol=0.02)),
        ("digit:categorical", FactorSpec("digit", kind="categorical")),
        ("age:continuous", FactorSpec("age", kind="continuous")),
        ("age:continuous,bins=4", FactorSpec("age", bins=4, kind="continuous")),
    ],
)
def test_factor_specs_parse_and_print_back(text, spec):
    assert FactorSpec.parse(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (":bins=3", "has no name"),
        ("scale:bins=1", "bins needs a count >= 2"),
        ("scale:tol=-1", "tol needs a value >= 0"),
        ("scale:tol=x", "tol needs a value >= 0"),
        ("scale:width=3", "unknown option 'width'; use categorical, continuous, bins=K"),
        (
            "digit:ordinal",
            "unknown kind 'ordinal' for 'digit'; write digit:categorical or digit:co",
        ),
        ("digit:categorical,bins=4", "apply only to a continuous factor; write digit:categorical,"),
        ("age:continuous,categorical", "give at most one kind and one of bins=, tol="),
        ("age:bins=4,tol=1", "give at most one kind and one of bins=, tol="),
    ],
)
def test_bad_factor_specs_say_what_to_write(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        FactorSpec.parse(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "stated"),
    [
        ("digit", None),  # the attribute's recorded kind
        ("digit:categorical", "categorical"),
        ("age:continuous", "continuous"),
        ("age:bins=4", "continuous"),  # binning asks for a continuous factor
        ("age:tol=1", "continuous"),
    ],
)
def test_a_spec_states_a_kind_or_leaves_the_recorded_one(text, stated):
    assert FactorSpec.parse(text).stated_kind == stated


def test_pairs_csv_takes_names_negations_and_labels(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("a,b,factor\n0,5,shape\n3,4,-colour\n\n7,8,2\n9,1,-1\n")
    pairs = read_pairs_csv(path, ["shape", "colour"], n_rows=10)
    assert pairs.a.tolist() == [0, 3, 7, 9]
    assert pairs.b.tolist() == [5, 4, 8, 1]
    assert pairs.factor.tolist() == [1, -2, 2, -1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,10,shape\n", r"pairs.csv:1: row 10 is out of range; the store has rows 0…9"),
        ("0,1,shape\n-1,2,shape\n", r"pairs.csv:2: row -1 is out of range"),
        ("0,3,shape\n", r"pairs.csv:1: row 3 is an image that extract skipped as bad"),
        ("0,1,size\n", r"factor 'size' is not one of shape, colour"),
        ("0,1,3\n", r"factor '3' is not one of shape, colour \(or a label in ±1…2\)"),
        ("0,1\n", "expected 3 columns a,b,factor, got 2"),
        ("x,1,shape\n", "rows must be integers"),
        ("a,b,factor\n", "holds no pairs"),
    ],
)
def test_bad_pairs_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_pairs_csv(path, ["shape", "colour"], n_rows=10, bad=np.array([3]))


def test_a_missing_pairs_file_says_what_to_write(tmp_path):
    with pytest.raises(DataError, match="does not exist; write a CSV with columns a,b,factor"):
        read_pairs_csv(tmp_path / "nope.csv", ["shape"], n_rows=10)
