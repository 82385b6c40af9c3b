"""The files of an ``innx compare`` comparison: ``compare.json`` (every number), ``compare.md``
(readable tables), PNG figures (:mod:`innx.ops.compare.figures`) and ``compare.html``, which
embeds the figures as data URIs so that it opens offline, copied anywhere, on its own.

The comparison opens with one sentence per concept (:mod:`innx.ops.compare.sentences`) and the
rule behind them; then, per measure (kept, share explained) and concept, a table with a row per
aligned depth: each model's own layer and figure (``value ± interval`` and its verdict mark, as
in ``innx analyze``'s tables), and each model's difference from the first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from innx.ops.analyze.estimators import format_interval
from innx.ops.analyze.report import clean, html_document, markdown_document
from innx.ops.analyze.tables import KEPT_TEXT, MARKS, SHARE_TEXT, Table
from innx.ops.compare.comparison import COMPARE_JSON
from innx.ops.compare.figures import draw_figures, has_figures

MARKDOWN_FILE = "compare.md"
HTML_FILE = "compare.html"
TITLES = {"kept": "Kept", "share_explained": "Share explained"}
CEILING_NOTE = (
    "'of ceiling': the share as a fraction of its ceiling, the share a layer that knew the "
    "concept and nothing else would explain (where the model's report has one)."
)
TEXTS = {"kept": KEPT_TEXT, "share_explained": f"{SHARE_TEXT} {CEILING_NOTE}"}
ALIGN_TEXT = (
    "Rows align the models' layers by depth: the first row holds each model's first layer (the "
    "input side), the last its last (the logits); a model with fewer layers leaves rows empty. "
    "'B − A' is B's figure minus A's with a 95 % interval combining the two (as independent "
    "estimates)."
)
LEGEND = (
    "† marks a doubtful figure, ✗ one that is not interpretable: a check of the fits it rests on "
    "failed (see the Verdicts of that model's report); do not read them as findings."
)


def write_comparison(comparison: dict[str, Any], directory: Path) -> list[str]:
    """Write every file of ``comparison`` into ``directory``; return the file names, in order."""
    comparison = clean(comparison)
    (directory / COMPARE_JSON).write_text(json.dumps(comparison, indent=2) + "\n")
    figures = draw_figures(comparison, directory)
    sections = comparison_sections(comparison, figures)
    (directory / MARKDOWN_FILE).write_text(markdown(comparison, sections))
    (directory / HTML_FILE).write_text(html_page(comparison, sections, directory))
    return [COMPARE_JSON, MARKDOWN_FILE, HTML_FILE, *figures.values()]


def summary(comparison: dict[str, Any]) -> list[str]:
    """The lines that open the comparison: the models, the concepts, the dataset."""
    lines = []
    for model in comparison["models"]:
        layers = model["layers"]
        lines.append(
            f"{model['name']}: {model['report']} ({len(layers)} layers: {', '.join(layers)}; "
            f"store {model['store'].get('path')})"
        )
    lines.append(f"concepts: {', '.join(comparison['concepts'])}")
    dataset = comparison["dataset"]
    if dataset["note"]:
        lines.append(dataset["note"])
    else:
        found = dataset["dataset"] or {}
        lines.append(f"dataset: {found.get('spec') or found.get('name')}, the same for every model")
    lines.append(f"differences: from {comparison['differences']['reference']}")
    return lines


def comparison_sections(
    comparison: dict[str, Any], figures: dict[str, str]
) -> list[tuple[Table, list[str]]]:
    """The tables in order, each with the figures that follow it."""
    rule = comparison["rule"]["text"]
    notes = list(comparison["sentences"].values())
    sections: list[tuple[Table, list[str]]] = [(Table("In short", rule, [], [], [], notes), [])]
    for measure, title in TITLES.items():
        concepts = [c for c in comparison["concepts"] if has_figures(comparison, measure, c)]
        if not concepts:
            text = f"No report has {title.lower()} figures of these concepts."
            sections.append((Table(title, text, [], []), []))
            continue
        for k, concept in enumerate(concepts):
            text = (
                f"{TEXTS[measure]} {ALIGN_TEXT} {LEGEND}" if k == 0 else f"As above, of {concept}."
            )
            table = concept_table(comparison, measure, concept, f"{title}: {concept}", text)
            last = k == len(concepts) - 1
            sections.append((table, [figures[measure]] if last and measure in figures else []))
    return sections


def concept_table(
    comparison: dict[str, Any], measure: str, concept: str, title: str, text: str
) -> Table:
    """A row per aligned depth: each model's layer and figure, then each model's difference
    from the first."""
    names = [m["name"] for m in comparison["models"]]
    reference = names[0]
    differences = comparison["differences"][measure]
    by_row = {name: {d["row"]: d for d in differences[name][concept]} for name in names[1:]}
    header = ["depth"]
    for name in names:
        header += [f"{name} layer", name]
    header += [f"{name} − {reference}" for name in names[1:]]
    rows, classes = [], []
    last = len(comparison["rows"]) - 1
    for r, layers in enumerate(comparison["rows"]):
        row = [f"{r / last:.2f}" if last else "1.00"]
        verdicts = [""]
        for name in names:
            layer = layers[name]
            found = None if layer is None else comparison[measure][name][layer][concept]
            row += [layer or "", _text(found, measure) if layer is not None else ""]
            verdicts += ["", (found or {}).get("verdict", "")]
        for name in names[1:]:
            entry = by_row[name].get(r)
            row.append(_text(entry) if entry is not None else "")
            verdicts.append((entry or {}).get("verdict", ""))
        rows.append(row)
        classes.append(verdicts)
    return Table(title, text, header, rows, classes)


def _text(cell: dict[str, Any] | None, measure: str = "") -> str:
    """A figure as ``0.45 ± 0.03 †`` (its verdict's mark), a share with its fraction of its
    ceiling where known: ``0.40 ± 0.03 (0.80 of ceiling)``."""
    if cell is None:
        return "–"
    low, high = cell.get("interval") or (None, None)
    text = format_interval(cell.get("value"), low, high) + MARKS.get(cell.get("verdict", ""), "")
    of_ceiling = cell.get("of_ceiling") if measure == "share_explained" else None
    return text if of_ceiling is None else f"{text} ({of_ceiling:.2f} of ceiling)"


def markdown(comparison: dict[str, Any], sections: list[tuple[Table, list[str]]]) -> str:
    """``compare.md``: the summary, every table, and the figures as image links."""
    return markdown_document("innx compare", summary(comparison), sections)


def html_page(
    comparison: dict[str, Any], sections: list[tuple[Table, list[str]]], directory: Path
) -> str:
    """``compare.html``: the same content as ``compare.md``, the figures embedded as base64."""
    return html_document("innx compare", summary(comparison), sections, directory)
