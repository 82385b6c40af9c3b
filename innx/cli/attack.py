"""``innx attack``: what each layer sees in an adversarially attacked image, as a report directory."""

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
    Overwrite,
    Rows,
    Samples,
    Seed,
    output_option,
    parse_rows,
)
from innx.cli.progress import log

ATTACK = DefaultsOf("innx.ops.attack.attack:AttackOptions")


def attack(
    store: Annotated[
        Path, typer.Argument(help="The activation store the runs were fitted on (with images).")
    ],
    output: Annotated[Path, output_option("The report directory to write.")],
    invariance: InvarianceRuns,
    rows: Rows = None,
    method: Annotated[
        str,
        typer.Option("--method", help="The attack: fgsm (one step) or pgd (--iterations steps)."),
    ] = ATTACK.method,
    eps: Annotated[
        float,
        typer.Option(
            "--eps", help="The L∞ size of the attack in the image's [0, 1] pixel scale (> 0, <= 1)."
        ),
    ] = ATTACK.eps,
    iterations: Annotated[
        int, typer.Option("--iterations", min=1, help="PGD: its gradient sign steps.")
    ] = ATTACK.iterations,
    step_size: Annotated[
        float | None,
        typer.Option("--step-size", help="PGD: the size of each step (default: eps / 4)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="A class of the classifier (name or index) to attack towards (default: "
            "untargeted, away from its prediction).",
        ),
    ] = None,
    samples: Samples = ATTACK.samples,
    classifier: Classifier = None,
    autoencoder: Autoencoder = None,
    judge_steps: JudgeSteps = ATTACK.judge_steps,
    batch_size: InternalBatchSize = ATTACK.batch_size,
    seed: Seed = ATTACK.seed,
    device: Device = ATTACK.device,
    kernels: Kernels = ATTACK.kernels,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Attack store rows (FGSM or PGD within an L∞ ball, beside a random-noise control of the same
    size) and show, layer by layer, what the network now sees: invariance samples conditioned on
    Φ_l of the image, the attacked image and the noisy one, read by a judge and by the classifier
    as the original class or the adversarial one, and how far Φ_l moved.

    Writes OUTPUT/attack.json, attack.md, images.png and one row-R.png per row.
    """
    from innx.ops.attack.attack import AttackOptions
    from innx.ops.attack.attack import attack as run_attack

    options = AttackOptions(
        store=str(store),
        invariance=tuple(invariance),
        rows=parse_rows(rows),
        method=method,
        eps=eps,
        iterations=iterations,
        step_size=step_size,
        target=target,
        samples=samples,
        classifier=classifier,
        autoencoder=None if autoencoder is None else str(autoencoder),
        judge_steps=judge_steps,
        seed=seed,
        device=device,
        kernels=kernels,
        batch_size=batch_size,
    )
    result = run_attack(options, output, overwrite=overwrite, log=log)
    if json_output:
        report = result.record
        summary = {
            "report": str(result.path),
            "files": result.files,
            "success_rate": report["attack"]["success_rate"],
            "noise_flip_rate": report["attack"]["noise_flip_rate"],
            "judge": report["judge"]["attribute"],
            "layers": {
                layer["layer"]: {
                    "distance": layer["distance"],
                    "judge": layer["judge"],
                    "classifier": layer["classifier"],
                }
                for layer in report["layers"]
            },
        }
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(str(result.path))
