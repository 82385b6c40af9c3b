"""``innx analyze``: what each fitted layer encodes and is invariant to, as a report directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.options import Device, JsonFlag, Overwrite, Seed
from innx.cli.progress import log, step_progress
from innx.errors import ConfigError


def analyze(
    store: Annotated[Path, typer.Argument(help="The activation store the runs were fitted on.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The report directory to write.")],
    invariance: Annotated[
        list[str],
        typer.Option(
            "--invariance",
            help="An invariance run (innx fit invariance), one per layer, repeatable; layers are "
            "reported in this order. LAYER=RUN also checks that RUN was fitted on LAYER.",
        ),
    ],
    semantic: Annotated[
        str | None,
        typer.Option("--semantic", help="A semantic run (innx fit semantic): report its concepts."),
    ] = None,
    factor: Annotated[
        list[str] | None,
        typer.Option(
            "--factor",
            help="A concept to report (repeatable): a factor of the semantic run (default: all "
            "of them) or, without one, an attribute of the store (default: every attribute).",
        ),
    ] = None,
    classifier: Annotated[
        str | None,
        typer.Option(
            "--classifier",
            help="A run of innx fit classifier whose predictions are compared (default: the "
            "store's backbone, when it is a classifier).",
        ),
    ] = None,
    autoencoder: Annotated[
        str | None,
        typer.Option(
            "--autoencoder",
            help="The autoencoder run of the store's latents (default: the one it names).",
        ),
    ] = None,
    rows: Annotated[
        str | None,
        typer.Option(
            "--rows",
            help="Store rows to analyze: 0,5,9 or ranges 0:512 (default: --samples rows chosen "
            "by --seed, rows held out by the fits first).",
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=2, help="Rows to analyze when --rows is not given.")
    ] = 512,
    draws: Annotated[
        int, typer.Option("--draws", min=2, help="Draws of v per row for the shares explained.")
    ] = 16,
    decode_draws: Annotated[
        int,
        typer.Option("--decode-draws", min=1, help="Draws per row decoded to check preservation."),
    ] = 4,
    judge_steps: Annotated[
        int | None,
        typer.Option(
            "--judge-steps",
            min=0,
            help="Training steps of the judge that reads each factor off images for 'kept' "
            "(default 800; 0: no judge, no kept).",
        ),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=10, help="Resamples of the rows for each interval.")
    ] = 200,
    batch_size: Annotated[
        int,
        typer.Option("--internal-batch-size", min=1, help="Rows per forward pass (memory)."),
    ] = 256,
    seed: Seed = 0,
    device: Device = "cpu",
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
        autoencoder=autoencoder,
        rows=parse_rows(rows) if rows is not None else (),
        samples=samples,
        draws=draws,
        decode_draws=decode_draws,
        seed=seed,
        device=device,
        batch_size=batch_size,
        bootstrap=bootstrap,
        **({} if judge_steps is None else {"judge_steps": judge_steps}),
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
        }
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(str(result.path))


def parse_rows(text: str) -> tuple[int, ...]:
    """``"0,5,9"`` → ``(0, 5, 9)``; ``"0:3,7"`` → ``(0, 1, 2, 7)`` (ranges are half-open)."""
    rows: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        start, sep, stop = part.partition(":")
        try:
            rows += list(range(int(start), int(stop))) if sep else [int(part)]
        except ValueError:
            raise ConfigError(
                f"--rows takes rows and ranges like 0,5,9 or 0:512, got {part!r}"
            ) from None
    if not rows:
        raise ConfigError(f"--rows {text} selects no rows; pass rows like 0,5,9 or 0:512")
    return tuple(rows)
