"""``innx fit``: train the networks innx needs, each into a run directory."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from innx.cli.flow_options import (
    BatchSize,
    CheckpointEvery,
    CudaGraph,
    FlowEpochs,
    FlowLr,
    GradClip,
    Kernels,
    Precision,
    Steps,
)
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
from innx.cli.progress import log, main_process, step_progress

R = TypeVar("R")

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
    from innx.ops.fit.classifier import ClassifierFit, fit_classifier

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
    result = _run("fit classifier", fit_classifier, fit, output, resume, overwrite)
    m = result.metrics
    log(
        f"validation accuracy {m['val_accuracy']:.4f} after {m['epochs']:.3g} epochs "
        f"({m['seconds']:.1f} s)"
    )
    _report(result.run_dir, m, json_output)


@app.command("autoencoder")
def autoencoder(
    data: Annotated[
        str, typer.Argument(help="A dataset spec, e.g. shapes:n=20000,size=32 or folder:PATH.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The run directory to write.")],
    latent_dim: Annotated[
        int, typer.Option("--latent-dim", min=2, help="Size of the code zbar (64 or 128).")
    ] = 64,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Image size: 32, 64 or 128 (default: the dataset's)."),
    ] = None,
    preset: Annotated[
        str, typer.Option("--preset", help="Network size: demo (CPU minutes) or standard.")
    ] = "demo",
    steps: Steps = None,
    epochs: FlowEpochs = None,
    batch_size: BatchSize = 32,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate (cosine decay).")] = 2e-3,
    kl_weight: Annotated[
        float, typer.Option("--kl-weight", min=0.0, help="Weight of the posterior's KL term.")
    ] = 1e-5,
    classifier: Annotated[
        str | None,
        typer.Option(
            "--classifier",
            help="The classifier to be explained (a run of innx fit classifier): the manifest "
            "records how often it predicts on held-out reconstructions what it predicts on the "
            "images (val_agreement; aim for 0.95 or more).",
        ),
    ] = None,
    checkpoint_every: CheckpointEvery = 100,
    seed: Seed = 0,
    device: Device = "cpu",
    workers: Workers = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Train the convolutional autoencoder (E, D) whose code zbar the invariance INN explains.

    Trains 6 epochs (demo preset; at least 3000 and at most 30 000 steps) unless --steps or
    --epochs say otherwise, and keeps the weights of its best held-out evaluation. The run directory feeds
    'innx extract --autoencoder RUN'. Its manifest holds the held-out reconstruction PSNR and,
    with --classifier, the classifier's agreement on reconstructions.
    """
    from innx.ops.fit.autoencoder import AutoencoderFit, fit_autoencoder

    fit = AutoencoderFit(
        data=data,
        latent_dim=latent_dim,
        size=size,
        preset=preset,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        kl_weight=kl_weight,
        seed=seed,
        device=device,
        workers=workers,
        checkpoint_every=checkpoint_every,
        classifier=classifier,
    )
    result = _run("fit autoencoder", fit_autoencoder, fit, output, resume, overwrite)
    m = result.metrics
    agreement = f", classifier agreement {m['val_agreement']:.3f}" if "val_agreement" in m else ""
    log(
        f"held-out PSNR {m['val_psnr']:.2f} dB{agreement} after {m['steps']:.0f} steps "
        f"({m['seconds']:.1f} s)"
    )
    _report(result.run_dir, m, json_output)


