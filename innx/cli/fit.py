"""``innx fit``: train the networks innx needs, each into a run directory.

``fit semantic``, the largest, lives in :mod:`innx.cli.fit_semantic`; its options shared with
the other fits are declared, like every shared option, in :mod:`innx.cli.params`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from innx.cli.fit_semantic import semantic
from innx.cli.params import (
    BackboneOptions,
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
    RunDir,
    Seed,
    Steps,
    Weights,
    Workers,
    parse_options,
    preset_option,
)
from innx.cli.progress import log, report_run, run_fit

CLASSIFIER = DefaultsOf("innx.ops.fit.classifier:ClassifierFit")
AUTOENCODER = DefaultsOf("innx.ops.fit.autoencoder:AutoencoderFit")
INVARIANCE = DefaultsOf("innx.ops.fit.invariance:InvarianceFit")

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
    output: RunDir,
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            help="Learn this categorical attribute of the dataset instead of its classes "
            "(e.g. --label texture on cues); recorded in the run.",
        ),
    ] = None,
    backbone: Annotated[
        str, typer.Option("--backbone", help="A backbone name.")
    ] = CLASSIFIER.backbone,
    weights: Weights = None,
    option: BackboneOptions = None,
    epochs: Epochs = CLASSIFIER.epochs,
    steps: Steps = None,
    batch_size: BatchSize = CLASSIFIER.batch_size,
    lr: Lr = CLASSIFIER.lr,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of the images held out.")
    ] = CLASSIFIER.val_fraction,
    checkpoint_every: CheckpointEvery = CLASSIFIER.checkpoint_every,
    seed: Seed = CLASSIFIER.seed,
    device: Device = CLASSIFIER.device,
    workers: Workers = CLASSIFIER.workers,
    resume: Resume = False,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Train a backbone (--backbone) to classify a labelled dataset.

    --weights starts from those weights instead of a random initialisation. The run directory
    then loads with --backbone NAME --weights RUN.
    """
    from innx.ops.fit.classifier import ClassifierFit, fit_classifier

    fit = ClassifierFit(
        data=data,
        label=label,
        backbone=backbone,
        options=parse_options(option),
        weights=weights,
        epochs=cast(float, epochs),  # never None: the option has a default here
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        seed=seed,
        device=device,
        workers=workers,
        checkpoint_every=checkpoint_every,
    )
    result = run_fit("fit classifier", fit_classifier, fit, output, resume, overwrite)
    m = result.metrics
    log(
        f"validation accuracy {m['val_accuracy']:.4f} after {m['epochs']:.3g} epochs "
        f"({m['seconds']:.1f} s)"
    )
    report_run(result.run_dir, m, json_output)


@app.command("autoencoder")
def autoencoder(
    data: Annotated[
        str, typer.Argument(help="A dataset spec, e.g. shapes:n=20000,size=32 or folder:PATH.")
    ],
    output: RunDir,
    latent_dim: Annotated[
        int, typer.Option("--latent-dim", min=2, help="Size of the code zbar (64 or 128).")
    ] = AUTOENCODER.latent_dim,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Image size: 32, 64 or 128 (default: the dataset's)."),
    ] = None,
    preset: Annotated[
        str, preset_option("Network size: demo (CPU minutes) or standard.")
    ] = AUTOENCODER.preset,
    steps: Steps = None,
    epochs: Epochs = None,
    batch_size: BatchSize = AUTOENCODER.batch_size,
    lr: Lr = AUTOENCODER.lr,
    kl_weight: Annotated[
        float, typer.Option("--kl-weight", min=0.0, help="Weight of the posterior's KL term.")
    ] = AUTOENCODER.kl_weight,
    classifier: Annotated[
        str | None,
        typer.Option(
            "--classifier",
            help="The classifier to be explained (a run of innx fit classifier): the manifest "
            "records how often it predicts on held-out reconstructions what it predicts on the "
            "images (val_agreement; aim for 0.95 or more).",
        ),
    ] = None,
    checkpoint_every: CheckpointEvery = AUTOENCODER.checkpoint_every,
    seed: Seed = AUTOENCODER.seed,
    device: Device = AUTOENCODER.device,
    cuda_graph: CudaGraph = AUTOENCODER.cuda_graph,
    workers: Workers = AUTOENCODER.workers,
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
        cuda_graph=cuda_graph,
    )
    result = run_fit("fit autoencoder", fit_autoencoder, fit, output, resume, overwrite)
    m = result.metrics
    agreement = f", classifier agreement {m['val_agreement']:.3f}" if "val_agreement" in m else ""
    log(
        f"held-out PSNR {m['val_psnr']:.2f} dB{agreement} after {m['steps']:.0f} steps "
        f"({m['seconds']:.1f} s)"
    )
    report_run(result.run_dir, m, json_output)


@app.command("invariance")
def invariance(
    store: Annotated[
        Path, typer.Argument(help="An activation store (innx extract --autoencoder).")
    ],
    layer: Annotated[str, typer.Option("--layer", help="The layer whose invariances to learn.")],
    output: RunDir,
    preset: Annotated[
        str, preset_option("Size of t: small (CPU) or paper (20 blocks, 1024).")
    ] = INVARIANCE.preset,
    steps: Steps = None,
    epochs: Epochs = None,
    batch_size: BatchSize = INVARIANCE.batch_size,
    lr: Lr = INVARIANCE.lr,
    noise: Annotated[
        float,
        typer.Option(
            "--noise",
            min=0.0,
            help="Gaussian noise on the layer's values in training, in their standard "
            "deviations: t cannot memorise the training rows' conditions (0 turns it off).",
        ),
    ] = INVARIANCE.noise,
    grad_clip: GradClip = INVARIANCE.grad_clip,
    precision: Precision = INVARIANCE.precision,
    kernels: Kernels = INVARIANCE.kernels,
    cuda_graph: CudaGraph = False,
    checkpoint_every: CheckpointEvery = INVARIANCE.checkpoint_every,
    seed: Seed = INVARIANCE.seed,
    device: Device = INVARIANCE.device,
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
    result = run_fit("fit invariance", fit_invariance, fit, output, resume, overwrite)
    m = result.metrics
    log(
        f"held-out NLL {m['val_bits_per_dim']:.4f} bits/dim after {m['steps']:.0f} steps "
        f"({m['seconds']:.1f} s)"
    )
    report_run(result.run_dir, m, json_output)


app.command("semantic")(semantic)
