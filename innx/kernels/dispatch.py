"""Which implementation of the flows' elementwise work runs: plain torch or the fused kernels.

``auto`` (the default) takes the Triton kernels for CUDA tensors when Triton works, and torch
otherwise (on the CPU the kernels only run interpreted, which is slow). ``triton`` insists on the
kernels: on a CUDA device, or on the CPU under ``TRITON_INTERPRET=1`` (how the tests check them
without a GPU); elsewhere it is a one-line error. ``torch`` always takes the reference. The
kernels implement both clamps, ``tanh`` and ``atan``; float64 tensors always take torch.

>>> import torch
>>> with use_kernels("torch"):
...     y, logdet = affine_forward(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3))
>>> y.tolist(), logdet.tolist()
([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [0.0, 0.0])
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from types import ModuleType

import torch
from torch import Tensor

from innx.errors import ConfigError
from innx.kernels import reference
from innx.kernels.reference import Clamp

KERNELS = ("auto", "torch", "triton")
FUSED_CLAMPS = ("tanh", "atan")  # the clamps the fused affine kernels implement
_chosen = "auto"


def set_kernels(name: str) -> None:
    """Choose ``auto``, ``torch`` or ``triton`` for every flow in this process."""
    global _chosen
    if name not in KERNELS:
        raise ConfigError(f"--kernels must be one of {', '.join(KERNELS)}, got {name!r}")
    _chosen = name


@contextlib.contextmanager
def use_kernels(name: str) -> Iterator[None]:
    """:func:`set_kernels` for the duration of a ``with`` block."""
    before = _chosen
    set_kernels(name)
    try:
        yield
    finally:
        set_kernels(before)


def check_choice(name: str, device: torch.device) -> None:
    """Refuse, before any work is done, a choice that cannot run on ``device`` (one line)."""
    with use_kernels(name):
        backend(device)


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


def backend(device: torch.device, clamp: Clamp = "tanh", dtype: torch.dtype = torch.float32) -> str:
    """``torch`` or ``triton``: what runs for tensors on ``device`` under the current choice.

    The kernels compute in float32, so float64 (the math tests' precision) always takes torch, as
    does a clamp without a kernel (none today: both ``tanh`` and ``atan`` have one).
    """
    if _chosen == "torch" or clamp not in FUSED_CLAMPS or dtype == torch.float64:
        return "torch"
    if _chosen == "auto":
        return "triton" if device.type == "cuda" and _triton() is not None else "torch"
    usable = device.type == "cuda" or (device.type == "cpu" and interpreted())
    if not usable or _triton() is None:
        raise ConfigError(
            f"--kernels triton needs a CUDA device with Triton installed (tensors are on "
            f"{device.type}); use --kernels auto or torch"
        )
    return "triton"


def affine_forward(
    x: Tensor, raw: Tensor, shift: Tensor, clamp: Clamp = "tanh", bound: float = 1.0
) -> tuple[Tensor, Tensor]:
    """A coupling's affine step, ``y = x · exp(s) + shift`` and ``Σ s`` (see the reference)."""
    if backend(x.device, clamp, x.dtype) == "triton":
        return _triton().FusedAffine.apply(x, raw, shift, clamp, bound, False)  # type: ignore[union-attr, no-any-return]
    return reference.affine_forward(x, raw, shift, clamp, bound)


def affine_inverse(
    y: Tensor, raw: Tensor, shift: Tensor, clamp: Clamp = "tanh", bound: float = 1.0
) -> tuple[Tensor, Tensor]:
    """The inverse step, ``x = (y − shift) · exp(−s)`` and ``−Σ s``."""
    if backend(y.device, clamp, y.dtype) == "triton":
        return _triton().FusedAffine.apply(y, raw, shift, clamp, bound, True)  # type: ignore[union-attr, no-any-return]
    return reference.affine_inverse(y, raw, shift, clamp, bound)


def actnorm_forward(x: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """``(x + loc) · exp(log_scale)``."""
    if backend(x.device, dtype=x.dtype) == "triton":
        return _triton().FusedActNorm.apply(x, loc, log_scale, False)  # type: ignore[union-attr, no-any-return]
    return reference.actnorm_forward(x, loc, log_scale)


def actnorm_inverse(y: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """``y · exp(−log_scale) − loc``."""
    if backend(y.device, dtype=y.dtype) == "triton":
        return _triton().FusedActNorm.apply(y, loc, log_scale, True)  # type: ignore[union-attr, no-any-return]
    return reference.actnorm_inverse(y, loc, log_scale)
