"""The one training loop of every ``innx fit`` command: steps, checkpoints, resume, DDP, a NaN guard.

A fit command describes its model as a :class:`Task` (batches, loss, evaluation) and hands it to
:func:`train`. The loop owns everything else:

- **Deterministic steps.** Step ``s`` trains on ``task.batches(s, ...)``, which must depend only
  on the seed and ``s`` (not on what ran before), so a resumed run sees the same batches.
- **Checkpoints** every ``checkpoint_every`` steps into ``RUN/resume/`` (see
  :mod:`innx.train.checkpoints`): weights, optimiser, schedule, RNG states, step, the unfinished
  metrics window; a kill -9 at any moment leaves the previous checkpoint intact and verifiable,
  and a full disk is a one-line :class:`~innx.writes.WriteError` (``… run again with --resume``)
  that leaves it current too (so does a failed write of ``metrics.jsonl``).
- **Resume** loads the checkpoint, truncates ``metrics.jsonl`` to it, and continues; on the CPU
  it ends at the same weights as an uninterrupted run, bit for bit.
- **Several processes.** Under ``torchrun`` the model is wrapped in DistributedDataParallel
  (gloo on the CPU, NCCL on CUDA); each process trains on its share of every global batch
  (:meth:`~innx.train.distributed.Part.share`), gradients are averaged, and only rank 0 writes.
- **NaN guard.** A non-finite loss stops the run with :class:`~innx.errors.RunError`, keeping the
  last good checkpoint.
- **Best weights.** With ``keep_best`` naming a validation metric, every evaluation that improves
  it copies the weights; the run ends on the best evaluated weights (not the last), and reports
  their step (``best_step``) and validation metrics. The copy travels in every checkpoint, so a
  resumed run ends on the same best weights, bit for bit.
- **Precision.** ``bf16`` runs the task's forward pass under autocast; weights stay float32.
- **CUDA graphs.** ``cuda_graph`` replays the whole step from one graph
  (:mod:`innx.train.graph_step`); one process, CUDA only, and the task's metrics must be tensors.

The run directory's lifecycle is :mod:`innx.train.run_dir`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from innx.device import resolve_device
from innx.errors import ConfigError, RunError
from innx.train.checkpoints import load_checkpoint, writing_fit
from innx.train.distributed import Part, current_part, local_device
from innx.train.graph_step import GraphStep, require_cuda
from innx.train.loop_state import (
    BestWeights,
    MetricsWindow,
    restore_loop_state,
    save_loop_state,
    truncate_metrics,
)
from innx.train.run_dir import METRICS, RESUME_DIR

SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16")

Progress = Callable[[int, int, dict[str, float]], None]
"""``progress(step, total_steps, latest_metrics)``, called after every step (on rank 0)."""

Values = Mapping[str, "float | torch.Tensor"]
"""A step's loss and metrics as the task returned them: scalar tensors (read later) or floats."""

GradientHook = Callable[[int, nn.Module], None]
"""``hook(step, model)``, called when gradients are ready (averaged over processes), before
clipping and the optimiser step: for monitoring and tests."""


class Task(Protocol):
    """What a fit command gives the loop."""

    model: nn.Module

    def warm_start(self) -> None:
        """Data-dependent initialisation (ActNorm), run once in training mode before a fresh run
        starts (not on resume); the same on every process. Tasks without any do nothing."""
        ...

    def batches(self, start: int, stop: int) -> Iterator[Any]:
        """This process's batches of steps ``start … stop-1``, in order; each depends only on the
        seed and its step number."""
        ...

    def loss(
        self, model: nn.Module, batch: Any
    ) -> tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]:
        """The scalar loss of a batch through ``model`` (``self.model`` or its DDP wrapper: use
        the one given), and metrics to log (averaged over processes and the logging window;
        scalar tensors avoid a host sync, and ``cuda_graph`` needs them)."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Validation metrics of ``self.model`` (the loop sets eval mode; rank 0 only)."""
        ...


