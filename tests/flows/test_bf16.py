"""``--precision bf16``: the matrix products run in bf16 under autocast, while every coupling's
elementwise step and the log-det it adds to run in float32."""

from __future__ import annotations

import pytest
import torch
from flows.blocks import randomize
from torch import nn

from innx.flows import (
    AffineCoupling,
    InvarianceConfig,
    InvarianceFlow,
    LULinear,
    SemanticConfig,
    SemanticFlow,
    invariance_nll,
)


def random_t(seed: int = 0) -> InvarianceFlow:
    config = InvarianceConfig.preset("small", 12, (20,), n_blocks=6, width=64)
    with torch.no_grad():
        return randomize(InvarianceFlow(config), seed, scale=0.5).train()


def inputs(batch: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 12, generator=generator), torch.randn(batch, 20, generator=generator)


def output_dtypes(model: nn.Module, kind: type[nn.Module], run) -> set[tuple[torch.dtype, ...]]:
    """The dtypes of every output of every ``kind`` module while ``run()`` runs."""
    seen: set[tuple[torch.dtype, ...]] = set()

    def record(_module, _args, output) -> None:
        outputs = output if isinstance(output, tuple) else (output,)
        seen.add(tuple(o.dtype for o in outputs))

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, kind)]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def test_matrix_products_run_in_bf16_and_every_log_det_in_float32() -> None:
    t, (zbar, z) = random_t(), inputs()

    def forward() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v, logdet = t(zbar, z)
        assert (v.dtype, logdet.dtype) == (torch.float32, torch.float32)

    assert output_dtypes(t, nn.Linear, forward) == {(torch.bfloat16,)}
    assert output_dtypes(t, AffineCoupling, forward) == {(torch.float32, torch.float32)}


def test_bf16_log_det_and_loss_stay_close_to_float32() -> None:
    t, (zbar, z) = random_t(), inputs()
    v32, logdet32 = t(zbar, z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v16, logdet16 = t(zbar, z)
    # bf16 keeps 8 bits of mantissa; per-row log-dets of this size would round by about 0.05 each
    spread = logdet32.abs().mean()
    assert spread > 1.0  # random weights: the log-dets are not trivially zero
    assert (logdet16 - logdet32).abs().max() < 0.05 * spread
    loss32, loss16 = invariance_nll(v32, logdet32), invariance_nll(v16, logdet16)
    assert loss16.item() == pytest.approx(loss32.item(), rel=0.03)


def test_every_parameter_gets_a_finite_gradient_under_bf16() -> None:
    t, (zbar, z) = random_t(), inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v, logdet = t(zbar, z)
    invariance_nll(v, logdet).backward()
    for name, parameter in t.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.dtype == torch.float32, name
        assert torch.isfinite(parameter.grad).all(), name


def test_a_bf16_input_to_a_coupling_is_computed_in_float32() -> None:
    # an LU linear under autocast hands the next coupling bf16 features
    linear = LULinear(6, seed=0)
    coupling = randomize(AffineCoupling(6, 0, width=16, depth=2), 0)
    x = torch.randn(5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h, _ = linear(x)
        y, logdet = coupling(h)
        back, _ = coupling.inverse(y)
    assert h.dtype == torch.bfloat16
    assert (y.dtype, logdet.dtype, back.dtype) == (torch.float32,) * 3
    torch.testing.assert_close(back, h.float(), rtol=0, atol=2e-5)


def test_semantic_flow_log_det_is_float32_under_bf16() -> None:
    config = SemanticConfig.preset("small", 8, {"a": 3}, n_blocks=3, width=32)
    e = randomize(SemanticFlow(config), 0, scale=0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        zhat, logdet = e(torch.randn(16, 8))
    assert (zhat.dtype, logdet.dtype) == (torch.float32, torch.float32)
