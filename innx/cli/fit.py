"""``innx fit``: train the networks innx needs, each into a run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.options import (
    BackboneOptions,
    Device,
    JsonFlag,
    Overwrite,
    Resume,
    Seed,
    Weights,
    Workers,
    parse_options,
)
from innx.cli.progress import log, step_progress

app = typer.Typer(
    help="Train a network into a run directory (weights, config, manifest).",
    no_args_is_help=True,
)


@app.command("classifier")
def classifier(
    data: Annotated[
        str,
        typer.Argument(help="A labelled dataset spec, e.g. shapes:n=20000,size=32 or folder:PATH."),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The run directory to write.")],
    backbone: Annotated[str, typer.Option("--backbone", help="A backbone name.")] = "smallcnn",
    weights: Weights = None,
    option: BackboneOptions = None,
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the training set.")] = 4.0,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Optimiser steps (overrides --epochs).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate (cosine decay).")] = 3e-3,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of the images held out.")
    ] = 0.1,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")
    ] = 100,
    seed: Seed = 0,
    device: Device = "cpu",
    workers: Workers = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Train a backbone (smallcnn by default) to classify a labelled dataset.

    --weights starts from those weights instead of a random initialisation. The run directory
    then loads with --backbone NAME --weights RUN.
    """
    from innx.ops.classifier import ClassifierFit, fit_classifier

    fit = ClassifierFit(
        data=data,
        backbone=backbone,
        options=parse_options(option),
        weights=weights,
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        seed=seed,
        device=device,
        workers=workers,
        checkpoint_every=checkpoint_every,
    )
    with step_progress("fit classifier") as progress:
        result = fit_classifier(
            fit, output, resume=resume, overwrite=overwrite, progress=progress, log=log
        )
    m = result.metrics
    log(
        f"validation accuracy {m['val_accuracy']:.4f} after {m['epochs']:.3g} epochs "
        f"({m['seconds']:.1f} s)"
    )
    if json_output:
        typer.echo(json.dumps({"run": str(result.run_dir), "metrics": m}, indent=2))
    else:
        typer.echo(str(result.run_dir))
    sys.stdout.flush()
