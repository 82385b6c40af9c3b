"""``innx extract``: layer activations, autoencoder codes and attributes into an HDF5 store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.params import (
    BackboneOptions,
    BatchSize,
    DefaultsOf,
    Device,
    JsonFlag,
    NumClasses,
    Overwrite,
    Resume,
    Seed,
    Weights,
    Workers,
    output_option,
    parse_options,
)
from innx.cli.progress import log, step_progress

EXTRACT = DefaultsOf("innx.ops.extract.extraction:ExtractOptions")


def extract(
    data: Annotated[str, typer.Argument(help="A dataset spec, e.g. shapes:n=20000,size=32.")],
    output: Annotated[Path, output_option("The store to write (.h5).")],
    backbone: Annotated[
        str | None,
        typer.Option("--backbone", help="A backbone name (may be omitted with --weights RUN)."),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option("--layer", help="A layer to store (repeatable), or 'all' (innx layers)."),
    ] = None,
    weights: Weights = None,
    num_classes: NumClasses = None,
    option: BackboneOptions = None,
    autoencoder: Annotated[
        str | None,
        typer.Option("--autoencoder", help="An autoencoder run: store its codes as /latents."),
    ] = None,
    store_images: Annotated[
        bool, typer.Option("--store-images", help="Keep uint8 thumbnails for innx render.")
    ] = False,
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float16.")] = EXTRACT.dtype,
    compression: Annotated[
        str, typer.Option("--compression", help="none, lzf or gzip.")
    ] = EXTRACT.compression,
    batch_size: BatchSize = EXTRACT.batch_size,
    workers: Workers = EXTRACT.workers,
    device: Device = EXTRACT.device,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Only N images (the first N of the rows' order)."),
    ] = None,
    shuffle: Annotated[
        bool,
        typer.Option(
            "--shuffle/--no-shuffle",
            help="Store the rows in a random order of the dataset chosen by --seed (/index maps "
            "them back), so that any block of rows is a random sample; --no-shuffle keeps the "
            "dataset's order.",
        ),
    ] = EXTRACT.shuffle,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Skip unreadable images (recorded in /bad, index -1)."),
    ] = False,
    fail_on_nonfinite: Annotated[
        bool, typer.Option("--fail-on-nonfinite", help="Stop at the first NaN or inf.")
    ] = False,
    seed: Seed = EXTRACT.seed,
    resume: Resume = False,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a backbone over a dataset and write its layers to an HDF5 activation store.

    Under torchrun each process writes its shard beside OUTPUT and the first one joins them
    into OUTPUT as HDF5 virtual datasets.
    """
    from innx.ops.extract.extraction import ExtractOptions
    from innx.ops.extract.extraction import extract as run_extract

    backbone_options = parse_options(option)
    if num_classes is not None:
        backbone_options["num_classes"] = num_classes
    options = ExtractOptions(
        data=data,
        backbone=backbone,
        layers=tuple(layer or ()),
        weights=weights,
        backbone_options=backbone_options,
        autoencoder=autoencoder,
        store_images=store_images,
        dtype=dtype,
        compression=compression,
        batch_size=batch_size,
        workers=workers,
        device=device,
        limit=limit,
        skip_bad=skip_bad,
        fail_on_nonfinite=fail_on_nonfinite,
        seed=seed,
        shuffle=shuffle,
    )
    with step_progress("extract") as progress:
        result = run_extract(
            options,
            output,
            resume=resume,
            overwrite=overwrite,
            progress=lambda done, total: progress(done, total, {}),
            log=log,
        )
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun the first process reports for all
    if json_output:
        summary = {
            "store": str(result.path),
            "rows": result.rows,
            "written": result.written,
            "nonfinite": result.nonfinite,
            "bad": result.bad,
            "shards": [str(p) for p in result.shards],
        }
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(str(result.path))
