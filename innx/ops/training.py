"""The one training loop of every ``innx fit`` command: steps, checkpoints, resume, a NaN guard.

A fit command describes its model as a :class:`Task` (batches, loss, evaluation) and hands it to
:func:`train`. The loop owns everything else:

- **Deterministic steps.** Step ``s`` trains on ``task.batches(s, ...)``, which must depend only
  on the seed and ``s`` (not on what ran before), so a resumed run sees the same batches.
- **Checkpoints** every ``checkpoint_every`` steps into ``RUN/resume/checkpoint.pt``: weights,
  optimiser, schedule, RNG state, step, the unfinished metrics window. Written to a temporary file
  and renamed, so a kill -9 at any moment leaves the previous checkpoint intact. The file holds
  tensors and plain containers only and is read with ``weights_only=True``.
- **Resume** loads the checkpoint, truncates ``metrics.jsonl`` to it, and continues; on the CPU
  it ends at the same weights as an uninterrupted run, bit for bit.
- **NaN guard.** A non-finite loss stops the run with :class:`~innx.errors.RunError`, keeping the
  last good checkpoint.

The run directory's lifecycle (refuse to clobber, resume, finish) is :func:`prepare_run_dir`
before and :func:`finish_run_dir` after.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from innx.errors import ConfigError, RunError, first_line
from innx.store.runs import MANIFEST

RESUME_DIR = "resume"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SCHEDULES = ("constant", "cosine")

Progress = Callable[[int, int, dict[str, float]], None]
"""``progress(step, total_steps, latest_metrics)``, called after every step."""


class Task(Protocol):
    """What a fit command gives the loop."""

    model: nn.Module

    def batches(self, start: int, stop: int) -> Iterator[Any]:
        """The batches of steps ``start … stop-1``, in order; each depends only on the seed and
        its step number."""
        ...

    def loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar loss of a batch, and metrics to log (averaged over the logging window)."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Validation metrics of the current model (the loop sets eval mode around the call)."""
        ...


@dataclass(frozen=True)
class LoopConfig:
    """How to train: steps, Adam, the learning-rate schedule, and how often to log and save."""

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

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"training needs at least one step, got {self.steps}")
        if not self.lr > 0:
            raise ConfigError(f"the learning rate must be positive, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.eval_every < 0:
            raise ConfigError("checkpoint and log intervals must be positive")

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


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> bool:
    """Make ``out`` ready for a fit; return whether training resumes from a checkpoint.

    A finished run (``manifest.json``) or an unfinished one (``resume/``) is never clobbered
    silently: ``overwrite`` starts over, ``resume`` continues an unfinished run.
    """
    if resume and overwrite:
        raise ConfigError("pass either --resume or --overwrite, not both")
    checkpoint = out / RESUME_DIR / CHECKPOINT
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; choose another -o")
    if overwrite and out.exists():
        shutil.rmtree(out)
    if resume:
        if checkpoint.is_file():
            return True
        if (out / MANIFEST).is_file():
            raise ConfigError(f"{out} is already a finished run; nothing to resume (--overwrite)")
        raise ConfigError(
            f"{out} has no checkpoint to resume from ({checkpoint} is missing); run without --resume"
        )
    if out.is_dir() and [p.name for p in out.iterdir()] == [RESUME_DIR] and not checkpoint.exists():
        shutil.rmtree(out / RESUME_DIR)  # a fit that failed before its first checkpoint
    if out.is_dir() and any(out.iterdir()):
        if (out / MANIFEST).is_file():
            raise ConfigError(f"{out} already holds a finished run; pass --overwrite to replace it")
        if checkpoint.is_file():
            raise ConfigError(
                f"{out} holds an unfinished run; pass --resume to continue it or --overwrite"
            )
        raise ConfigError(f"{out} exists and is not empty; choose another -o or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    return False


def finish_run_dir(out: Path) -> None:
    """Remove the checkpoints of a run whose manifest has been written."""
    shutil.rmtree(out / RESUME_DIR, ignore_errors=True)


def train(
    task: Task,
    config: LoopConfig,
    out: Path,
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> LoopResult:
    """Train ``task.model`` for ``config.steps`` Adam steps; see the module docstring."""
    model = task.model
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
    metrics_path = out / METRICS
    start, window, resumed_from = 0, _Window(), None
    torch.manual_seed(config.seed)
    if resume:
        start, window = _load_checkpoint(out / RESUME_DIR / CHECKPOINT, model, optimizer, schedule)
        resumed_from = start
        _truncate_metrics(metrics_path, start)
    else:
        metrics_path.write_text("")
        _save_checkpoint(out / RESUME_DIR / CHECKPOINT, model, optimizer, schedule, 0, window)
    history: list[dict[str, float]] = []
    latest: dict[str, float] = {}
    step = start
    model.train()
    for step, batch in enumerate(task.batches(start, config.steps), start=start):
        loss, info = task.loss(batch)
        if not torch.isfinite(loss):
            raise RunError(
                f"the loss became {loss.item()} at step {step}; training stopped. The last good "
                f"checkpoint is kept in {out / RESUME_DIR}: lower --lr (now {config.lr}) and "
                "run again, or --resume to retry from it"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        window.add({"loss": loss.item(), **info})
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            latest = {**window.mean(), "lr": optimizer.param_groups[0]["lr"]}
            _append(metrics_path, {"step": done, **latest}, history)
            window = _Window()
        if (config.eval_every and done % config.eval_every == 0) or done == config.steps:
            validation = _evaluate(task)
            latest = {**latest, **validation}
            _append(metrics_path, {"step": done, **validation}, history)
        if done % config.checkpoint_every == 0 and done < config.steps:
            _save_checkpoint(
                out / RESUME_DIR / CHECKPOINT, model, optimizer, schedule, done, window
            )
        if progress is not None:
            progress(done, config.steps, latest)
    model.eval()
    return LoopResult(config.steps, latest, resumed_from, history)


def _evaluate(task: Task) -> dict[str, float]:
    task.model.eval()
    try:
        with torch.no_grad():
            return {f"val_{k}": float(v) for k, v in task.evaluate().items()}
    finally:
        task.model.train()


class _Window:
    """Sums of the metrics logged since the last log line."""

    def __init__(self, sums: dict[str, float] | None = None, count: int = 0) -> None:
        self.sums = dict(sums or {})
        self.count = count

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def mean(self) -> dict[str, float]:
        return {k: v / max(1, self.count) for k, v in self.sums.items()}


def _append(path: Path, record: dict[str, float], history: list[dict[str, float]]) -> None:
    history.append(record)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the metrics lines of steps ``<= step``: what the checkpoint had seen."""
    if not path.is_file():
        path.write_text("")
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by the kill; everything after it is newer anyway
        if record.get("step", 0) <= step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    window: _Window,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": torch.get_rng_state(),
        "window": {"sums": window.sums, "count": window.count},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, _Window]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        window = _Window(state["window"]["sums"], state["window"]["count"])
        return int(state["step"]), window
    except Exception as err:  # any damage means the same thing to the user
        raise RunError(
            f"cannot resume from {path} ({first_line(err)}); the checkpoint does not "
            "match this model or is damaged: run with --overwrite to start over"
        ) from err
