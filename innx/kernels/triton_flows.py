"""Fused Triton kernels for the flows' elementwise work, each with its backward.

One kernel does a coupling's whole affine step (bound the raw scale with tanh or atan,
exponentiate, apply the affine map or its inverse, sum the log-det per row in float32); another does
ActNorm. Eager torch launches five to eight kernels for the same work. Each kernel has a
``torch.autograd.Function`` whose backward is a second fused kernel that recomputes ``s`` and
``exp(s)`` instead of saving them. Values and gradients match :mod:`innx.kernels.reference`.

Import this module only through :mod:`innx.kernels.dispatch`: Triton decides at decoration time
whether to compile for the GPU or to interpret on the CPU (``TRITON_INTERPRET=1``, how the tests
run it without a GPU).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK_N = 16  # rows per program
BLOCK_D = 64  # columns per tile; a program walks the row's tiles, so any width works
CLAMPS = {"tanh": 0, "atan": 1}  # the kernels' CLAMP constexpr for each clamp they implement


@triton.jit
def _tanh(u):  # type: ignore[no-untyped-def]
    # exact in float32: exp overflows to inf for large u, giving 1, and underflows to 0, giving -1
    return 1.0 - 2.0 / (tl.exp(2.0 * u) + 1.0)


@triton.jit
def _atan(u):  # type: ignore[no-untyped-def]
    # Cephes' atanf from elementary ops (no libdevice, so the interpreter runs it too), branch-free:
    # reduce |u| to [-tan(π/8), tan(π/8)] by atan(a) = π/2 - atan(1/a) above tan(3π/8) and
    # π/4 + atan((a-1)/(a+1)) above tan(π/8), then an odd minimax polynomial; about 1 ulp.
    # Each division's operands are kept finite, its denominator non-zero, where it is not taken.
    a = tl.abs(u)
    big = a > 2.414213562373095  # tan(3π/8)
    mid = a > 0.4142135623730950  # tan(π/8)
    inner = tl.where(big, 0.0, a)  # at most tan(3π/8) (inf and huge values would give inf/inf)
    r = tl.where(big, -1.0 / tl.where(big, a, 1.0), tl.where(mid, (inner - 1.0) / (inner + 1.0), a))
    base = tl.where(big, 1.5707963267948966, tl.where(mid, 0.7853981633974483, 0.0))
    z = r * r
    p = ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1
    result = base + (p * z * r + r)
    return tl.where(u < 0, -result, result)


@triton.jit
def _bounded(raw, bound, CLAMP: tl.constexpr):  # type: ignore[no-untyped-def]
    # s = bound · tanh(raw / bound) or bound · (2/π) · atan(raw / bound), and ds/draw
    v = raw / bound
    if CLAMP == 0:
        squashed = _tanh(v)
        return bound * squashed, 1.0 - squashed * squashed
    else:
        return bound * 0.6366197723675814 * _atan(v), 0.6366197723675814 / (1.0 + v * v)


@triton.jit
def _affine_kernel(  # type: ignore[no-untyped-def]
    x_ptr, raw_ptr, shift_ptr, out_ptr, logdet_ptr,
    n, d, stride_x, stride_raw, stride_shift, stride_out, bound,
    INVERSE: tl.constexpr, CLAMP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n
    total = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for start in range(0, d, BLOCK_D):
        cols = start + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols[None, :] < d)
        x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0)
        raw = tl.load(raw_ptr + rows[:, None] * stride_raw + cols[None, :], mask=mask, other=0.0)
        t = tl.load(shift_ptr + rows[:, None] * stride_shift + cols[None, :], mask=mask, other=0.0)
        s, _ = _bounded(raw.to(tl.float32), bound, CLAMP)
        if INVERSE:
            out = (x.to(tl.float32) - t.to(tl.float32)) * tl.exp(-s)
        else:
            out = x.to(tl.float32) * tl.exp(s) + t.to(tl.float32)
        tl.store(out_ptr + rows[:, None] * stride_out + cols[None, :], out, mask=mask)
        total += tl.sum(tl.where(mask, s, 0.0), axis=1)
    if INVERSE:
        total = -total
    tl.store(logdet_ptr + rows, total, mask=row_ok)


@triton.jit
def _affine_backward_kernel(  # type: ignore[no-untyped-def]
    x_ptr, raw_ptr, shift_ptr, grad_out_ptr, grad_logdet_ptr,
    grad_x_ptr, grad_raw_ptr, grad_shift_ptr,
    n, d, stride_x, stride_raw, stride_shift, stride_g, bound,
    INVERSE: tl.constexpr, CLAMP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    # Gradients are written contiguous (row stride d). Forward: y = x e^s + t, logdet = Σ s, so
    # dx = g e^s, dt = g, ds = g x e^s + gl. Inverse: x' = (y - t) e^-s, logdet = -Σ s, so
    # dy = g e^-s, dt = -g e^-s, ds = -g x' - gl. Then draw = ds · ds/draw, with ds/draw
    # 1 - tanh²(raw / bound) for tanh and (2/π) / (1 + (raw / bound)²) for atan.
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n
    gl = tl.load(grad_logdet_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
    for start in range(0, d, BLOCK_D):
        cols = start + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols[None, :] < d)
        x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0)
        raw = tl.load(raw_ptr + rows[:, None] * stride_raw + cols[None, :], mask=mask, other=0.0)
        t = tl.load(shift_ptr + rows[:, None] * stride_shift + cols[None, :], mask=mask, other=0.0)
        g = tl.load(grad_out_ptr + rows[:, None] * stride_g + cols[None, :], mask=mask, other=0.0)
        x, t, g = x.to(tl.float32), t.to(tl.float32), g.to(tl.float32)
        s, slope = _bounded(raw.to(tl.float32), bound, CLAMP)
        if INVERSE:
            scale = tl.exp(-s)
            grad_x = g * scale
            grad_t = -grad_x
            grad_s = -g * (x - t) * scale - gl[:, None]
        else:
            scale = tl.exp(s)
            grad_x = g * scale
            grad_t = g
            grad_s = g * x * scale + gl[:, None]
        grad_raw = grad_s * slope
        at = rows[:, None] * d + cols[None, :]
        tl.store(grad_x_ptr + at, grad_x, mask=mask)
        tl.store(grad_raw_ptr + at, grad_raw, mask=mask)
        tl.store(grad_shift_ptr + at, grad_t, mask=mask)


@triton.jit
def _actnorm_kernel(  # type: ignore[no-untyped-def]
    x_ptr, loc_ptr, log_scale_ptr, out_ptr, n, d, stride_x, stride_out,
    INVERSE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    for start in range(0, d, BLOCK_D):
        cols = start + tl.arange(0, BLOCK_D)
        col_ok = cols < d
        mask = (rows[:, None] < n) & col_ok[None, :]
        x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0)
        loc = tl.load(loc_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        log_scale = tl.load(log_scale_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        if INVERSE:
            out = x.to(tl.float32) * tl.exp(-log_scale)[None, :] - loc[None, :]
        else:
            out = (x.to(tl.float32) + loc[None, :]) * tl.exp(log_scale)[None, :]
        tl.store(out_ptr + rows[:, None] * stride_out + cols[None, :], out, mask=mask)


def _rows(t: Tensor) -> Tensor:
    """``t`` with unit column stride (a chunk of a wider tensor keeps it; a transpose does not)."""
    return t if t.stride(1) == 1 else t.contiguous()


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK_N),)


class FusedAffine(torch.autograd.Function):
    """``(out, logdet) = affine step of (x, raw, shift)`` with ``s = bound_scale(raw, clamp,
    bound)`` (``tanh`` or ``atan``, see the reference); ``inverse`` selects the direction."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, raw: Tensor, shift: Tensor, clamp: str, bound: float, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        if clamp not in CLAMPS:
            raise ValueError(f"no fused kernel for clamp {clamp!r}; have {', '.join(CLAMPS)}")
        x, raw, shift = _rows(x), _rows(raw), _rows(shift)
        n, d = x.shape
        out = torch.empty((n, d), dtype=x.dtype, device=x.device)
        logdet = torch.empty(n, dtype=torch.float32, device=x.device)
        _affine_kernel[_grid(n)](
            x, raw, shift, out, logdet, n, d,
            x.stride(0), raw.stride(0), shift.stride(0), out.stride(0), float(bound),
            INVERSE=inverse, CLAMP=CLAMPS[clamp], BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
        )  # fmt: skip
        ctx.save_for_backward(x, raw, shift)  # the backward recomputes s and exp(s) from these
        ctx.clamp, ctx.bound, ctx.inverse = clamp, bound, inverse
        return out, logdet.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor, grad_logdet: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, raw, shift = ctx.saved_tensors
        n, d = x.shape
        grad_out = _rows(grad_out)
        grads = [torch.empty((n, d), dtype=torch.float32, device=x.device) for _ in range(3)]
        _affine_backward_kernel[_grid(n)](
            x, raw, shift, grad_out, grad_logdet.float().contiguous(), *grads,
            n, d, x.stride(0), raw.stride(0), shift.stride(0), grad_out.stride(0),
            float(ctx.bound), INVERSE=ctx.inverse, CLAMP=CLAMPS[ctx.clamp],
            BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
        )  # fmt: skip
        grad_x, grad_raw, grad_shift = (g.to(x.dtype) for g in grads)
        return grad_x, grad_raw, grad_shift, None, None, None


