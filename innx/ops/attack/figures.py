"""The pictures of ``innx attack``, drawn with :func:`innx.ops.render.grids.draw_grid` and a
caption under each image:

- ``images.png``: one row per store row: the image, the attacked image, the noise control (each
  captioned with the classifier's prediction) and the perturbation (grey where there is none,
  lighter or darker by up to ``eps``);
- ``row-R.png`` per store row ``R``: per layer and version (``x``, ``adv``, ``noise``), the image
  and the first invariance samples of its ``Φ_l``, captioned with the judge's reading (the
  classifier's without a judge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from innx.ops.attack.readings import CONDITIONS, Attacked, LayerReadings
from innx.ops.attack.tables import SHORT
from innx.ops.render.grids import LABEL_H, LABEL_W, PAD, Cell, cell_size, draw_grid

if TYPE_CHECKING:
    from PIL import Image

CAPTION_H = 11
"""Height of the white band at the bottom of a cell that holds its caption."""


def draw(
    report: dict[str, Any],
    attacked: Attacked,
    layers: Sequence[LayerReadings],
    categories: Sequence[str] | None,
) -> dict[str, Image.Image]:
    """Every picture of the report, by file name. ``categories`` names the judge's readings
    (``None``: there is no judge, the samples are captioned with the classifier's)."""
    classes = report["classifier"]["classes"]
    rows = report["rows"]
    eps = report["attack"]["eps"]
    x = attacked.images["x"]
    perturbation = (0.5 + (attacked.images["x_adv"] - x) / (2 * eps)).clamp(0, 1)
    cells = [
        [*(attacked.images[name][i] for name in CONDITIONS), perturbation[i]]
        for i in range(len(rows))
    ]
    captions = [[row[name]["name"] for name in CONDITIONS] + [""] for row in rows]
    pictures = {
        "images.png": captioned(
            cells,
            captions,
            row_labels=[f"row {row['row']}" for row in rows],
            col_labels=["x", "x_adv", "x_noise", "x_adv - x"],
        )
    }
    for i, row in enumerate(rows):
        grid: list[list[Cell]] = []
        texts: list[list[str]] = []
        labels = []
        for layer in layers:
            for name in CONDITIONS:
                samples = layer.shown[name][i]
                grid.append([attacked.images[name][i], *samples])
                read = layer.judged if categories is not None else None
                if read is not None and categories is not None:
                    said = [categories[int(c)] for c in read[name][i, : len(samples)]]
                else:
                    said = [classes[int(c)] for c in layer.predictions[name][i, : len(samples)]]
                texts.append([row[name]["name"], *said])
                labels.append(f"{layer.run.layer} {SHORT[name]}")
        width = len(grid[0])
        picture = captioned(
            grid,
            texts,
            row_labels=labels,
            col_labels=["image"] + [f"v {j + 1}" for j in range(width - 1)],
        )
        pictures[f"row-{row['row']}.png"] = picture
    return pictures


def captioned(
    cells: Sequence[Sequence[Cell]],
    captions: Sequence[Sequence[str]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
) -> Image.Image:
    """:func:`~innx.ops.render.grids.draw_grid` of ``cells``, with ``captions[i][j]`` written in
    a white band at the bottom of cell ``(i, j)`` (an empty caption leaves the cell as it is)."""
    from PIL import ImageDraw, ImageFont

    picture = draw_grid(cells, row_labels=row_labels, col_labels=col_labels)
    sizes = [int(c.shape[-1]) for row in cells for c in row if isinstance(c, torch.Tensor)]
    cell = cell_size(sizes[0]) if sizes else 0
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for i, row in enumerate(captions):
        for j, text in enumerate(row):
            if not text or cells[i][j] is None:
                continue
            x = LABEL_W + PAD + j * (cell + PAD)
            y = LABEL_H + PAD + i * (cell + PAD) + cell - CAPTION_H
            pen.rectangle((x, y, x + cell - 1, y + CAPTION_H - 1), fill=(255, 255, 255))
            while text and pen.textlength(text, font=font) > cell - 2:
                text = text[:-2] + "." if len(text) > 2 else ""
            pen.text((x + 1, y), text, fill=(0, 0, 0), font=font)
    return picture
