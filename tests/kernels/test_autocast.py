"""Under bf16 autocast the fused kernels get float32 inputs (the coupling casts the MLP's bf16
output up) and train a flow like the torch reference does."""

from __future__ import annotations

import torch
from flows.blocks import randomize

from innx.flows import InvarianceConfig, InvarianceFlow, invariance_nll


def loss_and_grads(t: InvarianceFlow, kernels: str, zbar, z) -> tuple[torch.Tensor, list]:
    t.zero_grad()
    t.with_kernels(kernels)
    with torch.autocast(zbar.device.type, dtype=torch.bfloat16):
        v, logdet = t(zbar, z)
    assert logdet.dtype == torch.float32
    loss = invariance_nll(v, logdet)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in t.parameters()]


def test_bf16_flow_with_fused_kernels_matches_the_torch_path(device):
    config = InvarianceConfig.preset("small", 10, (12,), n_blocks=2, width=32)
    with torch.no_grad():
        t = randomize(InvarianceFlow(config), 0, scale=0.5).train().to(device)
    generator = torch.Generator().manual_seed(0)
    zbar = torch.randn(19, 10, generator=generator).to(device)
    z = torch.randn(19, 12, generator=generator).to(device)
    fused_loss, fused_grads = loss_and_grads(t, "triton", zbar, z)
    plain_loss, plain_grads = loss_and_grads(t, "torch", zbar, z)
    torch.testing.assert_close(fused_loss, plain_loss, rtol=1e-5, atol=1e-5)
    for fused, plain in zip(fused_grads, plain_grads, strict=True):
        # the same bf16 products on both paths; float32 elementwise work differs only in rounding
        torch.testing.assert_close(fused, plain, rtol=2e-2, atol=2e-3)
