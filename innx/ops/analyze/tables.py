"""The tables of an ``innx analyze`` report, as text cells with a verdict mark, in reading order:
verdicts and their checks first, then *kept*, the share explained with its ceiling, the concept
interventions, preservation and the invariances. :mod:`innx.ops.analyze.report` writes them as markdown and HTML.

A figure whose verdict is not *sound* carries a mark in every table (``†`` doubtful, ``✗`` not
interpretable), so that it is never read as a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from innx.ops.analyze.checks import BROKEN, DOUBTFUL, SOUND
from innx.ops.analyze.estimators import format_interval

MARKS = {SOUND: "", DOUBTFUL: " †", BROKEN: " ✗"}
LEGEND = (
    "† marks a doubtful figure, ✗ one that is not interpretable: a check of the fits it rests "
    "on failed (see Verdicts); do not read them as findings."
)
VERDICT_TEXT = (
    "Whether each figure below can be interpreted: the worst verdict of the checks of the fits it "
    "rests on (the autoencoder, t of the layer, e and the judge), each scaled so that 1 is what a "
    "sound fit shows. Below the table, every check that is not sound and its fix."
)
KEPT_TEXT = (
    "How often invariance samples D(t⁻¹(v | z)) still show the original's value of each factor, "
    "read by a judge (a small CNN trained on the store's real thumbnails): 1 = as often as a plain "
    "reconstruction D(zbar), 0 = chance (two random rows agreeing); for a continuous factor the "
    "R² of the readings on the true value. ± is a 95 % bootstrap interval over rows."
)
SHARE_TEXT = (
    "The share of each concept's variance that the layer explains, Var_z(E_v[e_i | z]) / "
    "Var(e_i), over draws v ~ N(0, I) of zbar = t⁻¹(v | z): 1 when the layer determines the "
    "concept, 0 when the layer is invariant to it. ± is a 95 % bootstrap interval over rows."
)
CEILING_TEXT = (
    "The ceiling of a concept's share: the share of its block of e that lies between the "
    "concept's values over the store, what a layer that knew the concept and nothing else would "
    "explain; then each layer's share as a fraction of it."
)
PRESERVATION_TEXT = (
    "Invariance samples D(t⁻¹(v | z)) seen again by the network: the cosine similarity of their "
    "representation Φ with z, and how often the classifier predicts for them what it predicts for "
    "the original, beside the same for plain reconstructions D(zbar). 'another row' is the "
    "cosine similarity of z with an unrelated row's z."
)
INTERVENTIONS_TITLE = (
    "Concept interventions: how often swapping a concept changes the classifier's prediction"
)
INTERVENTIONS_TEXT = (
    "Each analyzed row's block of e for a concept is swapped with a donor row's, decoded as "
    "D(e⁻¹(·)) and classified: the share of rows whose prediction then differs from that on the "
    "unswapped D(e⁻¹(e(zbar))) (so the autoencoder's own error is no effect); how often it is the "
    "donor's prediction, beside how often the donor was predicted as the row already. The "
    "residual is a control: if the concepts carry what the classifier uses, swapping it changes "
    "little. ± is a 95 % bootstrap interval over rows."
)
INVARIANCE_TEXT = (
    "The invariances v = t(zbar | z) of the rows: standard normal when t fits (means 0, standard "
    "deviations 1, skew and excess kurtosis 0), and independent of z: the held-out R² of a ridge "
    "regression predicting v from z is then about the same as from shuffled rows (about 0)."
)


@dataclass(frozen=True)
class Table:
    """A titled table: a sentence on what it shows, a header, rows of cells, and per cell an
    optional verdict (``classes``, for the HTML page's colours)."""

    title: str
    text: str
    header: list[str]
    rows: list[list[str]]
    classes: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(cell: dict[str, Any] | None) -> tuple[str, str]:
    """A figure ``{"value", "interval", "verdict"}`` as ``0.45 ± 0.03 †`` and its verdict."""
    if cell is None:
        return "–", ""
    low, high = cell.get("interval") or (None, None)
    verdict = cell.get("verdict", "")
    return format_interval(cell.get("value"), low, high) + MARKS.get(verdict, ""), verdict


def _grid(
    layers: list[str], columns: list[str], cells: dict[str, dict[str, Any]]
) -> tuple[list[list[str]], list[list[str]]]:
    rows, classes = [], []
    for layer in layers:
        found = [_cell((cells.get(layer) or {}).get(c)) for c in columns]
        rows.append([layer, *(text for text, _ in found)])
        classes.append(["", *(verdict for _, verdict in found)])
    return rows, classes


def report_tables(report: dict[str, Any]) -> list[Table]:
    """The tables of the report, in order (see the module docstring)."""
    tables = [*_diagnostics(report), *_kept(report), *_share(report)]
    return [*tables, _interventions(report), _preservation(report), _invariances(report)]


def _diagnostics(report: dict[str, Any]) -> list[Table]:
    diagnostics, layers = report["diagnostics"], report["layers"]
    concepts = diagnostics["concepts"]
    cells = diagnostics["verdicts"]
    rows = [[layer, *(cells[layer][c]["verdict"] for c in concepts)] for layer in layers]
    classes = [["", *(cells[layer][c]["verdict"] for c in concepts)] for layer in layers]
    fixes = [
        f"{c['name']} ({_scope(c)}): {fmt(c['value'])}, {c['verdict']}: {c['fix']}"
        for c in diagnostics["checks"]
        if c["verdict"] != SOUND
    ]
    verdicts = Table("Verdicts", VERDICT_TEXT, ["layer", *concepts], rows, classes, fixes)
    header = ["check", "of", "value", "sound at", "doubtful at", "verdict"]
    check_rows, check_classes = [], []
    for check in diagnostics["checks"]:
        check_rows.append(
            [check["name"], f"{check['part']} ({_scope(check)})", fmt(check["value"]),
             fmt(check["sound_at"]), fmt(check["doubtful_at"]), check["verdict"]]
        )  # fmt: skip
        check_classes.append(["", "", check["verdict"], "", "", check["verdict"]])
    text = "The checks behind the verdicts: 1 is what a sound fit shows, 0 a failed one."
    return [verdicts, Table("Checks", text, header, check_rows, check_classes)]


def _scope(check: dict[str, Any]) -> str:
    """What a check's verdict applies to: a layer, a factor, or every figure."""
    if check["layer"]:
        return f"layer {check['layer']}"
    return f"factor {check['factor']}" if check["factor"] else "every figure"


def _kept(report: dict[str, Any]) -> list[Table]:
    kept = report["kept"]
    title = "Kept: what invariance samples still show"
    if not kept["available"]:
        return [Table(title, f"Skipped: {kept['reason']}.", [], [])]
    factors = list(kept["judge"]["factors"])
    rows, classes = _grid(report["layers"], factors, kept["layers"])
    table = Table(title, KEPT_TEXT + " " + LEGEND, ["layer", *factors], rows, classes)
    judge = kept["judge"]
    header = ["factor", "measure", "real images", "reconstructions", "chance"]
    raw = [
        [name, "accuracy" if f["kind"] == "categorical" else "R²", fmt(f["real"], 3),
         fmt(f["reconstructions"], 3), fmt(f["chance"], 3)]
        for name, f in judge["factors"].items()
    ]  # fmt: skip
    for layer in report["layers"]:
        cells = kept["layers"][layer]
        raw.append([f"samples at {layer}", "", "", "", ""])
        raw += [[f"  {n}", "", fmt(c["samples"], 3), "", ""] for n, c in cells.items()]
    text = (
        f"The judge's scores, trained on {judge['rows']} real thumbnails of rows not analyzed: "
        "on the analyzed rows' images, on their reconstructions, on each layer's samples."
    )
    return [table, Table("Kept: the judge's raw scores", text, header, raw)]


def _share(report: dict[str, Any]) -> list[Table]:
    layers, columns = report["layers"], report["factors"]
    rows, classes = _grid(layers, columns, report["share_explained"])
    tables = [
        Table("Share of variance explained by each layer", SHARE_TEXT + " " + LEGEND,
              ["layer", *columns], rows, classes)
    ]  # fmt: skip
    ceilings = report.get("ceilings") or {}
    if ceilings:
        named = [c for c in columns if c in ceilings]
        ceiling_row = ["ceiling"]
        ceiling_row += [
            format_interval(ceilings[c]["value"], *ceilings[c]["interval"]) for c in named
        ]
        fractions = [
            [layer, *(fmt(report["share_explained"][layer][c]["of_ceiling"]) + MARKS.get(
                report["share_explained"][layer][c]["verdict"], "") for c in named)]
            for layer in layers
        ]  # fmt: skip
        tables.append(
            Table("Share as a fraction of its ceiling", CEILING_TEXT, ["", *named],
                  [ceiling_row, *fractions])
        )  # fmt: skip
    return tables


def _interventions(report: dict[str, Any]) -> Table:
    found = report.get("interventions") or {"reason": "not measured by this report's innx"}
    if not found.get("available"):
        return Table(INTERVENTIONS_TITLE, f"Skipped: {found['reason']}.", [], [])
    header = ["swapped block", "changes the prediction", "follows the donor"]
    header += ["donor already alike", "rows"]
    blocks = dict(found["factors"])
    if found["residual"] is not None:
        blocks["residual (control)"] = found["residual"]
    rows, classes = [], []
    for name, cell in blocks.items():
        effect, verdict = _cell(cell["effect"])
        rows.append([name, effect, fmt(cell["follows_donor"]), fmt(cell["donor_same"]),
                     str(cell["n"])])  # fmt: skip
        classes.append(["", verdict, "", "", ""])
    text = f"{INTERVENTIONS_TEXT} Donors: {found['rule']}. {LEGEND}"
    notes = [f"{name} left out: {why}" for name, why in (found.get("left_out") or {}).items()]
    return Table(INTERVENTIONS_TITLE, text, header, rows, classes, notes)


def _preservation(report: dict[str, Any]) -> Table:
    kept = report["preservation"]
    title = "Preservation of the representation"
    if not kept["available"]:
        return Table(title, f"Skipped: {kept['reason']}.", [], [])
    note = f" {kept['agreement_note']}." if kept.get("agreement_note") else ""
    keys = ["cosine_samples", "cosine_reconstructions", "cosine_shuffled"]
    keys += ["agreement_samples", "agreement_reconstructions"]
    rows = [
        [layer, *(fmt(kept["layers"][layer][k], 3) for k in keys)] for layer in report["layers"]
    ]
    header = ["layer", "cosine: samples", "reconstructions", "another row"]
    header += ["agreement: samples", "reconstructions"]
    return Table(title, PRESERVATION_TEXT + note, header, rows)


def _invariances(report: dict[str, Any]) -> Table:
    found, layers = report["invariances"], report["layers"]
    keys = ["mean_abs", "std_min", "std_max", "skew_abs_mean", "kurtosis_mean"]
    keys += ["r2_from_z", "r2_from_shuffled_z"]
    header = ["layer", "mean |mean|", "std min", "std max", "mean |skew|", "excess kurtosis"]
    header += ["R² from z", "R² from shuffled z"]
    rows = [[layer, *(fmt(found[layer].get(k), 3) for k in keys)] for layer in layers]
    reasons = sorted({r for layer in layers if (r := found[layer].get("reason"))})
    text = INVARIANCE_TEXT + "".join(f" {r}." for r in reasons)
    return Table("Invariances v", text, header, rows)
