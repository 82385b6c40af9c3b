"""The PNG figures of an ``innx analyze`` report, drawn with matplotlib's object API (no pyplot,
no global backend: safe in any process)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

SHARE_FIGURE = "share.png"
LAYERS_FIGURE = "layers.png"
PRESERVATION_FIGURE = "preservation.png"
DPI = 120


def draw_figures(report: dict[str, Any], directory: Path) -> list[str]:
    """Draw the figures of ``report`` into ``directory``; return their file names."""
    names = [SHARE_FIGURE, LAYERS_FIGURE]
    share_heatmap(report, directory / SHARE_FIGURE)
    share_bars(report, directory / LAYERS_FIGURE)
    if report["preservation"]["available"]:
        preservation_bars(report, directory / PRESERVATION_FIGURE)
        names.append(PRESERVATION_FIGURE)
    return names


def _matrix(report: dict[str, Any]) -> tuple[list[str], list[str], list[list[float]]]:
    layers, factors = report["layers"], report["factors"]
    table = report["share_explained"]
    values = [[_number(table[layer].get(f)) for f in factors] for layer in layers]
    return layers, factors, values


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def share_heatmap(report: dict[str, Any], path: Path) -> None:
    """Layers (rows, in order) × concepts (columns): the share of variance explained."""
    from matplotlib.figure import Figure

    layers, factors, values = _matrix(report)
    fig = Figure(figsize=(1.5 + 1.1 * len(factors), 1.2 + 0.55 * len(layers)), dpi=DPI)
    ax = fig.add_subplot()
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(factors)), factors, rotation=30, ha="right")
    ax.set_yticks(range(len(layers)), layers)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            text = "–" if math.isnan(value) else f"{value:.2f}"
            ax.text(j, i, text, ha="center", va="center", color="white" if value < 0.6 else "k")
    ax.set_title("share of variance explained by the layer")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)


def share_bars(report: dict[str, Any], path: Path) -> None:
    """One panel per layer: a bar per concept, the share of its variance the layer explains."""
    from matplotlib.figure import Figure

    layers, factors, values = _matrix(report)
    columns = min(4, len(layers))
    rows = math.ceil(len(layers) / columns)
    width = max(2.4, 0.5 * len(factors) + 1.0)
    fig = Figure(figsize=(width * columns, 2.6 * rows), dpi=DPI)
    colours = [f"C{i % 10}" for i in range(len(factors))]
    for k, (layer, row) in enumerate(zip(layers, values, strict=True)):
        ax = fig.add_subplot(rows, columns, k + 1)
        heights = [0.0 if math.isnan(v) else v for v in row]
        ax.bar(range(len(factors)), heights, color=colours)
        ax.set_ylim(0, 1)
        ax.set_xticks(range(len(factors)), factors, rotation=45, ha="right", fontsize=8)
        ax.set_title(layer, fontsize=10)
        if k % columns == 0:
            ax.set_ylabel("share explained")
    fig.tight_layout()
    fig.savefig(path)


def preservation_bars(report: dict[str, Any], path: Path) -> None:
    """Per layer: cosine similarity with ``z`` and classifier agreement, for invariance samples
    beside reconstructions (and, for the cosine, another row's ``z``)."""
    from matplotlib.figure import Figure

    layers = report["layers"]
    figures = report["preservation"]["layers"]
    panels = [
        (
            "cosine similarity with z",
            [
                ("samples", "cosine_samples"),
                ("reconstructions", "cosine_reconstructions"),
                ("another row", "cosine_shuffled"),
            ],
        ),
        (
            "classifier agreement",
            [("samples", "agreement_samples"), ("reconstructions", "agreement_reconstructions")],
        ),
    ]
    fig = Figure(figsize=(2.0 + 1.6 * len(layers), 5.2), dpi=DPI)
    for k, (title, series) in enumerate(panels):
        ax = fig.add_subplot(2, 1, k + 1)
        step = 0.8 / len(series)
        for s, (label, key) in enumerate(series):
            heights = [_number((figures.get(layer) or {}).get(key)) for layer in layers]
            xs = [i - 0.4 + step * (s + 0.5) for i in range(len(layers))]
            ax.bar(xs, [0.0 if math.isnan(h) else h for h in heights], step, label=label)
        ax.set_xticks(range(len(layers)), layers)
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.0)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path)
