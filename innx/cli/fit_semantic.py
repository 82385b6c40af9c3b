"""``innx fit semantic``: train the semantic INN e, one block of dimensions per named factor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.params import (
    Autoencoder,
    BatchSize,
    CheckpointEvery,
    CudaGraph,
    DefaultsOf,
    Device,
    Epochs,
    GradClip,
    JsonFlag,
    Kernels,
    Lr,
    Overwrite,
    Precision,
    Resume,
    Seed,
    Steps,
    output_option,
    preset_option,
)
from innx.cli.progress import log, main_process, report_run, run_fit

SEMANTIC = DefaultsOf("innx.ops.fit.semantic.options:SemanticFit")


def semantic(
    store: Annotated[
        Path, typer.Argument(help="An activation store with attributes (innx extract).")
    ],
    factor: Annotated[
        list[str],
        typer.Option(
            "--factor",
            help="A factor to give a block, in order (repeat the option): NAME, "
            "NAME:categorical or NAME:continuous to override the kind the store records, and "
            "for a continuous one NAME:bins=K / NAME:tol=T (e.g. age:continuous,bins=4).",
        ),
    ],
    output: Annotated[Path | None, output_option("The run directory to write.")] = None,
    dims: Annotated[
        str | None,
        typer.Option(
            "--dims",
            help="Block sizes, one per factor (the residual gets the rest) or with the "
            "residual's last, e.g. 16,16,16. Default: estimated from pairs.",
        ),
    ] = None,
    estimate_dims: Annotated[
        bool, typer.Option("--estimate-dims", help="Print the estimated block sizes and exit.")
    ] = False,
    on: Annotated[
        str,
        typer.Option("--on", help="What e explains: latents (the default) or layer:NAME."),
    ] = SEMANTIC.on,
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="Explicit pairs: a CSV of a,b,factor (store rows)."),
    ] = None,
    rho: Annotated[
        float, typer.Option("--rho", help="Correlation of a shared factor's block in a pair.")
    ] = SEMANTIC.rho,
    negative: Annotated[
        float,
        typer.Option(
            "--negative",
            help="Share of sampled pairs that share every factor but one (label -j).",
        ),
    ] = SEMANTIC.negative,
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            help="Gaussian noise on the training codes at the start, in per-dimension standard "
            "deviations; it falls to --noise-final along a cosine.",
        ),
    ] = SEMANTIC.noise,
    noise_final: Annotated[
        float,
        typer.Option(
            "--noise-final",
            help="The noise level at the last step: e stays smooth around the codes, so that it "
            "reads invariance samples (which lie near, not on, them) as it reads the codes.",
        ),
    ] = SEMANTIC.noise_final,
    preset: Annotated[
        str, preset_option("Size of e: small (CPU) or paper (12 blocks, 512).")
    ] = SEMANTIC.preset,
    steps: Steps = None,
    epochs: Epochs = None,
    batch_size: BatchSize = SEMANTIC.batch_size,
    lr: Lr = SEMANTIC.lr,
    grad_clip: GradClip = SEMANTIC.grad_clip,
    precision: Precision = SEMANTIC.precision,
    kernels: Kernels = SEMANTIC.kernels,
    cuda_graph: CudaGraph = False,
    autoencoder: Autoencoder = None,
    swaps: Annotated[
        bool,
        typer.Option(
            "--swaps/--no-swaps", help="Measure factor swaps after training (trains a small judge)."
        ),
    ] = SEMANTIC.swaps,
    checkpoint_every: CheckpointEvery = SEMANTIC.checkpoint_every,
    seed: Seed = SEMANTIC.seed,
    device: Device = SEMANTIC.device,
    resume: Resume = False,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Train the semantic INN e: one block of dimensions per named factor, the residual last.

    Trains 120 epochs (at most 40 000 steps) unless --steps or --epochs say otherwise, and
    keeps the weights of its best held-out evaluation.

    Pairs of rows that share a factor are sampled from the store's attributes (or read from
    --pairs). The manifest records the linear-probe accuracy of each block, the leakage into the
    other blocks and the rate of successful factor swaps.
    """
    from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic
    from innx.ops.fit.semantic.fit import estimate_dims as estimate

    fit = SemanticFit(
        store=str(store),
        factors=tuple(factor),
        dims=_parse_dims(dims),
        on=on,
        pairs=str(pairs) if pairs is not None else None,
        rho=rho,
        negative=negative,
        noise=noise,
        noise_final=noise_final,
        preset=preset,
        swaps=swaps,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        grad_clip=grad_clip,
        seed=seed,
        device=device,
        precision=precision,
        kernels=kernels,
        cuda_graph=cuda_graph,
        checkpoint_every=checkpoint_every,
        autoencoder=str(autoencoder) if autoencoder is not None else None,
    )
    if estimate_dims:
        sizes = estimate(fit)
        if main_process():
            typer.echo(json.dumps(sizes) if json_output else ",".join(map(str, sizes.values())))
        return
    if output is None:
        raise typer.BadParameter("give the run directory with -o/--output", param_hint="-o")
    result = run_fit("fit semantic", fit_semantic, fit, output, resume, overwrite)
    m = result.metrics
    probes = ", ".join(
        f"{name} probe {m[f'probe_{name}']:.3f} leak {m[f'leak_{name}']:.3f}"
        for name in result.sizes
        if f"probe_{name}" in m
    )
    log(f"blocks {result.sizes}; {probes or 'no attributes to probe'} ({m['seconds']:.1f} s)")
    report_run(result.run_dir, m, json_output)


def _parse_dims(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of sizes, e.g. 16,16,16", param_hint="--dims"
        ) from None
