"""``innx render swap`` and ``innx render interpolate``: change one named factor of an image
through the semantic INN ``e`` and decode the result.

With ``ẑ = e(E(x))`` split into named blocks (residual last), a swap replaces block ``F`` of one
image by another's, a walk moves it from one image's value to another's, a traversal moves it
by ``±k`` standard deviations along the direction in which the factor varies most over the store;
``D(e⁻¹(ẑ'))`` is the image shown. See :mod:`innx.ops.render.modes` for the shared options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from innx.device import device_line
from innx.errors import ConfigError
from innx.flows import SemanticFlow
from innx.ops.pipeline import Pipeline
from innx.ops.render.grids import (
    FRAME_MS,
    Cell,
    check_outputs,
    check_suffix,
    draw_grid,
    save_gif,
    save_png,
)
from innx.ops.render.modes import Log, Render, cross_grid, heads, open_pipeline, png_output

STATS_ROWS = 4096
"""Store rows (evenly spaced) that give the direction and spread of a factor for traversals."""


@dataclass(frozen=True, kw_only=True)
class SwapRender(Render):
    """Cell ``(i, j)``: input ``i`` with factor ``factor`` of input ``j`` (``e`` in ``semantic``)."""

    semantic: str | Path
    factor: str


@dataclass(frozen=True, kw_only=True)
class InterpolateRender(Render):
    """A walk of factor ``factor`` from the first input to the second (``sigmas`` ``None``), or a
    traversal of ``±sigmas`` standard deviations around each input; ``strip`` images in the
    strip, ``frames`` in the looping GIF."""

    semantic: str | Path
    factor: str
    sigmas: float | None = None
    strip: int = 7
    frames: int = 24
    frame_ms: int = FRAME_MS


def render_swap(
    options: SwapRender, output: str | Path, *, overwrite: bool = False, log: Log | None = None
) -> list[Path]:
    """Write the swap grid to ``output`` (``.png``): the inputs head the rows (kept) and the
    columns (giving the factor)."""
    out = png_output(output, overwrite)
    with open_pipeline(options) as pipe:
        e = pipe.semantic(options.semantic, [options.factor])
        inputs = pipe.inputs(options.rows, options.images, [])
        _log(log, device_line(pipe.device))
        b = len(inputs)
        zhat = encode(pipe, e, inputs.zbar)
        block = block_slice(e, options.factor)
        swapped = zhat.repeat_interleave(b, dim=0)  # row i * b + j: input i …
        swapped[:, block] = zhat[:, block].repeat(b, 1)  # … with the factor of input j
        images = pipe.decode(decode_zhat(pipe, e, swapped)).unflatten(0, (b, b))
        _log(log, f"{b} x {b} swaps of {options.factor} ({options.semantic})")
        corner = (f"{options.factor}: cols", "kept: rows")
        return [save_png(cross_grid(heads(pipe, inputs), images, inputs.captions, corner), out)]


def render_interpolate(
    options: InterpolateRender,
    output: str | Path,
    *,
    overwrite: bool = False,
    log: Log | None = None,
) -> list[Path]:
    """Write the strip to ``output`` (``.png``) and the animation beside it (``.gif``).

    A walk is one row: the first input, ``strip`` images at ``a = 0 … 1``, the second input. A
    traversal has one row per input: the input, then ``strip`` images at ``-k … +k`` standard
    deviations. The GIF loops smoothly over the same path (there and back for a walk;
    ``0 → +k → 0 → -k → 0`` for a traversal), one frame per position.
    """
    out = Path(output)
    check_suffix(out, ".png")
    gif = out.with_suffix(".gif")
    check_outputs([out, gif], overwrite)
    walk = options.sigmas is None
    if options.strip < 2:
        raise ConfigError(f"--strip must be at least 2, got {options.strip}")
    if options.frames < 1 or options.frame_ms < 1:
        raise ConfigError("--frames and the frame duration must be at least 1")
    if not walk and not (math.isfinite(options.sigmas or 0.0) and (options.sigmas or 0.0) > 0):
        raise ConfigError(f"--sigmas must be a number > 0, got {options.sigmas}")
    with open_pipeline(options) as pipe:
        e = pipe.semantic(options.semantic, [options.factor])
        inputs = pipe.inputs(options.rows, options.images, [])
        if walk and len(inputs) != 2:
            raise ConfigError(
                f"a walk needs two inputs, got {len(inputs)}; pass two rows or images, "
                "or --sigmas K for a traversal around each input"
            )
        _log(log, device_line(pipe.device))
        zhat, block = encode(pipe, e, inputs.zbar), block_slice(e, options.factor)
        strip_at = torch.linspace(0, 1, options.strip)
        turn = torch.arange(options.frames) * (2 * math.pi / options.frames)
        if walk:
            step, frame_at = None, (1 - torch.cos(turn)) / 2
            text, unit = "a={:.2f}", "a={:.2f}"
        else:
            k = float(options.sigmas or 0.0)
            direction, spread = factor_direction(pipe, e, block)
            step, strip_at, frame_at = (
                direction * spread,
                (strip_at * 2 - 1) * k,
                torch.sin(turn) * k,
            )
            text, unit = "{:+.1f}sd", "{:+.2f}sd"

        def images(at: torch.Tensor) -> torch.Tensor:  # [T] positions → [rows, T, C, S, S]
            target = _moved(zhat, block, at, step)
            return pipe.decode(decode_zhat(pipe, e, target)).unflatten(0, (-1, len(at)))

        ends, captions = heads(pipe, inputs), inputs.captions
        rows = [options.factor] if walk else captions
        cells, labels = _layout(
            ends, captions, images(strip_at), [text.format(a) for a in strip_at.tolist()], walk
        )
        strip = draw_grid(cells, row_labels=rows, col_labels=labels)
        moving, pictures = images(frame_at), []
        for f, at in enumerate(frame_at.tolist()):
            cells, labels = _layout(ends, captions, moving[:, f : f + 1], [unit.format(at)], walk)
            pictures.append(draw_grid(cells, row_labels=rows, col_labels=labels))
        if walk:
            _log(log, f"walk of {options.factor} from {captions[0]} to {captions[1]}")
        else:
            _log(log, f"traversal of {options.factor} by +-{k:g} sd ({spread:.3g} per sd)")
        return [save_png(strip, out), save_gif(pictures, gif, options.frame_ms)]


def _moved(
    zhat: torch.Tensor, block: slice, at: torch.Tensor, step: torch.Tensor | None
) -> torch.Tensor:
    """``ẑ`` with the factor's block moved to each position of ``at`` ``[T]``: from the first
    input's value to the second's (``step`` ``None``, a walk; ``[T, d]``), or by ``at · step``
    from each input's own value (a traversal; ``[B · T, d]``, input-major)."""
    if step is None:
        target = zhat[0].repeat(len(at), 1)
        target[:, block] = torch.lerp(zhat[0, block], zhat[1, block], at[:, None])
        return target
    target = zhat.repeat_interleave(len(at), dim=0)
    target[:, block] = target[:, block] + at.repeat(len(zhat))[:, None] * step
    return target


