"""The report of ``innx analyze`` as one JSON-able dict: every figure with its interval, ceiling
and verdict, the checks behind the verdicts, and what was measured on which rows.

``share_explained[layer][column]`` and ``kept["layers"][layer][factor]`` are dicts holding the
``value``, its bootstrap ``interval`` over rows and the ``verdict`` of the fits it rests on
(:mod:`innx.ops.analyze.checks`), so that no consumer of the file can take a figure without its
verdict.

``interventions`` (:mod:`innx.ops.analyze.interventions`) holds, per factor of ``e`` and for the
residual, the ``effect`` of swapping its block (``value``, ``interval``, ``verdict``), how often
the prediction then ``follows_donor`` and over how many rows (``n``); or ``available: False`` and
the ``reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from innx.flows import SemanticFlow
from innx.ops.analyze import checks as checks_ops
from innx.ops.analyze.checks import KEPT_PARTS, SHARE_PARTS, Check
from innx.ops.analyze.kept import Reader
from innx.ops.analyze.layer import Networks

FORMAT = "innx.analysis"
VERSION = 2
INTERVENTION_PARTS = ("autoencoder", "e")
"""The fits an intervention's effect rests on: the decoder that draws the swap, ``e`` that swaps."""


@dataclass(frozen=True)
class Parts:
    """What the layers' measurements were made with."""

    e: SemanticFlow | None
    factors: list[str]
    rows: dict[str, Any]
    nets: Networks
    reader: Reader | None
    no_reader: str | None
    ceilings: dict[str, dict[str, Any]]
    checks: list[Check]
    interventions: dict[str, Any] | None = None  # interventions.report_entry


def build_report(
    store: dict[str, Any], options: dict[str, Any], parts: Parts, layers: list[dict[str, Any]]
) -> dict[str, Any]:
    """The report of ``layers`` (from :class:`~innx.ops.analyze.measure.LayerMeasure`)."""
    from innx import __version__

    names = [layer["layer"] for layer in layers]
    columns = list(layers[0]["share"]) if layers else []
    judged = parts.reader.factors if parts.reader is not None else []
    share_verdicts = checks_ops.verdicts(parts.checks, names, columns, parts.factors, SHARE_PARTS)
    kept_verdicts = checks_ops.verdicts(parts.checks, names, judged, parts.factors, KEPT_PARTS)
    e, nets = parts.e, parts.nets
    agreement_note = nets.classifier_reason
    if nets.backbone is not None and nets.reference_kind == "reconstructions":
        agreement_note = (
            "the store has no images: predictions are compared with those on reconstructions"
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "innx_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "store": store,
        "semantic": None
        if e is None
        else {"run": options["semantic"], "factors": parts.factors, "blocks": e.config.block_sizes},
        "options": options,
        "rows": parts.rows,
        "layers": names,
        "factors": columns,
        "concepts": parts.factors,
        "diagnostics": _diagnostics(
            parts.checks, names, columns, judged, share_verdicts, kept_verdicts
        ),
        "share_explained": {
            layer["layer"]: {
                column: _share_cell(layer, column, parts.ceilings, share_verdicts)
                for column in columns
            }
            for layer in layers
        },
        "ceilings": parts.ceilings,
        "kept": _kept(parts, layers, kept_verdicts),
        "preservation": {
            "available": nets.backbone is not None,
            "reason": nets.reason,
            "reference": nets.reference_kind if nets.classifier is not None else None,
            "agreement_note": agreement_note,
            "classifier": options["classifier"] or ("store backbone" if nets.classifier else None),
            "layers": {layer["layer"]: layer["preservation"] for layer in layers},
        },
        "invariances": {layer["layer"]: layer["invariances"] for layer in layers},
        "interventions": _interventions(parts),
        "details": {
            layer["layer"]: {
                "run": layer["run"],
                "shape": layer["shape"],
                **layer["run_metrics"],
                "variance": layer["variance"],
            }
            for layer in layers
        },
    }


def _share_cell(
    layer: dict[str, Any],
    column: str,
    ceilings: dict[str, dict[str, Any]],
    verdicts: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    value = layer["share"][column]
    ceiling = (ceilings.get(column) or {}).get("value")
    of_ceiling = None
    if ceiling is not None and ceiling > 0 and not math.isnan(value):
        of_ceiling = value / ceiling
    return {
        "value": value,
        "interval": layer["share_interval"][column],
        "ceiling": ceiling,
        "of_ceiling": of_ceiling,
        "verdict": verdicts[layer["layer"]][column]["verdict"],
    }


def _kept(
    parts: Parts, layers: list[dict[str, Any]], verdicts: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    reader = parts.reader
    if reader is None:
        return {"available": False, "reason": parts.no_reader, "judge": None, "layers": {}}
    judge = {
        name: {
            "kind": reader.kinds[name],
            "real": reader.score(name, reader.real[name]),
            "reconstructions": reader.score(name, reader.recon[name]),
            "chance": reader.chance.get(name, 0.0),
        }
        for name in reader.factors
    }
    return {
        "available": True,
        "reason": None,
        "judge": {"rows": reader.trained_on, "factors": judge},
        "layers": {
            layer["layer"]: {
                name: {**cell, "verdict": verdicts[layer["layer"]][name]["verdict"]}
                for name, cell in layer["kept"].items()
            }
            for layer in layers
        },
    }


def _interventions(parts: Parts) -> dict[str, Any]:
    """``parts.interventions`` with each effect's verdict: the worst of the autoencoder's checks
    (does it keep the classifier, does it keep the factor) and of ``e``'s check of the factor
    (:mod:`innx.ops.analyze.checks`); the judge and ``t`` play no part in a swap."""
    entry = parts.interventions
    if entry is None:
        return {"available": False, "reason": "not measured"}
    if not entry["available"]:
        return entry

    def rated(cell: dict[str, Any], factor: str | None) -> dict[str, Any]:
        relevant = [
            c
            for c in parts.checks
            if c.part in INTERVENTION_PARTS and c.layer is None and c.factor in (None, factor)
        ]
        verdict = checks_ops.judge_cell(relevant)["verdict"]
        return {**cell, "effect": {**cell["effect"], "verdict": verdict}}

    residual = entry["residual"]
    return {
        **entry,
        "factors": {name: rated(cell, name) for name, cell in entry["factors"].items()},
        "residual": None if residual is None else rated(residual, None),
    }


def _diagnostics(
    checks: list[Check],
    layers: list[str],
    columns: list[str],
    judged: list[str],
    share: dict[str, dict[str, dict[str, Any]]],
    kept: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """The checks, and per layer and concept the verdict of its figures (share and kept)."""
    concepts = list(dict.fromkeys([*columns, *judged]))
    cells: dict[str, dict[str, Any]] = {}
    for layer in layers:
        cells[layer] = {}
        for concept in concepts:
            found = [v[layer][concept] for v in (share, kept) if concept in v[layer]]
            verdict = checks_ops.worst(*(f["verdict"] for f in found))
            failed = list(dict.fromkeys(n for f in found for n in f["failed"]))
            fixes = list(dict.fromkeys(x for f in found for x in f["fixes"]))
            cells[layer][concept] = {"verdict": verdict, "failed": failed, "fixes": fixes}
    counts = {
        v: sum(cell["verdict"] == v for row in cells.values() for cell in row.values())
        for v in (*checks_ops.ORDER, checks_ops.UNCHECKED)
    }
    return {
        "checks": [c.to_dict() for c in checks],
        "verdicts": cells,
        "counts": counts,
        "concepts": concepts,
    }