class FusedActNorm(torch.autograd.Function):
    """``(x + loc) · exp(log_scale)`` or its inverse, fused; parameter gradients are column sums."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, loc: Tensor, log_scale: Tensor, inverse: bool
    ) -> Tensor:
        x = _rows(x)
        n, d = x.shape
        out = torch.empty((n, d), dtype=x.dtype, device=x.device)
        _actnorm_kernel[_grid(n)](
            x, loc.contiguous(), log_scale.contiguous(), out, n, d, x.stride(0), out.stride(0),
            INVERSE=inverse, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
        )  # fmt: skip
        ctx.save_for_backward(out, loc, log_scale)
        ctx.inverse = inverse
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        out, loc, log_scale = ctx.saved_tensors
        if ctx.inverse:  # x = y e^-ls - loc: dy = g e^-ls, dloc = -Σ g, dls = -Σ g (x + loc)
            grad_in = grad_out * torch.exp(-log_scale)
            return grad_in, -grad_out.sum(0), -(grad_out * (out + loc)).sum(0), None
        # y = (x + loc) e^ls: dx = g e^ls, dloc = Σ g e^ls, dls = Σ g y
        grad_in = grad_out * torch.exp(log_scale)
        return grad_in, grad_in.sum(0), (grad_out * out).sum(0), None
