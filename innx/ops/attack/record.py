"""The report of ``innx attack`` as one JSON-able dict (``attack.json``, format
:data:`FORMAT` v:data:`VERSION`), and the writing of it with its tables
(:mod:`~innx.ops.attack.tables`) and figures (:mod:`~innx.ops.attack.figures`).

- ``attack``: the method and its size; ``success_rate`` (the share of rows whose prediction the
  attack changed) and ``noise_flip_rate`` (the same for the noise control), each a ``value``
  with its bootstrap ``interval`` over rows; ``target_rate`` for a targeted attack.
- ``judge``: the attribute that holds the classifier's classes, the ``accuracy`` of its judge on
  the rows' images (against their values of the attribute) and how often it reads each version
  of the images, and their reconstructions, as the original class (the prediction on ``x``); or
  ``attribute`` ``None`` and the ``reason`` (then the classifier alone reads the samples).
- ``rows``: per row, the classifier's prediction on each version (``x``, ``x_adv``,
  ``x_noise``), the L∞ distance of each from ``x``, and how far ``Φ_l`` moved at each layer.
- ``layers``: per layer, over the ``rows`` whose prediction flipped, how often the invariance
  samples of each version are read as the ``original`` class and as the ``adversarial`` one (the
  prediction on ``x_adv``), by the ``judge`` and by the ``classifier``; the ``cosine`` of the
  samples' ``Φ_l`` with the one they were drawn for (about 1: ``t`` holds the layer); and the
  ``distance`` ``‖Φ_l(x') − Φ_l(x)‖`` relative to the median distance between two store rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from innx.ops.analyze.estimators import bootstrap_interval
from innx.ops.analyze.report import clean
from innx.ops.attack.classes import Classes, LabelAttribute
from innx.ops.attack.readings import CONDITIONS, Attacked, AttackSpec, LayerReadings
from innx.ops.attack.tables import markdown, value_text

if TYPE_CHECKING:
    from PIL import Image

FORMAT = "innx.attack"
VERSION = 1
JSON_FILE = "attack.json"
MARKDOWN_FILE = "attack.md"


@dataclass(frozen=True)
class Parts:
    """What the layers were read with: the ``rows``, the ``attacked`` versions and the ``spec``
    of the attack, the classifier (``classes``, and ``classifier``: its run or name), its
    ``label`` attribute with the rows' values of it (``truth``, ``None`` without one) and the
    names of its categories, and the judge's readings of each version (``judged``, ``None``
    without a judge) and of the reconstructions (``recon``), whether it reads each image as its
    true value (``hits``, how good a judge it is), or why there is no judge."""

    rows: np.ndarray
    attacked: Attacked
    spec: AttackSpec
    classes: Classes
    classifier: str
    label: LabelAttribute
    truth: np.ndarray | None
    categories: list[str]
    judged: dict[str, Tensor] | None
    recon: Tensor | None
    hits: Tensor | None
    trained_on: int | None
    no_judge: str | None


def interval(values: Tensor, *, draws: int, seed: int) -> dict[str, Any]:
    """The mean of per-row ``values`` ``[N]`` with its bootstrap ``interval`` over rows
    (``None`` for both when there are no rows)."""
    if len(values) == 0:
        return {"value": None, "interval": [None, None]}
    x = values.double()
    low, high = bootstrap_interval(lambda i: float(x[i].mean()), len(x), draws=draws, seed=seed)
    return {"value": float(x.mean()), "interval": [low, high]}


def _reads(
    readings: Tensor, original: Tensor, adversarial: Tensor, rows: Tensor, draws: int, seed: int
) -> dict[str, Any]:
    """How often ``readings`` ``[B, K]`` equal each row's ``original`` and ``adversarial``
    class ``[B]``, over ``rows`` (a mask ``[B]``)."""
    as_original = (readings == original[:, None]).double().mean(1)[rows]
    as_adversarial = (readings == adversarial[:, None]).double().mean(1)[rows]
    return {
        "original": interval(as_original, draws=draws, seed=seed),
        "adversarial": interval(as_adversarial, draws=draws, seed=seed),
    }


def layer_entry(
    readings: LayerReadings,
    attacked: Attacked,
    label: LabelAttribute,
    moved: dict[str, Tensor],
    scale: float,
    stored: Tensor,
    x_layer: Tensor,
    *,
    draws: int,
    seed: int,
) -> dict[str, Any]:
    """One layer of the report (see the module docstring). ``moved`` holds the relative
    distances of :func:`~innx.ops.attack.readings.distances`, ``scale`` the median distance
    between rows, ``stored`` the rows' ``Φ_l`` read from the store and ``x_layer`` the one
    computed now from their images (they differ when the thumbnails are not the images the
    store was extracted from)."""
    flipped = attacked.flipped
    original, adversarial = attacked.predictions["x"], attacked.predictions["x_adv"]
    classifier = {
        name: _reads(readings.predictions[name], original, adversarial, flipped, draws, seed)
        for name in CONDITIONS
    }
    judge = None
    if readings.judged is not None:
        to_category = torch.tensor(label.categories, dtype=torch.long)
        judge = {}
        for name in CONDITIONS:
            found = readings.judged[name]
            judge[name] = _reads(
                found, to_category[original], to_category[adversarial], flipped, draws, seed
            )
    from_store = (x_layer.flatten(1) - stored.flatten(1)).norm(dim=1).double() / scale
    return {
        "layer": readings.run.layer,
        "run": str(readings.run.path),
        "rows": int(flipped.sum()),
        "judge": judge,
        "classifier": classifier,
        "cosine": {name: float(readings.cosine[name].mean()) for name in CONDITIONS},
        "distance": {
            "median_between_rows": scale,
            **{name: interval(d, draws=draws, seed=seed) for name, d in moved.items()},
            "x_from_store": float(from_store.mean()),
        },
        "per_row": {name: d.tolist() for name, d in moved.items()},
    }


def summary_line(entry: dict[str, Any]) -> str:
    """One line of a layer for the log: how far Φ moved, and what its samples of x_adv show."""
    distance = entry["distance"]
    line = (
        f"{entry['layer']}: ‖ΔΦ‖ {value_text(distance['x_adv'])} (noise "
        f"{value_text(distance['x_noise'])}) of the median distance between rows"
    )
    reader = entry["judge"] or entry["classifier"]
    who = "judge" if entry["judge"] else "classifier"
    if entry["rows"]:
        seen = reader["x_adv"]
        line += (
            f"; samples of x_adv read by the {who} as the original class "
            f"{value_text(seen['original'])}, as the adversarial one {value_text(seen['adversarial'])}"
        )
    return line


def build(
    store: dict[str, Any], options: Any, parts: Parts, layers: list[dict[str, Any]]
) -> dict[str, Any]:
    """The whole report of the ``layers`` (from :func:`layer_entry`); ``options`` are the
    :class:`~innx.ops.attack.attack.AttackOptions`."""
    from innx import __version__

    draws, seed = options.bootstrap, options.seed
    attacked, spec, classes = parts.attacked, parts.spec, parts.classes
    pred = attacked.predictions
    noise_flipped = pred["x_noise"] != pred["x"]
    linf = {
        name: (attacked.images[name] - attacked.images["x"]).flatten(1).abs().amax(1)
        for name in CONDITIONS[1:]
    }
    target, reached = None, None
    if spec.target is not None:
        target = {"class": spec.target, "name": classes.name(spec.target)}
        reached = pred["x_adv"] == spec.target
    return {
        "format": FORMAT,
        "version": VERSION,
        "innx_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "store": store,
        "options": options.to_dict(),
        "classifier": {
            "run": parts.classifier,
            "classes": list(classes.names),
            "classes_from": classes.source,
        },
        "attack": {
            "method": spec.method,
            "eps": spec.eps,
            "iterations": spec.steps if spec.method == "pgd" else None,
            "step_size": spec.step_size if spec.method == "pgd" else None,
            "target": target,
            "success_rate": interval(attacked.flipped, draws=draws, seed=seed),
            "noise_flip_rate": interval(noise_flipped, draws=draws, seed=seed),
            "target_rate": None if reached is None else interval(reached, draws=draws, seed=seed),
            "linf": {name: float(value.max()) for name, value in linf.items()},
        },
        "judge": _judge(parts, options.judge_steps, draws, seed),
        "rows": _rows(parts, linf, reached, layers),
        "layers": [{k: v for k, v in layer.items() if k != "per_row"} for layer in layers],
    }


def _judge(parts: Parts, steps: int, draws: int, seed: int) -> dict[str, Any]:
    """The report's ``judge``: what it reads off the rows' images, or why there is none."""
    if parts.judged is None:
        return {"attribute": parts.label.name, "reason": parts.no_judge}
    as_original = torch.tensor(parts.label.categories)[parts.attacked.predictions["x"]]
    return {
        "attribute": parts.label.name,
        "categories": list(parts.categories),
        "trained_on": parts.trained_on,
        "steps": steps,
        "accuracy": None if parts.hits is None else interval(parts.hits, draws=draws, seed=seed),
        "images": {
            name: interval(parts.judged[name] == as_original, draws=draws, seed=seed)
            for name in CONDITIONS
        },
        "reconstructions": None
        if parts.recon is None
        else interval(parts.recon == as_original, draws=draws, seed=seed),
    }


def _rows(
    parts: Parts,
    linf: dict[str, Tensor],
    reached: Tensor | None,
    layers: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The report's ``rows``: per row, what each version is, and how far each layer moved."""
    pred, classes = parts.attacked.predictions, parts.classes
    noise_flipped = pred["x_noise"] != pred["x"]
    rows = []
    for i, row in enumerate(parts.rows.tolist()):
        judged = parts.judged
        rows.append(
            {
                "row": row,
                "truth": None if parts.truth is None else parts.categories[int(parts.truth[i])],
                **{
                    name: {"class": int(pred[name][i]), "name": classes.name(int(pred[name][i]))}
                    for name in CONDITIONS
                },
                "flipped": bool(parts.attacked.flipped[i]),
                "noise_flipped": bool(noise_flipped[i]),
                "target_reached": None if reached is None else bool(reached[i]),
                "linf": {name: float(value[i]) for name, value in linf.items()},
                "judge": None
                if judged is None
                else {name: parts.categories[int(judged[name][i])] for name in CONDITIONS},
                "distance": {
                    layer["layer"]: {name: layer["per_row"][name][i] for name in CONDITIONS[1:]}
                    for layer in layers
                },
            }
        )
    return rows


def write(report: dict[str, Any], pictures: dict[str, Image.Image], directory: Path) -> list[str]:
    """Write ``attack.json``, ``attack.md`` and the ``pictures`` (file name → image) into
    ``directory``; return the file names, in order."""
    report = clean(report)
    (directory / JSON_FILE).write_text(json.dumps(report, indent=2) + "\n")
    (directory / MARKDOWN_FILE).write_text(markdown(report, list(pictures)))
    for name, picture in pictures.items():
        picture.save(directory / name, format="PNG")
    return [JSON_FILE, MARKDOWN_FILE, *pictures]