def _layout(
    ends: torch.Tensor, captions: list[str], images: torch.Tensor, labels: list[str], walk: bool
) -> tuple[list[list[Cell]], list[str]]:
    """Cells and column captions of a strip: a walk between its two inputs, or a traversal
    after each input."""
    if walk:
        return [[ends[0], *images[0], ends[1]]], [captions[0], *labels, captions[1]]
    return [[ends[i], *images[i]] for i in range(len(images))], ["image", *labels]


# -- e in batches ---------------------------------------------------------------------------------


def block_slice(e: SemanticFlow, factor: str) -> slice:
    """The dimensions of ``factor``'s block in ``ẑ``."""
    start = 0
    for name, size in e.config.block_sizes.items():
        if name == factor:
            return slice(start, start + size)
        start += size
    raise ConfigError(f"e has no factor {factor!r}; its factors: {', '.join(e.factor_names)}")


@torch.no_grad()
def encode(pipe: Pipeline, e: SemanticFlow, zbar: torch.Tensor) -> torch.Tensor:
    """``ẑ = e(zbar)`` ``[B, d]`` on the CPU, ``pipe.batch_size`` rows at a time."""
    parts = [
        e(zbar[s : s + pipe.batch_size].to(pipe.device))[0].float().cpu()
        for s in range(0, len(zbar), pipe.batch_size)
    ]
    return torch.cat(parts)


@torch.no_grad()
def decode_zhat(pipe: Pipeline, e: SemanticFlow, zhat: torch.Tensor) -> torch.Tensor:
    """``zbar = e⁻¹(ẑ)`` ``[B, d]`` on the CPU, ``pipe.batch_size`` rows at a time."""
    parts = [
        e.inverse(zhat[s : s + pipe.batch_size].to(pipe.device)).float().cpu()
        for s in range(0, len(zhat), pipe.batch_size)
    ]
    return torch.cat(parts)


def factor_direction(pipe: Pipeline, e: SemanticFlow, block: slice) -> tuple[torch.Tensor, float]:
    """The unit direction ``[k]`` in which a factor's block varies most over the store (its
    first principal axis; the largest component made positive) and the standard deviation of
    the block along it, from up to :data:`STATS_ROWS` evenly spaced rows."""
    store = pipe.store
    rows = np.unique(np.linspace(0, store.n - 1, min(store.n, STATS_ROWS)).astype(np.int64))
    rows = rows[np.asarray(store.index[rows]) >= 0]
    if len(rows) < 2:
        raise ConfigError(f"{store.path} has too few rows to measure a factor's spread")
    latents = torch.from_numpy(np.asarray(store.latents[rows])).float()  # type: ignore[index]
    values = encode(pipe, e, latents)[:, block].double()
    values = values - values.mean(dim=0)
    _, singular, vt = torch.linalg.svd(values, full_matrices=False)
    direction = vt[0]
    direction = direction * torch.sign(direction[direction.abs().argmax()])
    spread = float(singular[0]) / math.sqrt(len(values) - 1)
    return direction.float(), spread


def _log(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)
