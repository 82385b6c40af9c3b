"""``innx analyze``: what each fitted layer encodes and is invariant to, as a report directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.params import (
    Autoencoder,
    Classifier,
    DefaultsOf,
    Device,
    InternalBatchSize,
    InvarianceRuns,
    JsonFlag,
    JudgeSteps,
    Kernels,
    OptionalSemantic,
    Overwrite,
    Rows,
    Seed,
    output_option,
    parse_rows,
)
from innx.cli.progress import log, step_progress

ANALYZE = DefaultsOf("innx.ops.analyze.analysis:AnalyzeOptions")


def analyze(
    store: Annotated[Path, typer.Argument(help="The activation store the runs were fitted on.")],
    output: Annotated[Path, output_option("The report directory to write.")],
    invariance: InvarianceRuns,
    semantic: OptionalSemantic = None,
    factor: Annotated[
        list[str] | None,
        typer.Option(
            "--factor",
            help="A concept to report (repeatable): a factor of the semantic run (default: all "
            "of them) or, without one, an attribute of the store (default: every attribute); "
            "NAME:categorical or NAME:continuous reads it as that kind.",
        ),
    ] = None,
    classifier: Classifier = None,
    autoencoder: Autoencoder = None,
    rows: Rows = None,
    samples: Annotated[
        int,
        typer.Option(
            "--samples",
            min=2,
            help="Rows to analyze when --rows is not given, chosen by --seed (rows held out by "
            "the fits first).",
        ),
    ] = ANALYZE.samples,
    draws: Annotated[
        int, typer.Option("--draws", min=2, help="Draws of v per row for the shares explained.")
    ] = ANALYZE.draws,
    decode_draws: Annotated[
        int,
        typer.Option("--decode-draws", min=1, help="Draws per row decoded to check preservation."),
    ] = ANALYZE.decode_draws,
    judge_steps: JudgeSteps = ANALYZE.judge_steps,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=10, help="Resamples of the rows for each interval.")
    ] = ANALYZE.bootstrap,
    batch_size: InternalBatchSize = ANALYZE.batch_size,
    seed: Seed = ANALYZE.seed,
    device: Device = ANALYZE.device,
    kernels: Kernels = ANALYZE.kernels,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Measure each layer that an invariance run was fitted on: how often its invariance samples
    keep each named factor (kept, read by a judge trained on the store's images), the share of
    each concept's variance the layer explains (with its ceiling), whether the samples keep its
    representation and the classifier's prediction, and how normal and independent of the layer
    its invariances v are. Every figure comes with a bootstrap interval and the verdict of the
    checks of the fits it rests on (sound, doubtful, not interpretable).

    Writes OUTPUT/report.json, report.md, PNG figures and a self-contained report.html.
    """
    from innx.ops.analyze.analysis import AnalyzeOptions
    from innx.ops.analyze.analysis import analyze as run_analyze

    options = AnalyzeOptions(
        store=str(store),
        invariance=tuple(invariance),
        semantic=semantic,
        factors=tuple(factor or ()),
        classifier=classifier,
        autoencoder=None if autoencoder is None else str(autoencoder),
        rows=parse_rows(rows),
        samples=samples,
        draws=draws,
        decode_draws=decode_draws,
        seed=seed,
        device=device,
        kernels=kernels,
        batch_size=batch_size,
        bootstrap=bootstrap,
        judge_steps=judge_steps,
    )
    with step_progress("analyze") as progress:
        result = run_analyze(
            options,
            output,
            overwrite=overwrite,
            progress=lambda done, total: progress(done, total, {}),
            log=log,
        )
    if json_output:
        report = result.report
        summary = {
            "report": str(result.path),
            "files": result.files,
            "verdicts": report["diagnostics"]["counts"],
            "kept": report["kept"]["layers"],
            "share_explained": report["share_explained"],
            "interventions": report["interventions"],
        }
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(str(result.path))
