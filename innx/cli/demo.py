"""``innx demo``: the whole method on the built-in shapes dataset, resumable stage by stage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from innx.cli.params import DefaultsOf, Device, Overwrite, Seed, output_option
from innx.cli.progress import log

if TYPE_CHECKING:
    from innx.ops.demo.runner import Stage

DEMO = DefaultsOf("innx.ops.demo.runner:run_demo")


def demo(
    output: Annotated[Path, output_option("The demo folder (made, or resumed).")] = Path(
        "innx-demo"
    ),
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="A small, fast run (about a minute) that checks it all works."
        ),
    ] = False,
    seed: Seed = DEMO.seed,
    device: Device = DEMO.device,
    overwrite: Overwrite = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each stage's log lines too.")
    ] = False,
) -> None:
    """Run the method on shapes: data, classifier, autoencoder, extract, t per layer, e, render,
    analyze. Stages already complete are skipped, so an interrupted demo resumes (--overwrite
    deletes the folder's contents and starts over); --seed draws everything anew: the data,
    every fit's initialisation, the analysis. Every stage runs on --device. Prints the report's
    path."""
    from innx.device import device_line
    from innx.ops.demo.runner import run_demo

    def on_stage(i: int, count: int, stage: Stage, event: str) -> None:
        where = stage.output.name
        if event == "skip":
            log(f"[{i}/{count}] {stage.name}: {where} is complete, skipped")
        elif event in ("start", "resume"):
            verb = "resuming" if event == "resume" else "making"
            log(f"[{i}/{count}] {stage.name}: {verb} {where} …")
        else:
            log(f"[{i}/{count}] {stage.name}: done in {float(event.split()[1]):.1f} s")

    result = run_demo(
        output,
        quick=quick,
        seed=seed,
        device=device,
        overwrite=overwrite,
        on_stage=on_stage,
        on_device=lambda target: log(device_line(target)),
        log=(lambda m: log(f"    {m}")) if verbose else None,
    )
    log(f"demo finished in {result.seconds:.0f} s; open {result.report / 'report.html'}")
    typer.echo(str(result.report))
