"""Where a model keeps a concept and where it drops it, by one rule, and the sentence saying so.

The rule (:data:`RULE`): a model *keeps* a concept at a layer when the layer's level of it is at
least ``kept_at`` (0.5 by default). The level is the report's *kept* figure, which is already 0 at
chance and 1 as often as a plain reconstruction, so 0.5 is half way from chance to 1. Where not
every model has kept figures of the concept (no judge, or a concept without values in a store),
every model's *share explained* stands in, so that a sentence compares like with like: as a
fraction of the share's ceiling where every report has one, else the share itself (0 to 1); a
model is read on a scale of its own only when no scale is common to all
(:func:`innx.ops.compare.comparison.build_comparison` chooses). Layers without a figure (NaN)
are skipped. Then:

- it keeps the concept **to** its last layer when that layer keeps it;
- it **drops** it after the last layer that keeps it when every later layer with a figure is
  below: the drop is after the first layer after which it stays below;
- it **does not keep** it when no layer does.

A clause cites one number (the last layer's, the first layer below after the drop, or the highest
level) marked with the worst verdict of the figures the clause rests on (``†`` doubtful, ``✗`` not
interpretable; :data:`innx.ops.analyze.tables.MARKS`), so that a sentence is never read as a
finding when a fit behind it failed. One sentence per concept joins the models' clauses::

    The texture model keeps texture to its logits (0.91); the shape model drops it after conv2
    (0.05 at pool).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from innx.ops.analyze.checks import worst
from innx.ops.analyze.tables import MARKS

KEPT_AT = 0.5
"""The level at and above which a layer keeps a concept."""
KEPT, SHARE, OF_CEILING = "kept", "share", "share of its ceiling"
"""What a course's levels are: kept figures, shares explained, or shares over their ceiling."""
TO_END, TO_LAST_FIGURE, DROPS, NEVER, NO_FIGURE = (
    "kept to the end",
    "kept to its last figure",
    "dropped",
    "never kept",
    "no figure",
)

RULE = (
    "A model keeps a concept at a layer when the layer's kept figure is at least {kept_at} (kept "
    "is 0 at chance and 1 as often as a plain reconstruction: {kept_at} of the way from chance to "
    "1). Where not every model has kept figures of the concept, the share explained stands in "
    "for every model, as a fraction of the share's ceiling where every report has one (else the "
    "share itself). A model keeps a concept to its last layer when that layer keeps it; it drops "
    "it after the first layer after which every layer with a figure stays below. Layers without "
    "a figure are skipped; a mark on a number († doubtful, ✗ not interpretable) is the worst "
    "verdict of the figures the clause rests on."
)


def course(
    layers: Sequence[str],
    levels: Sequence[float | None],
    verdicts: Sequence[str],
    scale: str | None,
    kept_at: float = KEPT_AT,
) -> dict[str, Any]:
    """How one model treats one concept along its ``layers`` (first: the input side), by the rule
    of the module docstring: the ``state`` (:data:`TO_END`, :data:`DROPS` …), the last layer that
    keeps it (``kept_to``), the layer it is dropped after (``drops_after``), per layer whether
    it is kept (``None``: no figure), the number the sentence ``cites`` and the worst ``verdict``
    of the figures used. ``levels`` are on ``scale`` (:data:`KEPT`, :data:`SHARE`,
    :data:`OF_CEILING`; ``None``: the report has no figure for the concept)."""
    values = [None if v is None or math.isnan(v) else float(v) for v in levels]
    known = [i for i, v in enumerate(values) if v is not None]
    kept = [None if v is None else v >= kept_at for v in values]
    found: dict[str, Any] = {
        "scale": scale,
        "levels": values,
        "kept": kept,
        "state": NO_FIGURE,
        "kept_to": None,
        "drops_after": None,
        "cited": None,
        "verdict": worst(*(verdicts[i] for i in known)),
    }
    if scale is None or not known:
        return found
    last = max((i for i in known if kept[i]), default=None)
    later = [i for i in known if last is not None and i > last]
    if last is None:
        cite = max(known, key=lambda i: values[i] or 0.0)
        found["state"] = NEVER
    elif later:
        cite = later[0]
        found.update(state=DROPS, kept_to=layers[last], drops_after=layers[last])
    else:
        cite = last
        found.update(state=TO_END if last == len(layers) - 1 else TO_LAST_FIGURE)
        found["kept_to"] = layers[last]
    found["cited"] = {"layer": layers[cite], "value": values[cite]}
    return found


def clause(model: str, concept: str, found: dict[str, Any]) -> str:
    """``the NAME model keeps CONCEPT to its logits (0.91)``: one model's course of a concept."""
    who = f"the {model} model"
    state = found["state"]
    if state == NO_FIGURE:
        return f"{who} has no figure for {concept}"
    cited = found["cited"]
    number = _number(cited["value"], found["scale"], found["verdict"])
    if state == TO_END:
        return f"{who} keeps {concept} to its {found['kept_to']} ({number})"
    if state == TO_LAST_FIGURE:
        return (
            f"{who} keeps {concept} to {found['kept_to']} ({number}), its last layer with a figure"
        )
    if state == DROPS:
        return f"{who} drops {concept} after {found['drops_after']} ({number} at {cited['layer']})"
    return f"{who} does not keep {concept} at any layer (at most {number}, at {cited['layer']})"


def _number(value: float, scale: str | None, verdict: str) -> str:
    """``0.91``, ``share 0.91`` or ``share 0.91 of its ceiling``, then the verdict's mark."""
    text = {SHARE: "share {:.2f}", OF_CEILING: "share {:.2f} of its ceiling"}.get(
        scale or "", "{:.2f}"
    )
    return text.format(value) + MARKS.get(verdict, "")


def sentence(concept: str, courses: dict[str, dict[str, Any]]) -> str:
    """One sentence on ``concept``: each model's clause (``courses``: model name → its
    :func:`course`), in order, the concept named in the first and ``it`` in the others."""
    clauses = [clause(model, concept if k == 0 else "it", found)
               for k, (model, found) in enumerate(courses.items())]  # fmt: skip
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "."
