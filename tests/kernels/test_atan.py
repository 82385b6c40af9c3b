"""The kernels' float32 ``atan`` (elementary ops only, for the atan clamp) against ``torch.atan``.

Run in Triton's CPU interpreter (see conftest.py) or, with it off, compiled on CUDA.
"""

from __future__ import annotations

import math

import pytest
import torch

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from innx.kernels import triton_flows  # noqa: E402  (after conftest chose interpret or compile)

TAN_PI_8, TAN_3PI_8 = math.tan(math.pi / 8), math.tan(3 * math.pi / 8)  # the reduction thresholds


@triton.jit
def _atan_kernel(u_ptr, out_ptr, n, BLOCK: tl.constexpr):
    at = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = at < n
    u = tl.load(u_ptr + at, mask=ok, other=0.0)
    tl.store(out_ptr + at, triton_flows._atan(u), mask=ok)


def kernel_atan(u: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(u)
    _atan_kernel[(triton.cdiv(u.numel(), 1024),)](u, out, u.numel(), BLOCK=1024)
    return out


def neighbours(value: float, steps: int = 8) -> torch.Tensor:
    """``value`` in float32 and its ``steps`` nearest float32 neighbours on each side."""
    centre = torch.tensor(value, dtype=torch.float32)
    up, down = [centre], [centre]
    for _ in range(steps):
        up.append(torch.nextafter(up[-1], torch.tensor(math.inf)))
        down.append(torch.nextafter(down[-1], torch.tensor(-math.inf)))
    return torch.cat([torch.stack(down[:0:-1]), torch.stack(up)])


def grid() -> torch.Tensor:
    near = torch.cat([neighbours(v) for v in (TAN_PI_8, TAN_3PI_8, 1.0)])
    magnitudes = torch.logspace(-30, 30, 241)
    special = torch.tensor([0.0, -0.0, 1e-38, 1e30, 3e38, math.inf])
    positive = torch.cat([near, magnitudes, special, torch.linspace(0, 5, 2001)])
    return torch.cat([torch.linspace(-1e4, 1e4, 20001), positive, -positive])


def test_atan_matches_torch_to_float32_precision_over_the_whole_line(device):
    u = grid().to(device)
    got, expected = kernel_atan(u).cpu(), torch.atan(u.cpu())
    assert got.isfinite().all()
    torch.testing.assert_close(got, expected, rtol=2e-6, atol=0.0)
    assert got[u.cpu() == 0].eq(0).all()
    assert (got.sign() == u.cpu().sign()).all()  # odd, and monotone at the thresholds:
    for value in (TAN_PI_8, TAN_3PI_8):
        side = kernel_atan(neighbours(value).to(device)).cpu()
        assert (side.diff() >= 0).all()


def test_an_unknown_clamp_is_refused_by_the_fused_step(device):
    x = torch.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match="no fused kernel for clamp 'relu'"):
        triton_flows.FusedAffine.apply(x, x, x, "relu", 1.0, False)