@app.command("invariance")
def invariance(
    store: Annotated[
        Path, typer.Argument(help="An activation store (innx extract --autoencoder).")
    ],
    layer: Annotated[str, typer.Option("--layer", help="The layer whose invariances to learn.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The run directory to write.")],
    preset: Annotated[
        str, typer.Option("--preset", help="Size of t: small (CPU) or paper (20 blocks, 1024).")
    ] = "small",
    steps: Steps = None,
    epochs: FlowEpochs = None,
    batch_size: BatchSize = 256,
    lr: FlowLr = 2e-3,
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            min=0.0,
            help="Gaussian noise on the layer's values in training, in their standard "
            "deviations: t cannot memorise the training rows' conditions (0 turns it off).",
        ),
    ] = 0.3,
    grad_clip: GradClip = 10.0,
    precision: Precision = "fp32",
    kernels: Kernels = "auto",
    cuda_graph: CudaGraph = False,
    checkpoint_every: CheckpointEvery = 200,
    seed: Seed = 0,
    device: Device = "cpu",
    resume: Resume = False,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Train the invariance cINN t: what --layer does not determine about the image's code.

    Trains 30 epochs (at most 20 000 steps) unless --steps or --epochs say otherwise, and
    keeps the weights of its best held-out evaluation.

    Vector layers are embedded by an MLP, feature maps by strided convolutions. The manifest
    records the store's fingerprint, the layer and the held-out NLL in bits per dimension.
    """
    from innx.ops.fit.invariance import InvarianceFit, fit_invariance

    fit = InvarianceFit(
        store=str(store),
        layer=layer,
        preset=preset,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        noise=noise,
        grad_clip=grad_clip,
        seed=seed,
        device=device,
        precision=precision,
        kernels=kernels,
        cuda_graph=cuda_graph,
        checkpoint_every=checkpoint_every,
    )
    result = _run("fit invariance", fit_invariance, fit, output, resume, overwrite)
    m = result.metrics
    log(
        f"held-out NLL {m['val_bits_per_dim']:.4f} bits/dim after {m['steps']:.0f} steps "
        f"({m['seconds']:.1f} s)"
    )
    _report(result.run_dir, m, json_output)


@app.command("semantic")
def semantic(
    store: Annotated[
        Path, typer.Argument(help="An activation store with attributes (innx extract).")
    ],
    factor: Annotated[
        list[str],
        typer.Option(
            "--factor",
            help="A factor to give a block, in order: NAME, or NAME:bins=K / NAME:tol=T for a "
            "continuous attribute (repeat the option).",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The run directory to write.")
    ] = None,
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
    ] = "latents",
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="Explicit pairs: a CSV of a,b,factor (store rows)."),
    ] = None,
    rho: Annotated[
        float, typer.Option("--rho", help="Correlation of a shared factor's block in a pair.")
    ] = 0.975,
    negative: Annotated[
        float,
        typer.Option(
            "--negative",
            help="Share of sampled pairs that share every factor but one (label -j).",
        ),
    ] = 0.0,
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            help="Gaussian noise on the training codes at the start, in per-dimension standard "
            "deviations; it falls to --noise-final along a cosine.",
        ),
    ] = 0.5,
    noise_final: Annotated[
        float,
        typer.Option(
            "--noise-final",
            help="The noise level at the last step: e stays smooth around the codes, so that it "
            "reads invariance samples (which lie near, not on, them) as it reads the codes.",
        ),
    ] = 0.1,
    preset: Annotated[
        str, typer.Option("--preset", help="Size of e: small (CPU) or paper (12 blocks, 512).")
    ] = "small",
    steps: Steps = None,
    epochs: FlowEpochs = None,
    batch_size: BatchSize = 256,
    lr: FlowLr = 1e-3,
    grad_clip: GradClip = 10.0,
    precision: Precision = "fp32",
    kernels: Kernels = "auto",
    cuda_graph: CudaGraph = False,
    autoencoder: Annotated[
        Path | None,
        typer.Option(
            "--autoencoder",
            help="The autoencoder run that decodes swaps (default: the one the store names).",
        ),
    ] = None,
    swaps: Annotated[
        bool, typer.Option(help="Measure factor swaps after training (trains a small judge).")
    ] = True,
    checkpoint_every: CheckpointEvery = 200,
    seed: Seed = 0,
    device: Device = "cpu",
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
    result = _run("fit semantic", fit_semantic, fit, output, resume, overwrite)
    m = result.metrics
    probes = ", ".join(
        f"{name} probe {m[f'probe_{name}']:.3f} leak {m[f'leak_{name}']:.3f}"
        for name in result.sizes
        if f"probe_{name}" in m
    )
    log(f"blocks {result.sizes}; {probes or 'no attributes to probe'} ({m['seconds']:.1f} s)")
    _report(result.run_dir, m, json_output)


def _parse_dims(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of sizes, e.g. 16,16,16", param_hint="--dims"
        ) from None


def _run(
    label: str, fit_fn: Callable[..., R], fit: Any, output: Path, resume: bool, overwrite: bool
) -> R:
    """One fit with a progress bar, its log on stderr."""
    with step_progress(label) as progress:
        return fit_fn(fit, output, resume=resume, overwrite=overwrite, progress=progress, log=log)


def _report(run_dir: Path, metrics: dict[str, float], json_output: bool) -> None:
    """The run directory on stdout, or a JSON summary with its metrics (rank 0 only)."""
    if not main_process():
        return
    if json_output:
        typer.echo(json.dumps({"run": str(run_dir), "metrics": metrics}, indent=2))
    else:
        typer.echo(str(run_dir))
    sys.stdout.flush()
