"""``innx render``: pictures of what a layer encodes and ignores, from a store and its runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from innx.cli.options import Device, JsonFlag, Overwrite, Seed
from innx.cli.progress import log

app = typer.Typer(
    help="Render invariance samples, mixes, factor swaps and walks as labelled PNG grids and GIFs.",
    no_args_is_help=True,
)

Store = Annotated[
    Path, typer.Argument(help="An activation store with latents (innx extract --autoencoder).")
]
Rows = Annotated[
    str | None,
    typer.Option("--rows", help="Store rows to render, comma-separated, e.g. 0,5,9."),
]
Images = Annotated[
    list[Path] | None,
    typer.Option(
        "--image",
        help="An image file to render instead of store rows (repeatable); it is encoded through "
        "the store's backbone and autoencoder.",
    ),
]
Invariance = Annotated[
    Path, typer.Option("--invariance", help="An invariance run (innx fit invariance).")
]
Layer = Annotated[
    str | None,
    typer.Option("--layer", help="Check that the invariance run was fitted on this layer."),
]
Semantic = Annotated[Path, typer.Option("--semantic", help="A semantic run (innx fit semantic).")]
Factor = Annotated[str, typer.Option("--factor", help="The factor of the semantic run to change.")]
Samples = Annotated[
    int, typer.Option("-n", "--samples", min=1, help="Invariance samples per input.")
]
Temperature = Annotated[
    float, typer.Option("--temperature", min=0.0, help="Draw v ~ N(0, T² I): below 1, tamer.")
]
Frames = Annotated[int, typer.Option("--frames", min=1, help="Frames of the GIF.")]
Fps = Annotated[float, typer.Option("--fps", min=0.1, max=1000.0, help="GIF frames per second.")]
Autoencoder = Annotated[
    Path | None,
    typer.Option("--autoencoder", help="The autoencoder run (default: the one the store names)."),
]
BatchSize = Annotated[
    int,
    typer.Option(
        "--internal-batch-size", min=1, help="Rows per forward pass: lower it to use less memory."
    ),
]
Png = Annotated[Path, typer.Option("-o", "--output", help="The PNG to write (OUT.png).")]
PngGif = Annotated[
    Path, typer.Option("-o", "--output", help="The PNG to write; the GIF goes beside it (OUT.gif).")
]
Gif = Annotated[Path, typer.Option("-o", "--output", help="The GIF to write (OUT.gif).")]


@app.command("samples")
def samples(
    store: Store,
    invariance: Invariance,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    layer: Layer = None,
    n: Samples = 8,
    temperature: Temperature = 1.0,
    seed: Seed = 0,
    autoencoder: Autoencoder = None,
    device: Device = "cpu",
    internal_batch_size: BatchSize = 256,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Per input: the image, its reconstruction and N invariance samples D(t⁻¹(v | z)).

    Column j uses the same v ~ N(0, T² I) for every input.
    """
    from innx.ops.render.modes import SamplesRender, render_samples

    common = _common(store, rows, image, seed, autoencoder, device, internal_batch_size)
    options = SamplesRender(
        **common, invariance=invariance, layer=layer, samples=n, temperature=temperature
    )
    _report("samples", render_samples(options, output, overwrite=overwrite, log=log), json_output)


@app.command("layers")
def layers(
    store: Store,
    invariance: Annotated[
        list[Path],
        typer.Option("--invariance", help="The invariance run of a layer (repeat: one per layer)."),
    ],
    output: Png,
    rows: Rows = None,
    image: Images = None,
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer", help="Check the runs' layers: one --layer per --invariance, in order."
        ),
    ] = None,
    n: Samples = 8,
    temperature: Temperature = 1.0,
    seed: Seed = 0,
    autoencoder: Autoencoder = None,
    device: Device = "cpu",
    internal_batch_size: BatchSize = 256,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """One input; a column of N invariance samples for each layer's run: what each layer ignores.

    Row j uses the same seeded v for every layer.
    """
    from innx.ops.render.modes import LayersRender, render_layers

    common = _common(store, rows, image, seed, autoencoder, device, internal_batch_size)
    options = LayersRender(
        **common,
        invariance=tuple(invariance),
        layers=tuple(layer or ()),
        samples=n,
        temperature=temperature,
    )
    _report("layers", render_layers(options, output, overwrite=overwrite, log=log), json_output)


