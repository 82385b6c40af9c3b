"""Property tests for every invertible block, with and without a condition, on random weights."""

from __future__ import annotations

import pytest
import torch
from flows.blocks import BLOCKS, CONDITIONAL, build
from safetensors.torch import load_file, save_file

DIMS = [5, 6]  # odd and even: couplings split odd dims unevenly
CONDS = [0, 3]
CASES = [(name, dim, cond) for name in BLOCKS for dim in DIMS for cond in CONDS]
IDS = [f"{name}-d{dim}-c{cond}" for name, dim, cond in CASES]


def inputs(dim: int, cond: int, batch: int = 4, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=generator, dtype=torch.float64) * 1.5
    c = torch.randn(batch, cond, generator=generator, dtype=torch.float64) if cond else None
    return x, c


@pytest.mark.parametrize(("name", "dim", "cond"), CASES, ids=IDS)
def test_inverse_undoes_forward(name: str, dim: int, cond: int) -> None:
    block = build(name, dim, cond)
    x, c = inputs(dim, cond)
    y, _ = block(x, c)
    assert not torch.allclose(y, x), "random weights should move the input"
    x_back, _ = block.inverse(y, c)
    torch.testing.assert_close(x_back, x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "dim", "cond"), CASES, ids=IDS)
def test_logdets_of_both_directions_cancel(name: str, dim: int, cond: int) -> None:
    block = build(name, dim, cond)
    x, c = inputs(dim, cond)
    y, logdet = block(x, c)
    _, logdet_inverse = block.inverse(y, c)
    assert logdet.shape == (x.shape[0],)
    torch.testing.assert_close(
        logdet + logdet_inverse, torch.zeros_like(logdet), atol=1e-10, rtol=0
    )


@pytest.mark.parametrize(("name", "dim", "cond"), CASES, ids=IDS)
def test_logdet_equals_slogdet_of_jacobian(name: str, dim: int, cond: int) -> None:
    block = build(name, dim, cond)
    x, c = inputs(dim, cond, batch=3)
    _, logdet = block(x, c)
    for i in range(x.shape[0]):
        ci = c[i : i + 1] if c is not None else None
        jacobian = torch.autograd.functional.jacobian(
            lambda xi, ci=ci: block(xi[None], ci)[0][0], x[i]
        )
        sign, logabsdet = torch.linalg.slogdet(jacobian)
        assert sign != 0
        torch.testing.assert_close(logdet[i], logabsdet, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("name", "dim", "cond"), CASES, ids=IDS)
def test_gradcheck_both_directions(name: str, dim: int, cond: int) -> None:
    block = build(name, dim, cond)
    x, c = inputs(dim, cond, batch=2)
    args = (x.requires_grad_(), c.requires_grad_()) if c is not None else (x.requires_grad_(),)
    assert torch.autograd.gradcheck(lambda *a: block(*a), args)
    assert torch.autograd.gradcheck(lambda *a: block.inverse(*a), args)


@pytest.mark.parametrize(("name", "dim", "cond"), CASES, ids=IDS)
def test_every_parameter_gets_a_gradient(name: str, dim: int, cond: int) -> None:
    block = build(name, dim, cond)
    x, c = inputs(dim, cond, batch=8)
    x.requires_grad_()
    y, logdet = block(x, c)
    (y.pow(3).sum() - logdet.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, parameter in block.named_parameters():
        assert parameter.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0, f"{pname} got a zero gradient"


@pytest.mark.parametrize(("name", "dim", "cond"), CASES, ids=IDS)
def test_safetensors_round_trip_gives_identical_outputs(
    tmp_path, name: str, dim: int, cond: int
) -> None:
    block = build(name, dim, cond, seed=0)
    path = tmp_path / "block.safetensors"
    save_file({k: v.contiguous() for k, v in block.state_dict().items()}, str(path))
    fresh = build(name, dim, cond, seed=7)  # other random weights, other permutations
    fresh.load_state_dict(load_file(str(path)))
    x, c = inputs(dim, cond)
    y, logdet = block(x, c)
    y_loaded, logdet_loaded = fresh(x, c)
    assert torch.equal(y, y_loaded)
    assert torch.equal(logdet, logdet_loaded)
    assert torch.equal(fresh.inverse(y, c)[0], block.inverse(y, c)[0])


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_conditional_blocks_depend_on_the_condition(name: str) -> None:
    block = build(name, 6, 3)
    x, c = inputs(6, 3)
    y1, _ = block(x, c)
    y2, _ = block(x, c + 1.0)
    assert not torch.allclose(y1, y2)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_float32_inverse_is_close(name: str) -> None:
    block = build(name, 6, 3).float()
    x, c = inputs(6, 3, batch=64)
    x, c = x.float(), c.float()
    torch.testing.assert_close(block.inverse(block(x, c)[0], c)[0], x, rtol=1e-4, atol=1e-4)
