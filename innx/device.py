"""``--device``: the torch device a command runs on, resolved in one place.

``auto``, the default of every command, is CUDA when ``torch.cuda.is_available()`` and the CPU
otherwise; ``cpu``, ``cuda`` and ``cuda:N`` are taken as given. A CUDA device this torch cannot
reach, or a name that is not a device, is a one-line :class:`~innx.errors.ConfigError`. A GPU
is always resolved to an indexed device: ``LOCAL_RANK``'s under ``torchrun`` (each process its
own GPU), else the current one, so that what a run records says which GPU ran it (``cuda:0``,
never ``auto`` or a bare ``cuda``).

>>> resolve_device("cpu")
device(type='cpu')
>>> resolve_device("auto").type in ("cpu", "cuda")
True
"""

from __future__ import annotations

import os

import torch

from innx.errors import ConfigError

AUTO = "auto"
"""The default of every ``--device``: CUDA when there is one, else the CPU."""
DEVICE_FORM = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device = AUTO) -> torch.device:
    """The device that ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, a ``torch.device``)
    names on this machine, in this process; see the module docstring."""
    if isinstance(device, str) and device == AUTO:
        return _cuda(None) if torch.cuda.is_available() else torch.device("cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {device!r} is not a torch device; use {DEVICE_FORM}") from None
    if target.type != "cuda":
        return target
    if not torch.cuda.is_available():
        why = (
            f"this torch ({torch.__version__}) is a CPU-only build"
            if torch.version.cuda is None
            else "torch sees no CUDA device here"
        )
        raise ConfigError(f"--device {device} needs CUDA, but {why}; use --device auto or cpu")
    return _cuda(target.index)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``. A CPU tensor bound for a GPU is copied through pinned memory without
    blocking: a copy from ordinary memory would wait for all the work queued on the GPU, which
    is a host sync on every training step."""
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def device_line(device: torch.device) -> str:
    """What a command says once, on stderr, before its work: ``innx: using device cpu``."""
    return f"innx: using device {device}"


def _cuda(index: int | None) -> torch.device:
    """``cuda:index``; without an index ``LOCAL_RANK``'s GPU under ``torchrun``, else the current
    one. An index past the GPUs there are is refused."""
    count = torch.cuda.device_count()
    if index is None:
        local = os.environ.get("LOCAL_RANK")
        index = int(local) if local is not None else torch.cuda.current_device()
    if not 0 <= index < count:
        gpus = ", ".join(f"cuda:{i}" for i in range(count))
        raise ConfigError(
            f"--device cuda:{index} is not a GPU here: torch sees {count} ({gpus}); "
            "choose one of them, or --device auto"
        )
    return torch.device("cuda", index)
