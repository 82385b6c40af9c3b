"""Progress and log lines on stderr: a rich progress bar on a terminal, quiet in a pipe."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

StepProgress = Callable[[int, int, dict[str, float]], None]


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def main_process() -> bool:
    """False in every ``torchrun`` process but rank 0, which alone reports (no duplicate lines)."""
    return os.environ.get("RANK", "0") == "0"


def log(message: str) -> None:
    """One line of information on stderr (kept out of stdout, which carries results)."""
    if main_process():
        stderr().print(message, markup=False, soft_wrap=True)  # never break a path


def _format(metrics: dict[str, float]) -> str:
    shown = [
        f"{k} {v:.4g}"
        for k, v in metrics.items()
        if k in ("loss", "bits_per_dim", "val_accuracy", "val_bits_per_dim", "val_psnr")
    ]
    return "  ".join(shown)


@contextmanager
def step_progress(description: str) -> Iterator[StepProgress]:
    """A callback ``(done, total, metrics)`` drawing a progress bar when stderr is a terminal."""
    console = stderr()
    if not console.is_terminal or not main_process():
        yield lambda _done, _total, _metrics: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=None, info="")

        def update(done: int, total: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=done, total=total, info=_format(metrics))

        yield update