@dataclass(frozen=True)
class LoopConfig:
    """How to train: steps, Adam, the learning-rate schedule, precision, logging and saving."""

    steps: int
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: int = 0
    grad_clip: float | None = None
    seed: int = 0
    log_every: int = 20
    eval_every: int = 0  # 0: evaluate at the end only
    checkpoint_every: int = 100
    device: str = "cpu"  # where the task put its model ("auto" too): the loop moves nothing
    precision: str = "fp32"
    cuda_graph: bool = False
    keep_best: str | None = None  # a validation metric (``val_nll``): end on its best weights
    best_higher: bool = False  # whether a higher ``keep_best`` is better

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"training needs at least one step, got {self.steps}")
        if not self.lr > 0:
            raise ConfigError(f"the learning rate must be positive, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.eval_every < 0:
            raise ConfigError("checkpoint and log intervals must be positive")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"--grad-clip must be positive, got {self.grad_clip}")
        if self.cuda_graph:
            require_cuda(resolve_device(self.device))

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step``: linear warm-up, then constant or cosine to 0."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class LoopResult:
    """What :func:`train` did: the final metrics and where it started."""

    steps: int
    metrics: dict[str, float]
    resumed_from: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None  # the step whose weights the model ends on (``keep_best``)


def train(
    task: Task,
    config: LoopConfig,
    out: Path,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    on_gradients: GradientHook | None = None,
) -> LoopResult:
    """Train ``task.model`` for ``config.steps`` Adam steps; see the module docstring."""
    part = current_part(config.device)
    module = task.model
    optimizer = torch.optim.Adam(
        module.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
    metrics_path = out / METRICS
    start, window, resumed_from = 0, MetricsWindow(), None
    best = BestWeights(config.keep_best, config.best_higher)
    torch.manual_seed(config.seed)
    module.train()
    if resume:
        state = load_checkpoint(out / RESUME_DIR)
        start, window = restore_loop_state(state, module, optimizer, schedule)
        best.restore(state.get("best"))
        resumed_from = start
        if part.is_main:
            truncate_metrics(metrics_path, start)
    else:
        task.warm_start()
        if part.is_main:
            with writing_fit(out / RESUME_DIR, metrics_path):
                metrics_path.write_text("")
            save_loop_state(out, module, optimizer, schedule, 0, window, best)
    model = _wrap(module, config.device) if part.distributed else module
    history: list[dict[str, float]] = []
    latest: dict[str, float] = {}
    autocast = _autocast(config)
    graph = _graph_step(task, optimizer, config, part, on_gradients, autocast)
    pending: list[tuple[int, Values]] = []  # steps whose metrics are still on the device
    for step, batch in enumerate(task.batches(start, config.steps), start=start):
        if graph is not None:  # the whole step, optimiser included, replayed from the graph
            outputs = graph(batch)  # copied: the next replay overwrites them
            values: Values = {k: v.detach().clone() for k, v in outputs.items()}
        else:
            with autocast():
                loss, info = task.loss(model, batch)
            values = _detached({"loss": loss, **info})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if on_gradients is not None:
                on_gradients(step, module)
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            optimizer.step()
        pending.append((step, values))
        schedule.step()
        done = step + 1
        evaluating = bool(config.eval_every and done % config.eval_every == 0)
        checkpointing = done % config.checkpoint_every == 0
        if done % config.log_every == 0 or done == config.steps or evaluating or checkpointing:
            for pending_step, metrics in _settle(pending, part):  # one host sync for them all
                _check_finite(metrics["loss"], pending_step, config, out)
                window.add(metrics)
            pending = []
        if done % config.log_every == 0 or done == config.steps:
            latest = {**window.mean(), "lr": float(optimizer.param_groups[0]["lr"])}
            _append(metrics_path, {"step": done, **latest}, history, part)
            window = MetricsWindow()
        if part.is_main:
            if evaluating or done == config.steps:
                validation = _evaluate(task)
                latest = {**latest, **validation}
                _append(metrics_path, {"step": done, **validation}, history, part)
                best.offer(done, validation, module)
            if checkpointing and done < config.steps:
                save_loop_state(out, module, optimizer, schedule, done, window, best)
            if progress is not None:
                progress(done, config.steps, latest)
    module.eval()
    if part.is_main and best.step is not None:  # only rank 0 evaluates, and only it saves
        latest = {**latest, **best.end_on_best(module), "best_step": float(best.step)}
    if part.distributed:  # validation ran on rank 0; every process returns its metrics
        box = [latest]
        torch.distributed.broadcast_object_list(box, src=0)
        latest = box[0]
    best_step = int(latest["best_step"]) if "best_step" in latest else None
    return LoopResult(config.steps, latest, resumed_from, history, best_step)


def _check_finite(loss: float, step: int, config: LoopConfig, out: Path) -> None:
    if not math.isfinite(loss):
        raise RunError(_non_finite(loss, step, config, out))


def _non_finite(loss: float, step: int, config: LoopConfig, out: Path) -> str:
    if step == 0:  # before any update, the data (or the initialisation) is to blame, not --lr
        return (
            f"the loss became {loss} at step 0, before any update: the training data probably "
            "holds NaN or infinite values; check and rebuild it"
        )
    return (
        f"the loss became {loss} at step {step}; training stopped. The last good checkpoint is "
        f"kept in {out / RESUME_DIR}: lower --lr (now {config.lr}) and run again, or --resume "
        "to retry from it"
    )


def _wrap(module: nn.Module, device: str) -> nn.Module:
    """``module`` in DistributedDataParallel (its gradient hooks average over processes)."""
    from torch.nn.parallel import DistributedDataParallel

    target = local_device(device)
    return DistributedDataParallel(module, device_ids=[target] if target.type == "cuda" else None)


def _autocast(config: LoopConfig) -> Callable[[], Any]:
    if config.precision == "fp32":
        return nullcontext
    device_type = resolve_device(config.device).type
    cache = not config.cuda_graph  # capture forbids autocast's cache of cast weights
    return lambda: torch.autocast(
        device_type=device_type, dtype=torch.bfloat16, cache_enabled=cache
    )


def _graph_step(
    task: Task,
    optimizer: torch.optim.Optimizer,
    config: LoopConfig,
    part: Part,
    on_gradients: GradientHook | None,
    autocast: Callable[[], Any],
) -> GraphStep | None:
    if not config.cuda_graph:
        return None
    if part.distributed:
        raise ConfigError("--cuda-graph runs in one process; drop it under torchrun")
    if on_gradients is not None:
        raise ConfigError("a gradient hook needs eager steps; drop --cuda-graph")
    return GraphStep(
        task.loss, task.model, optimizer, grad_clip=config.grad_clip, autocast=autocast,
        device=local_device(config.device),
    )  # fmt: skip


def _detached(values: Values) -> Values:
    """``values`` to hold until they are read, without keeping the autograd graph alive."""
    return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}


