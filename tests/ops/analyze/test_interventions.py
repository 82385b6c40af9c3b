"""Concept interventions on constructed cases whose answer is known: a real, randomly initialised
``e``, an identity "decoder" and a "classifier" that reads one block of ``e``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from innx.errors import ShapeError
from innx.flows import SemanticConfig, SemanticFlow
from innx.flows.semantic import RESIDUAL
from innx.ops.analyze.interventions import donors, measure, other_rows, spread

N = 30


def known_case() -> tuple[SemanticFlow, torch.Tensor, dict[str, tuple[str, np.ndarray]]]:
    """``e`` on 6-d codes (blocks a: 2, b: 2, residual: 2) and rows whose block a holds their
    value of ``a`` (3 values), block b their value of ``b`` (4 values), the rest noise."""
    torch.manual_seed(0)
    e = SemanticFlow(SemanticConfig.preset("small", dim=6, factors={"a": 2, "b": 2})).double()
    a, b = np.arange(N) % 3, np.arange(N) % 4
    noise = torch.randn(N, 6, dtype=torch.float64)
    zhat = torch.cat(
        [torch.from_numpy(a)[:, None], noise[:, :1], torch.from_numpy(b)[:, None], noise[:, 1:4]],
        1,
    ).double()
    with torch.no_grad():
        zbar = e.inverse(zhat)
    return e, zbar, {"a": ("categorical", a.astype(float)), "b": ("categorical", b.astype(float))}


def reads(e: SemanticFlow, block: str):  # type: ignore[no-untyped-def]
    """A classifier of "images" (here codes: the decoder is the identity) that predicts the
    value held in ``block`` of ``e`` and nothing else."""
    return lambda images: e.split(e(images))[block][:, 0].round().long()


def identity(codes: torch.Tensor) -> torch.Tensor:
    return codes


@pytest.mark.parametrize(("read", "other"), [("a", "b"), ("b", "a")])
def test_a_classifier_follows_the_block_it_reads_and_ignores_the_rest(read, other):
    e, zbar, values = known_case()
    found = measure(e, zbar, values, identity, reads(e, read), seed=3, draws=50, batch=7)
    assert list(found) == ["a", "b", RESIDUAL]
    # every donor differs in the factor: a swap of the block read always changes the prediction
    # to the donor's; a swap of the other block or of the residual never does
    assert found[read].effect == 1.0 and found[read].follows_donor == 1.0
    assert found[read].interval == (1.0, 1.0) and found[read].donor_same == 0.0
    for name in (other, RESIDUAL):
        assert found[name].effect == 0.0 and found[name].interval == (0.0, 0.0), name
    assert all(cell.n == N for cell in found.values())


def test_deterministic_for_a_seed_with_intervals_around_the_value():
    e, zbar, values = known_case()

    def mixed(images: torch.Tensor) -> torch.Tensor:  # reads both blocks
        blocks = e.split(e(images))
        return (blocks["a"][:, 0] + blocks["b"][:, 0]) > 2.5

    first = measure(e, zbar, values, identity, mixed, seed=1, draws=50)
    assert first == measure(e, zbar, values, identity, mixed, seed=1, draws=50)
    assert 0.0 < first["a"].effect < 1.0 and 0.0 < first["b"].effect < 1.0  # both matter
    for cell in first.values():
        low, high = cell.interval
        assert 0.0 <= low <= cell.effect <= high <= 1.0
    other = measure(e, zbar, values, identity, mixed, seed=2, draws=50)
    assert other != first  # other donors


def test_a_factor_without_donors_is_left_out_and_bad_rows_are_refused():
    e, zbar, _ = known_case()
    constant = {"a": ("categorical", np.zeros(N))}
    found = measure(e, zbar, constant, identity, reads(e, "a"), seed=0, draws=10)
    assert found["a"].n == 0 and math.isnan(found["a"].effect)
    assert found[RESIDUAL].n == N
    with pytest.raises(ShapeError, match="interventions need codes"):
        measure(e, zbar[:1], {}, identity, reads(e, "a"), seed=0, draws=10)


def test_donors_differ_by_the_rule_and_are_drawn_from_both_sides():
    values = np.random.default_rng(0).normal(size=200)
    gap = spread("continuous", values)
    assert gap == pytest.approx(np.subtract(*np.quantile(values, [0.75, 0.25])))
    found = donors(values, gap, seed=4)
    assert (found >= 0).all() and (found != np.arange(200)).all()
    assert (np.abs(values[found] - values) >= gap).all()
    assert len(np.unique(found)) > 50  # drawn, not always the same row
    assert (donors(values, gap, seed=4) == found).all()
    # every eligible row is drawn, below and above: row 5 of 0..9 at gap 3 takes 0, 1, 2, 8 or 9
    steps = np.arange(10.0)
    seen = {int(donors(steps, 3.0, seed=s)[5]) for s in range(200)}
    assert seen == {0, 1, 2, 8, 9}
    # categorical: another value; a value no other row lacks has no donor
    labels = np.array([0.0, 0.0, 1.0, 2.0, 2.0])
    assert spread("categorical", labels) == 0.0
    found = donors(labels, 0.0, seed=0)
    assert (labels[found] != labels).all()
    assert (donors(np.array([1.0, 1.0]), 0.0, seed=0) == -1).all()
    ties = np.array([0.0, 0.0, 0.0, 0.0, 5.0])  # inter-quartile range 0: any other value
    assert (donors(ties, spread("continuous", ties), seed=0)[:4] == 4).all()
    others = other_rows(9, seed=0)
    assert (others != np.arange(9)).all() and (others >= 0).all() and (others < 9).all()
    assert (other_rows(1, seed=0) == -1).all()
