"""The fused Triton kernels against the torch reference: values, inverses and gradients.

Run in Triton's CPU interpreter (see conftest.py), on awkward sizes and strided inputs.
"""

from __future__ import annotations

import pytest
import torch

from innx.kernels import reference
from innx.kernels.dispatch import (
    actnorm_forward,
    actnorm_inverse,
    affine_forward,
    affine_inverse,
)

SIZES = [(1, 1), (3, 5), (37, 75), (130, 129)]  # one element, under a tile, several tiles of each
CLAMPS = ["tanh", "atan"]  # every clamp has a fused kernel; each affine test runs for both


def inputs(n: int, d: int, seed: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``x``, a strided ``raw`` (every other column of a wider tensor) and a ``shift`` that is a
    chunk of a wider tensor, as a coupling's MLP output gives them."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator)
    raw = (3 * torch.randn(n, 2 * d, generator=generator))[:, ::2]
    shift = torch.randn(n, 2 * d, generator=generator)[:, d:]
    return x.to(device), raw.to(device), shift.to(device)


@pytest.mark.parametrize(("n", "d"), SIZES)
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("bound", [1.0, 2.5])
@pytest.mark.parametrize("clamp", CLAMPS)
def test_affine_step_matches_the_reference_in_values_and_gradients(
    n, d, inverse, bound, clamp, device
):
    fused_fn, reference_fn = (
        (affine_inverse, reference.affine_inverse)
        if inverse
        else (affine_forward, reference.affine_forward)
    )
    fused_in = [t.clone().requires_grad_() for t in inputs(n, d, seed=n * d, device=device)]
    plain_in = [t.clone().requires_grad_() for t in fused_in]
    out, logdet = fused_fn(*fused_in, clamp, bound, kernels="triton")
    expected, expected_logdet = reference_fn(*plain_in, clamp, bound)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logdet, expected_logdet, rtol=1e-5, atol=1e-5)
    grad_out, grad_logdet = torch.randn_like(out), torch.randn_like(logdet)
    fused_grads = torch.autograd.grad(
        (out * grad_out).sum() + (logdet * grad_logdet).sum(), fused_in
    )
    plain_grads = torch.autograd.grad(
        (expected * grad_out).sum() + (expected_logdet * grad_logdet).sum(), plain_in
    )
    for fused, plain in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("clamp", CLAMPS)
def test_the_fused_inverse_undoes_the_fused_step(clamp, device):
    x, raw, shift = inputs(64, 33, seed=1, device=device)
    y, logdet = affine_forward(x, raw, shift, clamp, kernels="triton")
    back, logdet_back = affine_inverse(y, raw, shift, clamp, kernels="triton")
    torch.testing.assert_close(back, x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logdet_back, -logdet)


@pytest.mark.parametrize(("n", "d"), SIZES)
@pytest.mark.parametrize("inverse", [False, True])
def test_actnorm_matches_the_reference_in_values_and_gradients(n, d, inverse, device):
    generator = torch.Generator().manual_seed(d)
    x = torch.randn(n, 2 * d, generator=generator).to(device)[:, :d].requires_grad_()
    loc = torch.randn(d, generator=generator).to(device).requires_grad_()
    log_scale = torch.randn(d, generator=generator).to(device).requires_grad_()
    fused_fn, reference_fn = (
        (actnorm_inverse, reference.actnorm_inverse)
        if inverse
        else (actnorm_forward, reference.actnorm_forward)
    )
    out = fused_fn(x, loc, log_scale, kernels="triton")
    expected = reference_fn(x, loc, log_scale)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    fused_grads = torch.autograd.grad((out * grad).sum(), (x, loc, log_scale))
    plain_grads = torch.autograd.grad((expected * grad).sum(), (x, loc, log_scale))
    for fused, plain in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("clamp", CLAMPS)
def test_half_precision_inputs_compute_in_float32(clamp, device):
    x, raw, shift = (t.to(torch.bfloat16) for t in inputs(40, 24, seed=3, device=device))
    out, logdet = affine_forward(x, raw, shift, clamp, kernels="triton")
    expected, expected_logdet = reference.affine_forward(
        *(t.float() for t in (x, raw, shift)), clamp, 1.0
    )
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(logdet.float(), expected_logdet, rtol=1e-2, atol=2e-2)


@pytest.mark.parametrize("clamp", CLAMPS)
def test_flows_give_the_same_values_and_gradients_through_either_path(clamp, device):
    from innx.flows import InvarianceConfig, InvarianceFlow

    torch.manual_seed(0)
    config = InvarianceConfig.preset("small", 9, (5,), n_blocks=2, width=16, clamp=clamp)
    t = InvarianceFlow(config).to(device)
    for p in t.parameters():  # leave the identity start, so every term matters
        p.data.add_(0.1 * torch.randn_like(p))
    zbar, z = torch.randn(33, 9, device=device), torch.randn(33, 5, device=device)
    t(zbar, z)  # initialise ActNorm from data
    results = []
    for kernels in ("torch", "triton"):
        t.with_kernels(kernels)
        assert t.config.kernels == kernels
        v, logdet = t(zbar, z)
        back = t.inverse(v, z)
        loss = 0.5 * v.pow(2).sum() - logdet.sum()
        grads = torch.autograd.grad(loss, list(t.parameters()))
        results.append((v, logdet, back, grads))
    (v0, l0, b0, g0), (v1, l1, b1, g1) = results
    torch.testing.assert_close(v1, v0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b0, zbar, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b1, zbar, rtol=1e-4, atol=1e-4)
    for fused, plain in zip(g1, g0, strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)
