"""``compare``: the ``innx analyze`` reports of two or more models on the same concepts, side by
side (the paper's texture-bias study: which layers of which model keep or discard each concept).

For each concept and each model, per layer: *kept* and the *share explained*, each with its
bootstrap interval and verdict, as the model's report has them (:mod:`innx.ops.analyze.record`).

- **Layers** differ between models (other networks), so they are aligned by depth: a model's
  layer ``i`` of ``n`` sits at depth ``i / (n - 1)`` (0: its first layer, the input side; 1: its
  last, the logits; a model with one layer sits at 1), and at row ``round(depth · (N - 1))`` of
  the ``N`` rows of the model with the most layers, so that first meets first and last meets
  last; each keeps its own layer names. Models with as many layers meet row by row.
- **Differences**: each model minus the first (the reference), per row that both have a layer
  at and concept, for kept and the share, with a 95 % interval that combines the two models'
  intervals as those of independent estimates (Newcombe's MOVER:
  ``d − √((b − b_low)² + (a_high − a)²)`` to ``d + √((b_high − b)² + (a − a_low)²)``), the worse
  of their verdicts, and ``clear`` when the interval excludes 0.
- **Sentences** (:mod:`~innx.ops.compare.sentences`): per concept, where each model keeps or
  drops it, by one stated rule.

The comparison (``compare.json``, ``compare.md``, PNG figures, a self-contained ``compare.html``)
is written into a directory, all at once; a bad input (fewer than two reports, one that cannot be
read, reports on other concepts or datasets) writes nothing. ``compare.json`` (format
``innx.comparison``, version 1) holds:

- ``models``: per model its ``name``, ``report`` directory, ``store`` record, ``semantic`` run,
  ``layers`` (first: the input side) and their ``depths``; ``concepts``; ``options``;
- ``dataset``: ``checked``, the ``dataset`` record, the models whose report records none
  (``unrecorded``) and a ``note`` when it could not be checked
  (:func:`~innx.ops.compare.models.check_datasets`);
- ``rows``: the aligned layers, per row ``{model: layer or null}``;
- ``kept`` and ``share_explained``: ``[model][layer][concept]`` → ``{"value", "interval",
  "verdict"}`` (the share with its ``of_ceiling``), or ``null`` where the report has none;
- ``differences``: the ``reference`` model, and per measure ``[model][concept]`` a list of
  ``{"row", "layer", "reference_layer", "value", "interval", "verdict", "clear"}``;
- ``rule`` (``kept_at`` and its text), ``courses[concept][model]`` (where it is kept and
  dropped, :func:`~innx.ops.compare.sentences.course`) and ``sentences[concept]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from innx.errors import ConfigError, InnxWarning
from innx.ops.analyze.checks import UNCHECKED, worst
from innx.ops.compare import sentences
from innx.ops.compare.models import Model, load_models
from innx.writes import atomic_folder, check_output_folder

__all__ = ["FORMAT", "VERSION", "CompareOptions", "CompareResult", "build_comparison", "compare"]

FORMAT = "innx.comparison"
VERSION = 1
COMPARE_JSON = "compare.json"
MEASURES = ("kept", "share_explained")
"""The figures compared, by their keys in the analysis report and in the comparison."""


@dataclass(frozen=True)
class CompareOptions:
    """The arguments of ``innx compare``: ``reports``, two or more, each ``REPORT`` (a report
    directory of ``innx analyze``, the model named by its folder) or ``NAME=REPORT``; a layer
    keeps a concept when its level is at least ``kept_at`` (:mod:`~innx.ops.compare.sentences`).

    >>> CompareOptions(("shape=runs/shape-report", "runs/texture-report")).kept_at
    0.5
    """

    reports: tuple[str, ...]
    kept_at: float = sentences.KEPT_AT

    def __post_init__(self) -> None:
        if not 0.0 < self.kept_at < 1.0:
            raise ConfigError(f"--kept-at must be between 0 and 1, got {self.kept_at}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reports": list(self.reports)}


@dataclass(frozen=True)
class CompareResult:
    """The comparison directory, the comparison (as in ``compare.json``) and its files."""

    path: Path
    comparison: dict[str, Any]
    files: list[str]


def compare(options: CompareOptions, out: str | Path, *, overwrite: bool = False) -> CompareResult:
    """Compare the reports of ``options`` and write the comparison into directory ``out``; see
    the module docstring. Refuses an existing ``out`` unless ``overwrite`` (and then replaces
    only a comparison), and bad reports, before writing anything."""
    from innx.ops.compare.report import write_comparison

    out = Path(out)
    _check_output(out, overwrite)
    models, dataset = load_models(options.reports)
    comparison = build_comparison(models, dataset, options)
    files = _write_atomically(out, overwrite, lambda tmp: write_comparison(comparison, tmp))
    if dataset["note"]:
        warnings.warn(dataset["note"], InnxWarning, stacklevel=2)
    return CompareResult(out, comparison, files)


def build_comparison(
    models: list[Model], dataset: dict[str, Any], options: CompareOptions
) -> dict[str, Any]:
    """The comparison of ``models`` (checked by :func:`~innx.ops.compare.models.load_models`,
    which also gives ``dataset``) as one JSON-able dict."""
    from innx import __version__

    concepts = models[0].concepts
    rows = align([len(m.layers) for m in models])
    tables = {
        measure: {m.name: {layer: {c: cell(m, measure, layer, c) for c in concepts}
                           for layer in m.layers} for m in models}
        for measure in MEASURES
    }  # fmt: skip
    courses = {c: _courses(models, tables, c, options.kept_at) for c in concepts}
    return {
        "format": FORMAT,
        "version": VERSION,
        "innx_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": options.to_dict(),
        "models": [_model(m) for m in models],
        "concepts": concepts,
        "dataset": dataset,
        "rule": {
            "kept_at": options.kept_at,
            "text": sentences.RULE.format(kept_at=options.kept_at),
        },
        "rows": [
            {m.name: None if i is None else m.layers[i] for m, i in zip(models, row, strict=True)}
            for row in rows
        ],
        **tables,
        "differences": _differences(models, rows, concepts, tables),
        "courses": courses,
        "sentences": {c: sentences.sentence(c, courses[c]) for c in concepts},
    }


def depth(i: int, n: int) -> float:
    """The depth of layer ``i`` of ``n``: 0 the first (input side), 1 the last; 1 when alone."""
    return i / (n - 1) if n > 1 else 1.0


def align(counts: list[int]) -> list[list[int | None]]:
    """Rows of aligned layers: ``rows[r][m]`` is the index of model ``m``'s layer at row ``r``
    (``None``: none there), for models of ``counts`` layers; see the module docstring.

    >>> align([3, 2])
    [[0, 0], [1, None], [2, 1]]
    """
    size = max(counts)
    rows: list[list[int | None]] = [[None] * len(counts) for _ in range(size)]
    for m, n in enumerate(counts):
        for i in range(n):
            rows[math.floor(depth(i, n) * (size - 1) + 0.5)][m] = i
    return rows


def cell(model: Model, measure: str, layer: str, concept: str) -> dict[str, Any] | None:
    """The figure of ``concept`` at ``layer`` of ``model``'s report, ``{"value", "interval",
    "verdict"}`` (and the share's ``of_ceiling``), or ``None`` when the report has none."""
    record = model.report[measure]
    if measure == "kept":
        if not record.get("available"):
            return None
        record = record["layers"]
    found = (record.get(layer) or {}).get(concept)
    if not isinstance(found, dict):
        return None
    interval = found.get("interval")
    low, high = interval if isinstance(interval, list) and len(interval) == 2 else (None, None)
    out = {
        "value": _number(found.get("value")),
        "interval": [_number(low), _number(high)],
        "verdict": found.get("verdict") or UNCHECKED,
    }
    if measure == "share_explained":
        out["of_ceiling"] = _number(found.get("of_ceiling"))
    return out


def _number(value: Any) -> float | None:
    """``value`` as a float; ``None`` for a missing or non-finite one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _model(model: Model) -> dict[str, Any]:
    report = model.report
    n = len(model.layers)
    semantic = report.get("semantic")
    return {
        "name": model.name,
        "report": str(model.path),
        "created": report.get("created"),
        "store": report["store"],
        "semantic": semantic.get("run") if isinstance(semantic, dict) else None,
        "kept_available": bool(report["kept"].get("available")),
        "layers": model.layers,
        "depths": [depth(i, n) for i in range(n)],
    }


def _courses(
    models: list[Model], tables: dict[str, Any], concept: str, kept_at: float
) -> dict[str, dict[str, Any]]:
    """:func:`~innx.ops.compare.sentences.course` of ``concept`` in each model, all on one scale
    so that the sentence compares like with like: the first of kept, the share over its ceiling
    and the share itself that every model has a figure on; where none is common, each model on
    the first it has."""
    levels = {m.name: _levels(m, tables, concept) for m in models}
    common = [s for s in SCALES if all(s in levels[m.name] for m in models)]
    found = {}
    for model in models:
        mine = levels[model.name]
        scale = common[0] if common else next((s for s in SCALES if s in mine), None)
        values, verdicts = mine.get(scale or "", ([None] * len(model.layers), []))
        verdicts = verdicts or [UNCHECKED] * len(model.layers)
        found[model.name] = sentences.course(model.layers, values, verdicts, scale, kept_at)
    return found


SCALES = (sentences.KEPT, sentences.OF_CEILING, sentences.SHARE)
"""The scales of a course, the one preferred first."""


def _levels(
    model: Model, tables: dict[str, Any], concept: str
) -> dict[str, tuple[list[float | None], list[str]]]:
    """Per scale that ``model`` has a figure of ``concept`` on: its levels and verdicts by layer."""
    out = {}
    for scale, measure, key in (
        (sentences.KEPT, "kept", "value"),
        (sentences.OF_CEILING, "share_explained", "of_ceiling"),
        (sentences.SHARE, "share_explained", "value"),
    ):
        cells = [tables[measure][model.name][layer][concept] for layer in model.layers]
        values = [None if c is None else c[key] for c in cells]
        if any(v is not None for v in values):
            out[scale] = (values, [UNCHECKED if c is None else c["verdict"] for c in cells])
    return out


def difference(b: dict[str, Any] | None, a: dict[str, Any] | None) -> dict[str, Any]:
    """``b − a`` of two figures with the MOVER interval (module docstring), the worse verdict,
    and whether the interval excludes 0 (``clear``).

    >>> d = difference({"value": 0.9, "interval": [0.87, 0.93], "verdict": "sound"},
    ...                {"value": 0.1, "interval": [0.06, 0.14], "verdict": "doubtful"})
    >>> [round(x, 3) for x in [d["value"], *d["interval"]]], d["verdict"], d["clear"]
    ([0.8, 0.75, 0.85], 'doubtful', True)
    """
    if a is None or b is None or a["value"] is None or b["value"] is None:
        verdicts = [c["verdict"] for c in (a, b) if c is not None]
        return {
            "value": None,
            "interval": [None, None],
            "verdict": worst(*verdicts),
            "clear": False,
        }
    value = b["value"] - a["value"]
    (a_low, a_high), (b_low, b_high) = a["interval"], b["interval"]
    low = high = None
    if None not in (a_low, a_high, b_low, b_high):
        low = value - math.hypot(b["value"] - b_low, a_high - a["value"])
        high = value + math.hypot(b_high - b["value"], a["value"] - a_low)
    clear = low is not None and high is not None and (low > 0 or high < 0)
    verdict = worst(a["verdict"], b["verdict"])
    return {"value": value, "interval": [low, high], "verdict": verdict, "clear": clear}


def _differences(
    models: list[Model], rows: list[list[int | None]], concepts: list[str], tables: dict[str, Any]
) -> dict[str, Any]:
    """Per measure, model (but the first) and concept: the rows both it and the first have a
    layer at, each with both layers and :func:`difference` of their figures."""
    reference = models[0]
    out: dict[str, Any] = {"reference": reference.name}
    for measure in MEASURES:
        found: dict[str, Any] = {}
        for m, model in enumerate(models[1:], start=1):
            found[model.name] = {}
            for concept in concepts:
                entries = []
                for r, row in enumerate(rows):
                    i, j = row[m], row[0]
                    if i is None or j is None:
                        continue
                    layer, other = model.layers[i], reference.layers[j]
                    entries.append(
                        {"row": r, "layer": layer, "reference_layer": other,
                         **difference(tables[measure][model.name][layer][concept],
                                      tables[measure][reference.name][other][concept])}
                    )  # fmt: skip
                found[model.name][concept] = entries
        out[measure] = found
    return out


def _check_output(out: Path, overwrite: bool) -> None:
    check_output_folder(out, overwrite, COMPARE_JSON, "comparison of innx compare")


def _write_atomically(out: Path, overwrite: bool, write: Callable[[Path], list[str]]) -> list[str]:
    return atomic_folder(out, overwrite, COMPARE_JSON, "comparison of innx compare", write)
