"""What a checkpoint of the training loop holds besides the model: the optimiser, schedule and RNG
states, the unfinished metrics window and the best weights so far, saved and restored so that a
resumed run continues bit for bit (:mod:`innx.train.loop`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from innx.errors import RunError, first_line
from innx.train.checkpoints import save_checkpoint
from innx.train.graph_step import portable_state
from innx.train.run_dir import RESUME_DIR
from innx.writes import atomic_write


class BestWeights:
    """The weights of the best evaluation so far of metric ``name`` (``None``: keep none)."""

    def __init__(self, name: str | None, higher: bool) -> None:
        self.name, self.higher = name, higher
        self.step: int | None = None
        self.score = math.nan
        self.state: dict[str, torch.Tensor] = {}
        self.metrics: dict[str, float] = {}

    def offer(self, step: int, validation: dict[str, float], module: nn.Module) -> None:
        """Keep ``module``'s weights when ``validation`` beats the best so far (ties keep the
        earlier step; a missing or non-finite value never wins)."""
        if self.name is None:
            return
        score = validation.get(self.name, math.nan)
        if not math.isfinite(score):
            return
        better = score > self.score if self.higher else score < self.score
        if self.step is None or better:
            self.step, self.score, self.metrics = step, score, dict(validation)
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def end_on_best(self, module: nn.Module) -> dict[str, float]:
        """Load the best weights into ``module``; return that evaluation's metrics."""
        module.load_state_dict(self.state)
        return self.metrics

    def saved(self) -> dict[str, Any] | None:
        if self.step is None:
            return None
        return {
            "step": self.step,
            "score": self.score,
            "state": self.state,
            "metrics": self.metrics,
        }

    def restore(self, saved: dict[str, Any] | None) -> None:
        if saved is None or self.name is None:
            return
        self.step, self.score = int(saved["step"]), float(saved["score"])
        self.state, self.metrics = dict(saved["state"]), dict(saved["metrics"])


class MetricsWindow:
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


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the metrics lines of steps ``<= step``: what the checkpoint had seen. The file is
    replaced whole, so a failed write (a full disk) leaves it as it was."""
    kept = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by the kill; everything after it is newer anyway
            if record.get("step", 0) <= step:
                kept.append(line)
    text = "".join(line + "\n" for line in kept)
    atomic_write(path, lambda tmp: tmp.write_text(text), "run again with --resume")


def save_loop_state(
    out: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    window: MetricsWindow,
    best: BestWeights,
) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": portable_state(optimizer.state_dict()),
        "schedule": schedule.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "window": {"sums": window.sums, "count": window.count},
        "best": best.saved(),
    }
    save_checkpoint(out / RESUME_DIR, state, step)


def restore_loop_state(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, MetricsWindow]:
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng"):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        window = MetricsWindow(state["window"]["sums"], state["window"]["count"])
        return int(state["step"]), window
    except Exception as err:  # any mismatch means the same thing to the user
        raise RunError(
            f"cannot resume: the checkpoint in {RESUME_DIR}/ does not fit this model "
            f"({first_line(err)}); run with --overwrite to start over"
        ) from err
