"""Progress and log lines on stderr: a rich progress bar on a terminal, quiet in a pipe; and
what a fit prints on stdout (its run directory), from the first process only."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
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
R = TypeVar("R")


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


def run_fit(
    label: str, fit_fn: Callable[..., R], fit: Any, output: Path, resume: bool, overwrite: bool
) -> R:
    """One ``innx fit``: ``fit_fn(fit, output, …)`` with a progress bar, its log on stderr."""
    with step_progress(label) as progress:
        return fit_fn(fit, output, resume=resume, overwrite=overwrite, progress=progress, log=log)


def report_run(run_dir: Path, metrics: dict[str, float], json_output: bool) -> None:
    """The run directory on stdout, or a JSON summary with its metrics (rank 0 only)."""
    if not main_process():
        return
    if json_output:
        typer.echo(json.dumps({"run": str(run_dir), "metrics": metrics}, indent=2))
    else:
        typer.echo(str(run_dir))
    sys.stdout.flush()
