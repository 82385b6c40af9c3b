"""The PNG figures of an ``innx analyze`` report, drawn with matplotlib's object API (no pyplot,
no global backend: safe in any process)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

SHARE_FIGURE = "share.png"
LAYERS_FIGURE = "layers.png"
KEPT_FIGURE = "kept.png"
PRESERVATION_FIGURE = "preservation.png"
DPI = 120
MARKS = {"doubtful": "†", "not interpretable": "✗"}

FIGURE_AFTER = {
    KEPT_FIGURE: "Kept: what invariance samples still show",
    SHARE_FIGURE: "Share of variance explained by each layer",
    LAYERS_FIGURE: "Share of variance explained by each layer",
    PRESERVATION_FIGURE: "Preservation of the representation",
}
"""The title of the table each figure follows in the report."""


def draw_figures(report: dict[str, Any], directory: Path) -> list[str]:
    """Draw the figures of ``report`` into ``directory``; return their file names."""
    names = []
    if report["kept"]["available"]:
        layers, factors = report["layers"], list(report["kept"]["judge"]["factors"])
        heatmap(layers, factors, report["kept"]["layers"], "kept by invariance samples",
                directory / KEPT_FIGURE)  # fmt: skip
        names.append(KEPT_FIGURE)
    heatmap(report["layers"], report["factors"], report["share_explained"],
            "share of variance explained by the layer", directory / SHARE_FIGURE)  # fmt: skip
    share_bars(report, directory / LAYERS_FIGURE)
    names += [SHARE_FIGURE, LAYERS_FIGURE]
    if report["preservation"]["available"]:
        preservation_bars(report, directory / PRESERVATION_FIGURE)
        names.append(PRESERVATION_FIGURE)
    return names


def _values(
    layers: list[str], columns: list[str], cells: dict[str, dict[str, Any]]
) -> tuple[list[list[float]], list[list[str]]]:
    """The cells' values and verdict marks, layers × columns."""
    values = [
        [_number((cells[layer].get(c) or {}).get("value")) for c in columns] for layer in layers
    ]
    marks = [
        [MARKS.get((cells[layer].get(c) or {}).get("verdict", ""), "") for c in columns]
        for layer in layers
    ]
    return values, marks


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def heatmap(
    layers: list[str], columns: list[str], cells: dict[str, dict[str, Any]], title: str, path: Path
) -> None:
    """Layers (rows, in order) × concepts (columns): each cell's value and verdict mark."""
    from matplotlib.figure import Figure

    values, marks = _values(layers, columns, cells)
    fig = Figure(figsize=(1.5 + 1.1 * len(columns), 1.2 + 0.55 * len(layers)), dpi=DPI)
    ax = fig.add_subplot()
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(layers)), layers)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            text = "–" if math.isnan(value) else f"{value:.2f}{marks[i][j]}"
            ax.text(j, i, text, ha="center", va="center", color="white" if value < 0.6 else "k")
    if any(m for row in marks for m in row):
        title += " († doubtful, ✗ not interpretable)"
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)


def share_bars(report: dict[str, Any], path: Path) -> None:
    """One panel per layer: a bar per concept, the share of its variance the layer explains."""
    from matplotlib.figure import Figure

    layers, factors = report["layers"], report["factors"]
    values, _ = _values(layers, factors, report["share_explained"])
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
