"""``innx demo``: the whole method on the built-in shapes dataset, stage by stage, resumable.

Stages, each writing one path under the output folder (the same paths ``examples/shapes.sh``
chains on the command line):

=============  ======================  ==================================================
stage          output                  what
=============  ======================  ==================================================
data           ``images/``             a few shapes as PNG files (render reads them back)
classifier     ``clf/``                smallcnn trained to classify shape
autoencoder    ``ae/``                 E and D: the code zbar
extract        ``acts.h5``             the layers of :data:`DemoPlan.layers`, zbar, thumbnails
invariance-L   ``inv-L/``              t for layer L, one per layer
semantic       ``sem/``                e on shape, foreground and background colour
render         ``figures/``            samples, layers, mix, swaps, interpolation, animation
analyze        ``report/``             report.json, report.md, figures, report.html
=============  ======================  ==================================================

A stage whose output is complete is skipped; an interrupted fit or extraction resumes from its
checkpoint. ``demo.json`` records the plan, so that a folder is never resumed with another one.
Every stage runs on one ``device`` (``auto``: CUDA when there is one); each output records the
device it was made on, and the demo says it once (``on_device``), not once per stage. On CUDA the
fits of the autoencoder, ``t`` and ``e`` replay each step from a CUDA graph (``--cuda-graph``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from innx.device import AUTO, device_line, resolve_device
from innx.errors import ConfigError
from innx.ops.demo.plan import PLANS, DemoPlan
from innx.ops.demo.stages import Stage, demo_stages
from innx.writes import atomic_write

PLAN_FILE = "demo.json"


@dataclass(frozen=True)
class StageReport:
    name: str
    output: Path
    status: str  # "made", "resumed" or "skipped"
    seconds: float


@dataclass(frozen=True)
class DemoResult:
    out: Path
    report: Path
    stages: list[StageReport]
    seconds: float


StageLog = Callable[[int, int, Stage, str], None]
"""``log(i, count, stage, event)`` with event ``start``, ``resume``, ``skip`` or ``done <seconds>``."""


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    device: str = AUTO,
    overwrite: bool = False,
    on_stage: StageLog | None = None,
    on_device: Callable[[torch.device], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run (or finish) the demo in ``out``; stages already complete are skipped. ``seed`` draws
    everything anew (the data, every initialisation and sample), for the spread over seeds.
    Every stage runs on ``device``; ``on_device`` is called once with it (resolved) before the
    first stage, and ``log`` gets each stage's lines but that one."""
    if seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {seed}")
    target = resolve_device(device)  # a device this machine lacks is refused before any work
    started = time.perf_counter()
    plan = PLANS["quick" if quick else "full"].with_seed(seed)
    out = Path(out)
    _prepare(out, plan, overwrite)
    if on_device is not None:
        on_device(target)
    stages = demo_stages(out, plan, _without(log, device_line(target)), device=device)
    reports = []
    for i, stage in enumerate(stages, 1):
        if stage.complete():
            reports.append(StageReport(stage.name, stage.output, "skipped", 0.0))
            if on_stage:
                on_stage(i, len(stages), stage, "skip")
            continue
        resume = stage.partial()
        if on_stage:
            on_stage(i, len(stages), stage, "resume" if resume else "start")
        t0 = time.perf_counter()
        stage.make(resume)
        seconds = time.perf_counter() - t0
        reports.append(
            StageReport(stage.name, stage.output, "resumed" if resume else "made", seconds)
        )
        if on_stage:
            on_stage(i, len(stages), stage, f"done {seconds:.1f}")
    return DemoResult(out, out / "report", reports, time.perf_counter() - started)


def _without(log: Callable[[str], None] | None, line: str) -> Callable[[str], None] | None:
    """``log`` but for ``line``: each stage says its device, which the demo says once."""
    if log is None:
        return None
    return lambda message: None if message == line else log(message)


def _prepare(out: Path, plan: DemoPlan, overwrite: bool) -> None:
    """Create ``out`` (or check it holds this plan's demo); ``overwrite`` starts over."""

    record = out / PLAN_FILE
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another -o")
    if overwrite and out.exists():
        if not record.is_file() and any(out.iterdir()):
            raise ConfigError(
                f"{out} is not a demo folder (no {PLAN_FILE}); refusing to delete it, choose another -o"
            )
        shutil.rmtree(out)
    if out.is_dir() and any(out.iterdir()):
        if not record.is_file():
            raise ConfigError(f"{out} exists and is not a demo folder; choose another -o")
        recorded = json.loads(record.read_text())
        name, seed = recorded.get("plan"), (recorded.get("settings") or {}).get("seed", 0)
        if (name, seed) != (plan.name, plan.seed):
            flags = ("--quick " if name == "quick" else "no --quick, ") + f"--seed {seed}"
            raise ConfigError(
                f"{out} holds a demo run with {flags}; run it that way to resume, "
                "pass --overwrite to start over, or choose another -o"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    settings = {"plan": plan.name, "settings": _jsonable(plan)}
    atomic_write(record, lambda tmp: tmp.write_text(json.dumps(settings, indent=2) + "\n"))


def _jsonable(plan: DemoPlan) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(plan)))
