"""``innx compare``: the ``innx analyze`` reports of several models, side by side, as a directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.params import DefaultsOf, JsonFlag, Overwrite, output_option
from innx.cli.progress import log

COMPARE = DefaultsOf("innx.ops.compare.comparison:CompareOptions")


def compare(
    reports: Annotated[
        list[str],
        typer.Argument(
            help="Two or more report directories of innx analyze on the same concepts, each "
            "REPORT (the model is named by its folder) or NAME=REPORT.",
            metavar="REPORT",
            show_default=False,
        ),
    ],
    output: Annotated[Path, output_option("The comparison directory to write.")],
    kept_at: Annotated[
        float,
        typer.Option(
            "--kept-at",
            help="A layer keeps a concept when its kept figure (0 = chance, 1 = as a "
            "reconstruction) is at least this; the sentences say where each model drops it.",
        ),
    ] = COMPARE.kept_at,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Compare models on the same concepts: per concept, layer by layer, how much of it each
    model keeps (kept, share explained, with intervals and verdicts), the differences between
    the models, and one sentence per concept saying where each model keeps or drops it. Layers
    of different networks are aligned by depth (first: the input side, last: the logits).

    Writes OUTPUT/compare.json, compare.md, PNG figures and a self-contained compare.html.
    """
    from innx.ops.compare.comparison import CompareOptions
    from innx.ops.compare.comparison import compare as run_compare

    options = CompareOptions(reports=tuple(reports), kept_at=kept_at)
    result = run_compare(options, output, overwrite=overwrite)
    comparison = result.comparison
    if json_output:
        summary = {
            "comparison": str(result.path),
            "files": result.files,
            "models": [m["name"] for m in comparison["models"]],
            "dataset": comparison["dataset"],
            "sentences": comparison["sentences"],
        }
        typer.echo(json.dumps(summary, indent=2))
    else:
        for text in comparison["sentences"].values():
            log(text)
        typer.echo(str(result.path))
