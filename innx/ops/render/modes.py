"""``innx render``: what a layer ignores, as pictures. One function per mode, each writing a
labelled PNG grid (and a GIF where it moves) and returning the paths it wrote.

The modes that read an invariance run ``t`` live here: ``samples`` (invariance samples
``D(t⁻¹(v | z))``, ``v ~ N(0, I)``), ``layers`` (the same for several layers side by side),
``mix`` (the invariances of one input with the representation of another) and ``animate``
(samples along a smooth loop in ``v``). The modes of the semantic run ``e`` (``swap``,
``interpolate``) are in :mod:`innx.ops.render.semantic`.

Inputs are store rows (``rows``) or image files (``images``, encoded through the store's backbone
and autoencoder). All randomness comes from a CPU generator seeded with ``seed``: the same options
give the same bytes. Every output is checked before any work (an existing one is refused unless
``overwrite``) and written atomically.

Example (``innx render samples acts.h5 --invariance runs/inv-pool --rows 0,5 -o s.png``)::

    from innx.ops.render.modes import SamplesRender, render_samples

    options = SamplesRender(store="acts.h5", invariance="runs/inv-pool", rows=(0, 5))
    render_samples(options, "s.png")  # [Path("s.png")]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from innx.device import AUTO, device_line, resolve_device
from innx.errors import ConfigError
from innx.flows import InvarianceFlow
from innx.kernels.dispatch import check_kernels
from innx.ops.pipeline import BATCH, Inputs, Pipeline
from innx.ops.render.grids import (
    FRAME_MS,
    Cell,
    check_outputs,
    check_suffix,
    draw_grid,
    save_gif,
    save_png,
)

if TYPE_CHECKING:
    from PIL import Image

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Render:
    """What every mode takes: the store, the inputs (store ``rows`` or image files ``images``),
    the seed, an autoencoder run overriding the store's, the device, the flows' elementwise
    work (``kernels``: ``auto``, ``torch`` or ``triton``, :mod:`innx.kernels.dispatch`) and the
    rows per forward pass (``batch_size``, ``--internal-batch-size``)."""

    store: str | Path
    rows: tuple[int, ...] = ()
    images: tuple[str | Path, ...] = ()
    seed: int = 0
    autoencoder: str | Path | None = None
    device: str = AUTO
    kernels: str = "auto"
    batch_size: int = BATCH

    def __post_init__(self) -> None:
        check_kernels(self.kernels)
        resolve_device(self.device)  # a device this machine lacks: refused before any work


@dataclass(frozen=True, kw_only=True)
class SamplesRender(Render):
    """Per input: the original, its reconstruction ``D(E(x))`` and ``samples`` invariance
    samples of the ``t`` in ``invariance`` (checked to be of ``layer`` when given), with
    ``v ~ N(0, temperature² I)``. Column ``j`` uses the same ``v`` for every input."""

    invariance: str | Path
    layer: str | None = None
    samples: int = 8
    temperature: float = 1.0


@dataclass(frozen=True, kw_only=True)
class LayersRender(Render):
    """One input; one column of ``samples`` invariance samples per run in ``invariance`` (the
    runs' layers are checked against ``layers`` when given). Row ``j`` uses the same ``v``."""

    invariance: tuple[str | Path, ...]
    layers: tuple[str, ...] = ()
    samples: int = 8
    temperature: float = 1.0


@dataclass(frozen=True, kw_only=True)
class MixRender(Render):
    """Cell ``(i, j)``: ``D(t⁻¹(t(E(x_i) | Φ(x_i)) | Φ(x_j)))``, the invariances of input ``i``
    with the representation of input ``j``."""

    invariance: str | Path
    layer: str | None = None


@dataclass(frozen=True, kw_only=True)
class AnimateRender(Render):
    """Invariance samples of every input along a loop through ``keyframes`` seeded ``v``
    (great circles between consecutive ones, the last back to the first), ``frames`` frames."""

    invariance: str | Path
    layer: str | None = None
    frames: int = 48
    keyframes: int = 4
    temperature: float = 1.0
    frame_ms: int = FRAME_MS


def render_samples(
    options: SamplesRender, output: str | Path, *, overwrite: bool = False, log: Log | None = None
) -> list[Path]:
    """Write the grid of invariance samples to ``output`` (``.png``): one row per input,
    columns ``image`` (when there are images), ``recon``, ``v 1`` … ``v N``."""
    out = png_output(output, overwrite)
    _positive(samples=options.samples)
    _non_negative(temperature=options.temperature)
    with open_pipeline(options) as pipe:
        run = pipe.invariance(options.invariance, options.layer)
        inputs = pipe.inputs(options.rows, options.images, [run.layer])
        _log(log, device_line(pipe.device))
        n, b = options.samples, len(inputs)
        v = normal(options.seed, n, run.flow.config.zbar_dim) * options.temperature
        pairs = torch.arange(b).repeat_interleave(n), torch.arange(n).repeat(b)
        zbar = invert(
            pipe, run.flow, v, inputs.layers[run.layer], v_index=pairs[1], z_index=pairs[0]
        )
        samples = pipe.decode(zbar).unflatten(0, (b, n))
        recon = pipe.decode(inputs.zbar)
        originals = _originals(inputs)
        cells = [[*originals[i], recon[i], *samples[i]] for i in range(b)]
        labels = ["image"] * len(originals[0]) + ["recon"] + [f"v {j + 1}" for j in range(n)]
        _log(log, f"{b} inputs x {n} invariance samples of layer {run.layer} ({run.path})")
        return [save_png(draw_grid(cells, row_labels=inputs.captions, col_labels=labels), out)]


def render_layers(
    options: LayersRender, output: str | Path, *, overwrite: bool = False, log: Log | None = None
) -> list[Path]:
    """Write what each layer ignores to ``output`` (``.png``): columns ``image`` and ``recon``
    (first row only), then one per run labelled by its layer; rows ``v 1`` … ``v N``."""
    out = png_output(output, overwrite)
    _positive(samples=options.samples)
    _non_negative(temperature=options.temperature)
    if not options.invariance:
        raise ConfigError("give the invariance run of each layer: --invariance RUN (repeat it)")
    if options.layers and len(options.layers) != len(options.invariance):
        raise ConfigError(
            f"{len(options.layers)} --layer for {len(options.invariance)} --invariance runs; "
            "give one layer per run, in the same order, or none"
        )
    with open_pipeline(options) as pipe:
        names = options.layers or (None,) * len(options.invariance)
        runs = [pipe.invariance(r, name) for r, name in zip(options.invariance, names, strict=True)]
        layers = list(dict.fromkeys(run.layer for run in runs))
        inputs = pipe.inputs(options.rows, options.images, layers)
        if len(inputs) != 1:
            raise ConfigError(f"layers renders one input, got {len(inputs)}; pass one row or image")
        _log(log, device_line(pipe.device))
        n = options.samples
        columns = []
        for run in runs:
            v = normal(options.seed, n, run.flow.config.zbar_dim) * options.temperature
            zbar = invert(
                pipe, run.flow, v, inputs.layers[run.layer], z_index=torch.zeros(n).long()
            )
            columns.append(pipe.decode(zbar))
        head: list[Cell] = [*_originals(inputs)[0], pipe.decode(inputs.zbar)[0]]
        cells = [
            [*(head if j == 0 else [None] * len(head)), *(col[j] for col in columns)]
            for j in range(n)
        ]
        labels = ["image"] * (len(head) - 1) + ["recon"] + [run.layer for run in runs]
        _log(log, f"{n} invariance samples of {inputs.captions[0]} for layers {', '.join(layers)}")
        rows = [f"v {j + 1}" for j in range(n)]
        return [save_png(draw_grid(cells, row_labels=rows, col_labels=labels), out)]


def render_mix(
    options: MixRender, output: str | Path, *, overwrite: bool = False, log: Log | None = None
) -> list[Path]:
    """Write the mixing grid to ``output`` (``.png``): the inputs head the rows (whose
    invariances ``v`` are kept) and the columns (whose representation ``z`` is used)."""
    out = png_output(output, overwrite)
    with open_pipeline(options) as pipe:
        run = pipe.invariance(options.invariance, options.layer)
        inputs = pipe.inputs(options.rows, options.images, [run.layer])
        _log(log, device_line(pipe.device))
        z, b = inputs.layers[run.layer], len(inputs)
        v = forward(pipe, run.flow, inputs.zbar, z)
        rows, cols = torch.arange(b).repeat_interleave(b), torch.arange(b).repeat(b)
        mixed = pipe.decode(invert(pipe, run.flow, v, z, v_index=rows, z_index=cols))
        _log(log, f"{b} x {b} mixes through layer {run.layer} ({run.path})")
        picture = cross_grid(
            heads(pipe, inputs), mixed.unflatten(0, (b, b)), inputs.captions, ("z: cols", "v: rows")
        )
        return [save_png(picture, out)]


def render_animate(
    options: AnimateRender, output: str | Path, *, overwrite: bool = False, log: Log | None = None
) -> list[Path]:
    """Write the animation to ``output`` (``.gif``): per frame, one row per input with columns
    ``image`` (when there are images) and the moving sample."""
    out = Path(output)
    check_suffix(out, ".gif")
    check_outputs([out], overwrite)
    _positive(frames=options.frames, frame_ms=options.frame_ms)
    _non_negative(temperature=options.temperature)
    if options.keyframes < 2:
        raise ConfigError(f"--keyframes must be at least 2, got {options.keyframes}")
    with open_pipeline(options) as pipe:
        run = pipe.invariance(options.invariance, options.layer)
        inputs = pipe.inputs(options.rows, options.images, [run.layer])
        _log(log, device_line(pipe.device))
        keys = normal(options.seed, options.keyframes, run.flow.config.zbar_dim)
        v = loop_path(keys, options.frames) * options.temperature
        b, f = len(inputs), options.frames
        pairs = torch.arange(b).repeat_interleave(f), torch.arange(f).repeat(b)
        zbar = invert(
            pipe, run.flow, v, inputs.layers[run.layer], v_index=pairs[1], z_index=pairs[0]
        )
        samples = pipe.decode(zbar).unflatten(0, (b, f))
        originals = _originals(inputs)
        frames = [
            draw_grid(
                [[*originals[i], samples[i, k]] for i in range(b)],
                row_labels=inputs.captions,
                col_labels=["image"] * len(originals[0]) + [f"v {k + 1}/{f}"],
            )
            for k in range(f)
        ]
        _log(log, f"{f} frames of {b} inputs through layer {run.layer} ({run.path})")
        return [save_gif(frames, out, options.frame_ms)]


# -- shared by the modes --------------------------------------------------------------------------


def open_pipeline(options: Render) -> Pipeline:
    return Pipeline(
        options.store,
        autoencoder=options.autoencoder,
        device=options.device,
        batch_size=options.batch_size,
        kernels=options.kernels,
    )


def normal(seed: int, n: int, dim: int) -> torch.Tensor:
    """``n`` standard normal vectors ``[n, dim]`` from a CPU generator seeded with ``seed``."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def loop_path(keys: torch.Tensor, frames: int) -> torch.Tensor:
    """``frames`` points ``[frames, d]`` on a closed loop through ``keys`` ``[K, d]``: spherical
    interpolation from each key to the next, the last back to the first, at even steps."""
    k = len(keys)
    out = []
    for f in range(frames):
        position = f * k / frames
        i = int(position)
        out.append(slerp(keys[i], keys[(i + 1) % k], position - i))
    return torch.stack(out)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point at ``t`` ∈ [0, 1] of the great circle from ``a`` to ``b`` (norms interpolated
    linearly); a straight line when they are (anti)parallel."""
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:
        return (1 - t) * a + t * b
    unit = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return unit * ((1 - t) * na + t * nb)


@torch.no_grad()
def forward(pipe: Pipeline, t: InvarianceFlow, zbar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``v = t(zbar | z)`` ``[B, d]`` on the CPU, ``pipe.batch_size`` rows at a time."""
    parts = []
    for s in range(0, len(zbar), pipe.batch_size):
        rows = slice(s, s + pipe.batch_size)
        parts.append(t(zbar[rows].to(pipe.device), z[rows].to(pipe.device))[0].float().cpu())
    return torch.cat(parts)


@torch.no_grad()
def invert(
    pipe: Pipeline,
    t: InvarianceFlow,
    v: torch.Tensor,
    z: torch.Tensor,
    *,
    v_index: torch.Tensor | None = None,
    z_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """``zbar = t⁻¹(v[v_index] | z[z_index])`` ``[M, d]`` on the CPU, gathering the rows one
    batch at a time (so ``z`` is never repeated in memory)."""
    v_index = torch.arange(len(v)) if v_index is None else v_index
    z_index = torch.arange(len(z)) if z_index is None else z_index
    parts = []
    for s in range(0, len(v_index), pipe.batch_size):
        vs, zs = v[v_index[s : s + pipe.batch_size]], z[z_index[s : s + pipe.batch_size]]
        parts.append(t.inverse(vs.to(pipe.device), zs.to(pipe.device)).float().cpu())
    return torch.cat(parts)


def cross_grid(
    heads: torch.Tensor,
    cells: torch.Tensor,
    captions: Sequence[str],
    corner: tuple[str, str] = ("", ""),
) -> Image.Image:
    """A ``(B + 1) × (B + 1)`` grid: ``heads[i]`` before row ``i`` and above column ``i``,
    ``cells[i, j]`` inside; rows and columns captioned, ``corner`` the captions (row, column)
    of the head row and the head column."""
    b = len(heads)
    grid: list[list[Cell]] = [[None, *heads]]
    grid += [[heads[i], *cells[i]] for i in range(b)]
    return draw_grid(grid, row_labels=[corner[0], *captions], col_labels=[corner[1], *captions])


def heads(pipe: Pipeline, inputs: Inputs) -> torch.Tensor:
    """The inputs' images, or their reconstructions when the store has no thumbnails."""
    return inputs.images if inputs.images is not None else pipe.decode(inputs.zbar)


def _originals(inputs: Inputs) -> list[list[Cell]]:
    """Per input, ``[image]``, or ``[]`` when the store has no thumbnails."""
    if inputs.images is None:
        return [[] for _ in range(len(inputs))]
    return [[image] for image in inputs.images]


def png_output(output: str | Path, overwrite: bool) -> Path:
    """``output`` as a path, once it is a ``.png`` that may be written (exists only with ``overwrite``)."""
    out = Path(output)
    check_suffix(out, ".png")
    check_outputs([out], overwrite)
    return out


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _non_negative(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0 or not math.isfinite(value):
            raise ConfigError(f"--{name} must be a finite number >= 0, got {value}")


def _log(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)
