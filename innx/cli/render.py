"""``innx render``: pictures of what a layer encodes and ignores, from a store and its runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from innx.cli.params import (
    Autoencoder,
    DefaultsOf,
    Device,
    Fps,
    Frames,
    Images,
    InternalBatchSize,
    Invariance,
    InvarianceRuns,
    JsonFlag,
    Kernels,
    LayerCheck,
    LayerChecks,
    Overwrite,
    RenderFactor,
    Rows,
    Samples,
    Seed,
    Semantic,
    Temperature,
    output_option,
    parse_invariance,
    parse_rows,
)
from innx.cli.progress import log
from innx.errors import ConfigError

app = typer.Typer(
    help="Render invariance samples, mixes, factor swaps and walks as labelled PNG grids and GIFs.",
    no_args_is_help=True,
)

SAMPLES = DefaultsOf("innx.ops.render.modes:SamplesRender")
LAYERS = DefaultsOf("innx.ops.render.modes:LayersRender")
MIX = DefaultsOf("innx.ops.render.modes:MixRender")
ANIMATE = DefaultsOf("innx.ops.render.modes:AnimateRender")
SWAP = DefaultsOf("innx.ops.render.semantic:SwapRender")
INTERPOLATE = DefaultsOf("innx.ops.render.semantic:InterpolateRender")

Store = Annotated[
    Path, typer.Argument(help="An activation store with latents (innx extract --autoencoder).")
]
Png = Annotated[Path, output_option("The PNG to write (OUT.png).")]


def _fps(frame_ms: int) -> float:
    """``--fps`` of a GIF whose frames last ``frame_ms`` (the ops' unit)."""
    return 1000 / frame_ms


INTERPOLATE_FPS = INTERPOLATE.through("frame_ms", _fps)
ANIMATE_FPS = ANIMATE.through("frame_ms", _fps)


@app.command("samples")
def samples(
    store: Store,
    invariance: Invariance,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    layer: LayerCheck = None,
    n: Samples = SAMPLES.samples,
    temperature: Temperature = SAMPLES.temperature,
    seed: Seed = SAMPLES.seed,
    autoencoder: Autoencoder = None,
    device: Device = SAMPLES.device,
    kernels: Kernels = SAMPLES.kernels,
    internal_batch_size: InternalBatchSize = SAMPLES.batch_size,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Per input: the image, its reconstruction and N invariance samples D(t⁻¹(v | z)).

    Column j uses the same v ~ N(0, T² I) for every input.
    """
    from innx.ops.render.modes import SamplesRender, render_samples

    run, layer = _invariance(invariance, layer)
    common = _common(store, rows, image, seed, autoencoder, device, kernels, internal_batch_size)
    options = SamplesRender(
        **common, invariance=run, layer=layer, samples=n, temperature=temperature
    )
    _report("samples", render_samples(options, output, overwrite=overwrite, log=log), json_output)


@app.command("layers")
def layers(
    store: Store,
    invariance: InvarianceRuns,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    layer: LayerChecks = None,
    n: Samples = LAYERS.samples,
    temperature: Temperature = LAYERS.temperature,
    seed: Seed = LAYERS.seed,
    autoencoder: Autoencoder = None,
    device: Device = LAYERS.device,
    kernels: Kernels = LAYERS.kernels,
    internal_batch_size: InternalBatchSize = LAYERS.batch_size,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """One input; a column of N invariance samples for each layer's run: what each layer ignores.

    Row j uses the same seeded v for every layer.
    """
    from innx.ops.render.modes import LayersRender, render_layers

    runs, checks = _invariance_runs(invariance, layer or [])
    common = _common(store, rows, image, seed, autoencoder, device, kernels, internal_batch_size)
    options = LayersRender(
        **common, invariance=runs, layers=checks, samples=n, temperature=temperature
    )
    _report("layers", render_layers(options, output, overwrite=overwrite, log=log), json_output)


@app.command("mix")
def mix(
    store: Store,
    invariance: Invariance,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    layer: LayerCheck = None,
    autoencoder: Autoencoder = None,
    device: Device = MIX.device,
    kernels: Kernels = MIX.kernels,
    internal_batch_size: InternalBatchSize = MIX.batch_size,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Cell (i, j): the invariances of input i with the representation of input j.

    The cell is D(t⁻¹(t(E(x_i) | Φ(x_i)) | Φ(x_j))); the diagonal reconstructs the inputs.
    """
    from innx.ops.render.modes import MixRender, render_mix

    run, layer = _invariance(invariance, layer)
    common = _common(store, rows, image, None, autoencoder, device, kernels, internal_batch_size)
    options = MixRender(**common, invariance=run, layer=layer)
    _report("mix", render_mix(options, output, overwrite=overwrite, log=log), json_output)


@app.command("swap")
def swap(
    store: Store,
    semantic: Semantic,
    factor: RenderFactor,
    output: Png,
    rows: Rows = None,
    image: Images = None,
    autoencoder: Autoencoder = None,
    device: Device = SWAP.device,
    kernels: Kernels = SWAP.kernels,
    internal_batch_size: InternalBatchSize = SWAP.batch_size,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Cell (i, j): input i with factor F taken from input j.

    The cell is D(e⁻¹(ẑ)), ẑ being e(E(x_i)) with the block of F taken from e(E(x_j)).
    """
    from innx.ops.render.semantic import SwapRender, render_swap

    common = _common(store, rows, image, None, autoencoder, device, kernels, internal_batch_size)
    options = SwapRender(**common, semantic=semantic, factor=factor)
    _report("swap", render_swap(options, output, overwrite=overwrite, log=log), json_output)


@app.command("interpolate")
def interpolate(
    store: Store,
    semantic: Semantic,
    factor: RenderFactor,
    output: Annotated[Path, output_option("The PNG to write; the GIF goes beside it (OUT.gif).")],
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
    strip: Annotated[
        int, typer.Option("--strip", min=2, help="Images in the strip (OUT.png).")
    ] = INTERPOLATE.strip,
    frames: Frames = INTERPOLATE.frames,
    fps: Fps = INTERPOLATE_FPS,
    autoencoder: Autoencoder = None,
    device: Device = INTERPOLATE.device,
    kernels: Kernels = INTERPOLATE.kernels,
    internal_batch_size: InternalBatchSize = INTERPOLATE.batch_size,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """Walk factor F from one input to another, or traverse it around each input (--sigmas K).

    A walk takes two inputs; a traversal moves the factor by ±K standard deviations along the
    direction it varies most over the store. Writes a strip of --strip images (OUT.png) and a
    looping GIF of --frames frames (OUT.gif).
    """
    from innx.ops.render.semantic import InterpolateRender, render_interpolate

    common = _common(store, rows, image, None, autoencoder, device, kernels, internal_batch_size)
    options = InterpolateRender(
        **common,
        semantic=semantic,
        factor=factor,
        sigmas=sigmas,
        strip=strip,
        frames=frames,
        frame_ms=_frame_ms(fps),
    )
    paths = render_interpolate(options, output, overwrite=overwrite, log=log)
    _report("interpolate", paths, json_output)


@app.command("animate")
def animate(
    store: Store,
    invariance: Invariance,
    output: Annotated[Path, output_option("The GIF to write (OUT.gif).")],
    rows: Rows = None,
    image: Images = None,
    layer: LayerCheck = None,
    frames: Frames = ANIMATE.frames,
    keyframes: Annotated[
        int, typer.Option("--keyframes", min=2, help="Seeded v the loop passes through.")
    ] = ANIMATE.keyframes,
    temperature: Temperature = ANIMATE.temperature,
    fps: Fps = ANIMATE_FPS,
    seed: Seed = ANIMATE.seed,
    autoencoder: Autoencoder = None,
    device: Device = ANIMATE.device,
    kernels: Kernels = ANIMATE.kernels,
    internal_batch_size: InternalBatchSize = ANIMATE.batch_size,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    """A GIF of invariance samples of each input as v moves along a smooth loop.

    The loop runs along great circles through --keyframes seeded v, the last back to the first.
    """
    from innx.ops.render.modes import AnimateRender, render_animate

    run, layer = _invariance(invariance, layer)
    common = _common(store, rows, image, seed, autoencoder, device, kernels, internal_batch_size)
    options = AnimateRender(
        **common,
        invariance=run,
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
    seed: int | None,
    autoencoder: Path | None,
    device: str,
    kernels: str,
    batch_size: int,
) -> dict[str, Any]:
    """The options every mode shares, as keyword arguments of :class:`innx.ops.render.modes.Render`
    (``seed`` ``None``: a mode that draws nothing keeps the default)."""
    common = {
        "store": store,
        "rows": parse_rows(rows),
        "images": tuple(images or ()),
        "autoencoder": autoencoder,
        "device": device,
        "kernels": kernels,
        "batch_size": batch_size,
    }
    return common if seed is None else {**common, "seed": seed}


def _invariance(spec: str, layer: str | None) -> tuple[str, str | None]:
    """``--invariance [LAYER=]RUN`` with ``--layer``: the run and the layer to check it against."""
    run, named = parse_invariance(spec)
    if named is not None and layer is not None and named != layer:
        raise ConfigError(
            f"--invariance {spec} names layer {named}, --layer {layer}; give the layer once"
        )
    return run, named or layer


def _invariance_runs(
    specs: list[str], layers: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Several ``--invariance [LAYER=]RUN`` and their ``--layer`` checks, if any: the runs and
    the layers to check them against (one per run, or none)."""
    parsed = [parse_invariance(spec) for spec in specs]
    runs = tuple(run for run, _ in parsed)
    for spec, layer in zip(specs, layers, strict=False):
        _invariance(spec, layer)  # refuses a LAYER= that its --layer contradicts
    if layers:
        return runs, tuple(layers)
    named = [layer for _, layer in parsed if layer is not None]
    if named and len(named) != len(parsed):
        raise ConfigError("name the layer of every --invariance run (LAYER=RUN) or of none")
    return runs, tuple(named)


def _frame_ms(fps: float) -> int:
    return max(1, round(1000 / fps))


def _report(mode: str, paths: list[Path], json_output: bool) -> None:
    """The files written on stdout, one per line, or a JSON summary."""
    if json_output:
        typer.echo(json.dumps({"mode": mode, "outputs": [str(p) for p in paths]}, indent=2))
    else:
        for path in paths:
            typer.echo(str(path))