def _settle(pending: list[tuple[int, Values]], part: Part) -> list[tuple[int, dict[str, float]]]:
    """The pending steps' loss and metrics as floats, averaged over processes.

    Reading a GPU tensor waits for the GPU, so the steps' values stay on the device until a log
    line, evaluation or checkpoint needs them, and are then read in one copy (one all-reduce
    under torchrun, so that every process sees the same loss and the NaN guard stops them
    together). A non-finite loss is still reported at its own step, and before any checkpoint.
    """
    if not pending:
        return []
    tensors = [v for _, values in pending for v in values.values() if isinstance(v, torch.Tensor)]
    read = iter(torch.stack([v.float() for v in tensors]).tolist() if tensors else [])
    rows = [
        [next(read) if isinstance(v, torch.Tensor) else float(v) for v in values.values()]
        for _, values in pending
    ]
    if part.distributed:
        loss = pending[0][1]["loss"]
        device = loss.device if isinstance(loss, torch.Tensor) else torch.device("cpu")
        stacked = torch.tensor(rows, dtype=torch.float32, device=device)
        torch.distributed.all_reduce(stacked)
        rows = (stacked / part.world).tolist()
    return [
        (step, dict(zip(values, row, strict=True)))
        for (step, values), row in zip(pending, rows, strict=True)
    ]


def _evaluate(task: Task) -> dict[str, float]:
    task.model.eval()
    try:
        with torch.no_grad():
            return {f"val_{k}": float(v) for k, v in task.evaluate().items()}
    finally:
        task.model.train()


def _append(
    path: Path, record: dict[str, float], history: list[dict[str, float]], part: Part
) -> None:
    history.append(record)
    if part.is_main:
        with writing_fit(path.parent / RESUME_DIR, path), open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
