"""The PNG figures of an ``innx compare`` comparison: per measure (kept, share explained) one panel
per concept, the figure against the layer's depth (0: each model's first layer, 1: its last), one
line per model with its intervals as bars and its own layer names at the points. Drawn with
matplotlib's object API (no pyplot, no global backend: safe in any process)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from innx.ops.analyze.figures import DPI, MARKS

KEPT_FIGURE = "kept.png"
SHARE_FIGURE = "share.png"
FIGURES = {
    "kept": (KEPT_FIGURE, "kept (0 = chance, 1 = as a reconstruction)"),
    "share_explained": (SHARE_FIGURE, "share of variance explained"),
}
"""Per measure: the figure's file and its y label."""


def draw_figures(comparison: dict[str, Any], directory: Path) -> dict[str, str]:
    """Draw the figures of ``comparison`` that have a figure to show into ``directory`` (a panel
    per concept that some model has a figure of); return their file names by measure."""
    names = {}
    for measure, (name, label) in FIGURES.items():
        concepts = [c for c in comparison["concepts"] if has_figures(comparison, measure, c)]
        if concepts:
            at = comparison["rule"]["kept_at"] if measure == "kept" else None
            panels(comparison, measure, concepts, label, directory / name, at)
            names[measure] = name
    return names


def has_figures(comparison: dict[str, Any], measure: str, concept: str) -> bool:
    """Whether any model of ``comparison`` has a figure of ``concept`` for ``measure``."""
    return any(
        (layer.get(concept) or {}).get("value") is not None
        for model in comparison[measure].values()
        for layer in model.values()
    )


def panels(
    comparison: dict[str, Any],
    measure: str,
    concepts: list[str],
    label: str,
    path: Path,
    kept_at: float | None,
) -> None:
    """One panel per concept: ``measure`` against depth, a line per model, interval bars, each
    point named by its layer (and its verdict mark); a dashed line at ``kept_at`` when given."""
    from matplotlib.figure import Figure

    models = comparison["models"]
    columns = min(3, len(concepts))
    rows = math.ceil(len(concepts) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * rows), dpi=DPI)
    for k, concept in enumerate(concepts):
        ax = fig.add_subplot(rows, columns, k + 1)
        lowest, highest = 0.0, 1.0
        for m, model in enumerate(models):
            cells = [
                comparison[measure][model["name"]][layer][concept] for layer in model["layers"]
            ]
            values = [_value(c) for c in cells]
            below = [0.0 if math.isnan(v) else max(0.0, v - _end(c, 0, v)) for c, v in zip(cells, values, strict=True)]  # fmt: skip
            above = [0.0 if math.isnan(v) else max(0.0, _end(c, 1, v) - v) for c, v in zip(cells, values, strict=True)]  # fmt: skip
            colour = f"C{m % 10}"
            ax.errorbar(model["depths"], values, yerr=[below, above], color=colour, marker="o",
                        capsize=3, label=model["name"])  # fmt: skip
            for i, (layer, c, v) in enumerate(zip(model["layers"], cells, values, strict=True)):
                if math.isnan(v):
                    continue
                mark = MARKS.get((c or {}).get("verdict", ""), "")
                ax.annotate(f"{layer}{mark}", (model["depths"][i], v), textcoords="offset points",
                            xytext=(3, 4), fontsize=7, color=colour)  # fmt: skip
                lowest, highest = min(lowest, v - below[i]), max(highest, v + above[i])
        if kept_at is not None:
            ax.axhline(kept_at, color="grey", linestyle="--", linewidth=0.8)
        ax.set_ylim(min(-0.05, lowest - 0.05), max(1.05, highest + 0.1))
        ax.set_xlim(-0.08, 1.15)
        ax.set_title(concept, fontsize=10)
        ax.set_xlabel("depth (0 = first layer, 1 = last)", fontsize=8)
        if k % columns == 0:
            ax.set_ylabel(label, fontsize=8)
        if k == 0:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)


def _value(cell: dict[str, Any] | None) -> float:
    value = (cell or {}).get("value")
    return math.nan if value is None else float(value)


def _end(cell: dict[str, Any] | None, side: int, value: float) -> float:
    """The low (``side`` 0) or high (1) end of ``cell``'s interval; ``value`` when unknown."""
    interval = (cell or {}).get("interval") or [None, None]
    end = interval[side]
    return value if end is None else float(end)