@app.command("mix")
def mix(
    store: Store,
    invariance: Invariance,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    layer: Layer = None,
    autoencoder: Autoencoder = None,
    device: Device = "cpu",
    internal_batch_size: BatchSize = 256,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Cell (i, j): the invariances of input i with the representation of input j.

    The cell is D(t⁻¹(t(E(x_i) | Φ(x_i)) | Φ(x_j))); the diagonal reconstructs the inputs.
    """
    from innx.ops.render.modes import MixRender, render_mix

    common = _common(store, rows, image, 0, autoencoder, device, internal_batch_size)
    options = MixRender(**common, invariance=invariance, layer=layer)
    _report("mix", render_mix(options, output, overwrite=overwrite, log=log), json_output)


@app.command("swap")
def swap(
    store: Store,
    semantic: Semantic,
    factor: Factor,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    autoencoder: Autoencoder = None,
    device: Device = "cpu",
    internal_batch_size: BatchSize = 256,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Cell (i, j): input i with factor F taken from input j.

    The cell is D(e⁻¹(ẑ)), ẑ being e(E(x_i)) with the block of F taken from e(E(x_j)).
    """
    from innx.ops.render.semantic import SwapRender, render_swap

    common = _common(store, rows, image, 0, autoencoder, device, internal_batch_size)
    options = SwapRender(**common, semantic=semantic, factor=factor)
    _report("swap", render_swap(options, output, overwrite=overwrite, log=log), json_output)


@app.command("interpolate")
def interpolate(
    store: Store,
    semantic: Semantic,
    factor: Factor,
    output: PngGif,
    rows: Rows = None,
    image: Images = None,
    sigmas: Annotated[
        float | None,
        typer.Option(
            "--sigmas",
            help="Traverse ±K standard deviations of the factor around each input, instead of "
            "walking from the first input to the second.",
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=2, help="Images in the strip.")] = 7,
    frames: Frames = 24,
    fps: Fps = 12.5,
    autoencoder: Autoencoder = None,
    device: Device = "cpu",
    internal_batch_size: BatchSize = 256,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Walk factor F from one input to another, or traverse it around each input (--sigmas K).

    A walk takes two inputs; a traversal moves the factor by ±K standard deviations along the
    direction it varies most over the store. Writes a strip (OUT.png) and a looping GIF (OUT.gif).
    """
    from innx.ops.render.semantic import InterpolateRender, render_interpolate

    common = _common(store, rows, image, 0, autoencoder, device, internal_batch_size)
    options = InterpolateRender(
        **common,
        semantic=semantic,
        factor=factor,
        sigmas=sigmas,
        steps=steps,
        frames=frames,
        frame_ms=_frame_ms(fps),
    )
    paths = render_interpolate(options, output, overwrite=overwrite, log=log)
    _report("interpolate", paths, json_output)


@app.command("animate")
def animate(
    store: Store,
    invariance: Invariance,
    output: Gif,
    rows: Rows = None,
    image: Images = None,
    layer: Layer = None,
    frames: Frames = 48,
    keyframes: Annotated[
        int, typer.Option("--keyframes", min=2, help="Seeded v the loop passes through.")
    ] = 4,
    temperature: Temperature = 1.0,
    fps: Fps = 12.5,
    seed: Seed = 0,
    autoencoder: Autoencoder = None,
    device: Device = "cpu",
    internal_batch_size: BatchSize = 256,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """A GIF of invariance samples of each input as v moves along a smooth loop.

    The loop runs along great circles through --keyframes seeded v, the last back to the first.
    """
    from innx.ops.render.modes import AnimateRender, render_animate

    common = _common(store, rows, image, seed, autoencoder, device, internal_batch_size)
    options = AnimateRender(
        **common,
        invariance=invariance,
        layer=layer,
        frames=frames,
        keyframes=keyframes,
        temperature=temperature,
        frame_ms=_frame_ms(fps),
    )
    _report("animate", render_animate(options, output, overwrite=overwrite, log=log), json_output)


def _common(
    store: Path,
    rows: str | None,
    images: list[Path] | None,
    seed: int,
    autoencoder: Path | None,
    device: str,
    batch_size: int,
) -> dict[str, Any]:
    """The options every mode shares, as keyword arguments of :class:`innx.ops.render.modes.Render`."""
    return {
        "store": store,
        "rows": _parse_rows(rows),
        "images": tuple(images or ()),
        "seed": seed,
        "autoencoder": autoencoder,
        "device": device,
        "batch_size": batch_size,
    }


def _parse_rows(text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of rows, e.g. 0,5,9", param_hint="--rows"
        ) from None


def _frame_ms(fps: float) -> int:
    return max(1, round(1000 / fps))


def _report(mode: str, paths: list[Path], json_output: bool) -> None:
    """The files written on stdout, one per line, or a JSON summary."""
    if json_output:
        typer.echo(json.dumps({"mode": mode, "outputs": [str(p) for p in paths]}, indent=2))
    else:
        for path in paths:
            typer.echo(str(path))
