"""Which implementation of the flows' elementwise work runs: plain torch or the fused kernels.

``auto`` (the default) takes the Triton kernels for CUDA tensors when Triton works, and torch
otherwise (on the CPU the kernels only run interpreted, which is slow). ``triton`` insists on the
kernels: on a CUDA device, or on the CPU under ``TRITON_INTERPRET=1`` (how the tests check them
without a GPU); elsewhere it is a one-line error. ``torch`` always takes the reference. The
kernels implement both clamps, ``tanh`` and ``atan``; float64 tensors always take torch.

The choice is an argument of every call, not process-wide state: each flow block holds its
model's choice (:func:`innx.flows.use_kernels`), which the model's config records.

>>> import torch
>>> y, logdet = affine_forward(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3), kernels="torch")
>>> y.tolist(), logdet.tolist()
([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [0.0, 0.0])
"""

from __future__ import annotations

import functools
import os
from types import ModuleType

import torch
from torch import Tensor

from innx.errors import ConfigError
from innx.kernels import reference
from innx.kernels.reference import Clamp

KERNELS = ("auto", "torch", "triton")
FUSED_CLAMPS = ("tanh", "atan")  # the clamps the fused affine kernels implement


def check_kernels(name: str) -> str:
    """``name`` when it is ``auto``, ``torch`` or ``triton``; else a one-line ``ConfigError``."""
    if name not in KERNELS:
        raise ConfigError(f"--kernels must be one of {', '.join(KERNELS)}, got {name!r}")
    return name


def check_choice(name: str, device: torch.device) -> None:
    """Refuse, before any work is done, a choice that cannot run on ``device`` (one line)."""
    backend(device, kernels=check_kernels(name))


def interpreted() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.cache
def _triton() -> ModuleType | None:
    """The kernels module, or ``None`` when Triton cannot be imported."""
    try:
        from innx.kernels import triton_flows
    except Exception:  # any failure to import or compile means: no kernels
        return None
    return triton_flows


def backend(
    device: torch.device,
    clamp: Clamp = "tanh",
    dtype: torch.dtype = torch.float32,
    kernels: str = "auto",
) -> str:
    """``torch`` or ``triton``: what runs for tensors on ``device`` under the choice ``kernels``.

    The kernels compute in float32, so float64 (the math tests' precision) always takes torch, as
    does a clamp without a kernel (none today: both ``tanh`` and ``atan`` have one).
    """
    if kernels == "torch" or clamp not in FUSED_CLAMPS or dtype == torch.float64:
        return "torch"
    if kernels == "auto":
        return "triton" if device.type == "cuda" and _triton() is not None else "torch"
    usable = device.type == "cuda" or (device.type == "cpu" and interpreted())
    if not usable or _triton() is None:
        raise ConfigError(
            f"--kernels triton needs a CUDA device with Triton installed (tensors are on "
            f"{device.type}); use --kernels auto or torch"
        )
    return "triton"


def affine_forward(
    x: Tensor,
    raw: Tensor,
    shift: Tensor,
    clamp: Clamp = "tanh",
    bound: float = 1.0,
    kernels: str = "auto",
) -> tuple[Tensor, Tensor]:
    """A coupling's affine step, ``y = x · exp(s) + shift`` and ``Σ s`` (see the reference)."""
    if backend(x.device, clamp, x.dtype, kernels) == "triton":
        return _triton().FusedAffine.apply(x, raw, shift, clamp, bound, False)  # type: ignore[union-attr, no-any-return]
    return reference.affine_forward(x, raw, shift, clamp, bound)


def affine_inverse(
    y: Tensor,
    raw: Tensor,
    shift: Tensor,
    clamp: Clamp = "tanh",
    bound: float = 1.0,
    kernels: str = "auto",
) -> tuple[Tensor, Tensor]:
    """The inverse step, ``x = (y − shift) · exp(−s)`` and ``−Σ s``."""
    if backend(y.device, clamp, y.dtype, kernels) == "triton":
        return _triton().FusedAffine.apply(y, raw, shift, clamp, bound, True)  # type: ignore[union-attr, no-any-return]
    return reference.affine_inverse(y, raw, shift, clamp, bound)


def actnorm_forward(x: Tensor, loc: Tensor, log_scale: Tensor, kernels: str = "auto") -> Tensor:
    """``(x + loc) · exp(log_scale)``."""
    if backend(x.device, dtype=x.dtype, kernels=kernels) == "triton":
        return _triton().FusedActNorm.apply(x, loc, log_scale, False)  # type: ignore[union-attr, no-any-return]
    return reference.actnorm_forward(x, loc, log_scale)


def actnorm_inverse(y: Tensor, loc: Tensor, log_scale: Tensor, kernels: str = "auto") -> Tensor:
    """``y · exp(−log_scale) − loc``."""
    if backend(y.device, dtype=y.dtype, kernels=kernels) == "triton":
        return _triton().FusedActNorm.apply(y, loc, log_scale, True)  # type: ignore[union-attr, no-any-return]
    return reference.actnorm_inverse(y, loc, log_scale)
