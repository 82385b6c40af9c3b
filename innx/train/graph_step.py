"""The whole training step as one CUDA graph: forward, loss, backward, clipping and Adam, replayed
with a single launch (``--cuda-graph``).

Why: a flow's eager step is hundreds of small kernels, so at small batches the GPU waits on the
CPU launching them. A graph replays them all from one launch.

How, in the order the loop sees it:

- The first :data:`WARMUP_STEPS` steps run eagerly on a side stream (capture needs warmed-up
  cuBLAS and autograd state, and Adam creates its moments on its first step). They are real
  training steps, so a captured run takes exactly as many steps as an eager one.
- The next step whose batch has the shapes of the one before copies it into static input
  tensors, captures the step, then replays it.
  From then on every batch of the captured shapes is copied in and the graph replayed.
- A batch of other shapes (a last, partial batch) runs eagerly, on the same parameters,
  gradients and optimiser state, so nothing is recaptured.
- Adam runs ``capturable``: its step count and learning rate live on the GPU, and the schedule
  updates the rate in place, which the graph reads at every replay.
- Autocast runs with its weight cache off, as capture requires; the flows skip the checks that
  read a tensor's value while capturing (:func:`innx.flows.base.capturing`).

Difference from eager steps: the NaN guard reads the loss after the replay, so a non-finite loss
has already updated the in-memory weights when the run stops; the last checkpoint is intact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from innx.errors import ConfigError

WARMUP_STEPS = 3

LossFn = Callable[[nn.Module, Any], tuple[Tensor, Mapping[str, Any]]]


class GraphStep:
    """``step(batch)`` runs one whole training step and returns the step's loss and metrics as
    tensors on the device (read them after the call; the next call overwrites them)."""

    def __init__(
        self,
        loss: LossFn,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        grad_clip: float | None,
        autocast: Callable[[], AbstractContextManager[Any]],
        device: torch.device,
        warmup: int = WARMUP_STEPS,
    ) -> None:
        require_cuda(device)
        self.loss, self.module, self.optimizer = loss, module, optimizer
        self.grad_clip, self.autocast = grad_clip, autocast
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self.warmup_left = warmup
        self.side = torch.cuda.Stream(device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.replays = 0  # steps taken from the graph after the one that captured it
        self.static_batch: tuple[Tensor, ...] = ()
        self.last: tuple[Tensor, ...] = ()  # the previous eager step's batch, for its shapes
        self.static_values: dict[str, Tensor] = {}
        make_capturable(optimizer, device)

    def __call__(self, batch: Sequence[Tensor]) -> dict[str, Tensor]:
        batch = tuple(batch)
        if self.graph is not None and _same_shapes(batch, self.static_batch):
            for static, new in zip(self.static_batch, batch, strict=True):
                static.copy_(new, non_blocking=True)
            self.graph.replay()
            self.replays += 1
            return self.static_values
        if self.graph is not None or self.warmup_left > 0 or not _same_shapes(batch, self.last):
            # warm-up; or a batch unlike the one before (a partial batch is not worth capturing)
            self.warmup_left -= 1
            self.last = batch
            return self._eager(batch)
        return self._capture(batch)

    def _eager(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """One step without the graph, on a side stream (capture needs warm-up there), into the
        gradient tensors the graph owns once it exists."""
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            self.optimizer.zero_grad(set_to_none=self.graph is None)
            values = self._step(batch)
        torch.cuda.current_stream().wait_stream(self.side)
        return values

    def _capture(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        self.static_batch = tuple(t.clone() for t in batch)
        torch.cuda.synchronize()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates them in the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_values = self._step(self.static_batch)
        self.graph = graph
        graph.replay()  # capture records the work without running it
        return self.static_values

    def _step(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        with self.autocast():
            loss, info = self.loss(self.module, batch)
        values = {"loss": loss.detach(), **info}
        for name, value in values.items():
            if not isinstance(value, Tensor):
                raise ConfigError(
                    f"--cuda-graph needs every logged metric as a tensor, but {name!r} is a "
                    f"{type(value).__name__}; drop --cuda-graph"
                )
        loss.backward()  # type: ignore[no-untyped-call]
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters, self.grad_clip, foreach=True)
        self.optimizer.step()
        return values


def require_cuda(device: torch.device) -> None:
    """Refuse ``--cuda-graph`` off CUDA, in one line."""
    if device.type != "cuda":
        raise ConfigError(f"--cuda-graph needs a CUDA device, not {device.type}; drop it")


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Switch Adam (possibly just restored from an eager run's checkpoint) to capturable: the
    learning rate a tensor on ``device`` (the schedule fills it in place) and the step counts
    there too."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        group["foreach"] = True
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
    for state in optimizer.state.values():
        if "step" in state:
            state["step"] = torch.as_tensor(state["step"], dtype=torch.float32).to(device)


def portable_state(optimizer_state: dict[str, Any]) -> dict[str, Any]:
    """An optimiser's ``state_dict()`` as an eager run's: learning rates as floats, not
    capturable, so that a checkpoint resumes with or without ``--cuda-graph``, on any device
    (:func:`make_capturable` turns it back when the resumed run captures)."""
    groups = [
        {**group, "lr": float(group["lr"]), "capturable": False} if "capturable" in group
        else {**group, "lr": float(group["lr"])}
        for group in optimizer_state["param_groups"]
    ]  # fmt: skip
    return {**optimizer_state, "param_groups": groups}


def _same_shapes(batch: tuple[Tensor, ...], static: tuple[Tensor, ...]) -> bool:
    return len(batch) == len(static) and all(
        a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
        for a, b in zip(batch, static, strict=True)
    )
