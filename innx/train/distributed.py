"""Which share of the work this process does: one process, or one rank under ``torchrun``.

Commands never start processes themselves: ``torchrun --nproc-per-node K innx fit …`` starts
``K`` copies, and each asks :func:`current_part` for its rank. The process group is started on
first use (gloo on the CPU, NCCL when training on CUDA).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from innx.device import resolve_device
from innx.errors import ConfigError


@dataclass(frozen=True)
class Part:
    """Process ``rank`` of ``world``; ``Part()`` is a single process.

    >>> Part(1, 2).share(8)
    slice(4, 8, None)
    """

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, batch_size: int) -> slice:
        """This process's contiguous slice of a global batch of ``batch_size`` rows."""
        if batch_size % self.world:
            raise ConfigError(
                f"--batch-size {batch_size} does not split evenly over {self.world} processes; "
                f"choose a multiple of {self.world}"
            )
        size = batch_size // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.distributed:
            torch.distributed.barrier()


SINGLE = Part()
"""The part of a process that works alone."""


def current_part(device: str | torch.device = "cpu") -> Part:
    """This process's part: ``Part()`` alone, the rank under ``torchrun`` (``WORLD_SIZE`` > 1).

    Starts the process group when needed: NCCL when ``device`` resolves to CUDA (``auto`` on a
    GPU, :func:`innx.device.resolve_device`), gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Part()
    if not torch.distributed.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
    return Part(torch.distributed.get_rank(), torch.distributed.get_world_size())


def local_device(device: str | torch.device) -> torch.device:
    """The device this process trains on (:func:`innx.device.resolve_device`), made the current
    CUDA device when it is one: ``cuda`` and ``auto`` on a GPU mean ``cuda:LOCAL_RANK`` under
    ``torchrun``."""
    target = resolve_device(device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    return target


def agree(part: Part, value: bool) -> bool:
    """Rank 0's ``value`` on every process (a decision only the main process can make)."""
    if not part.distributed:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return bool(box[0])
