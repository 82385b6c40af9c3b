"""The files of an ``innx analyze`` report: ``report.json`` (every number), ``report.md`` (readable
tables), PNG figures (:mod:`innx.ops.report_figures`) and ``report.html``, which embeds the
figures as data URIs so that it opens offline, copied anywhere, on its own.

The key table is ``report["share_explained"][layer][factor]``: the share of the factor's variance
that the layer explains (1: the layer determines it; 0: the layer is invariant to it).
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innx.ops.report_figures import draw_figures

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"

SHARE_TEXT = (
    "The share of each concept's variance that the layer explains, Var_z(E_v[e_i | z]) / "
    "Var(e_i), over draws v ~ N(0, I) of zbar = t⁻¹(v | z): 1 when the layer determines the "
    "concept, 0 when the layer is invariant to it."
)
PRESERVATION_TEXT = (
    "Invariance samples D(t⁻¹(v | z)) seen again by the network: the cosine similarity of their "
    "representation Φ with z, and how often the classifier predicts for them what it predicts for "
    "the original, beside the same for plain reconstructions D(zbar). 'another row' is the "
    "cosine similarity of z with an unrelated row's z."
)
INVARIANCE_TEXT = (
    "The invariances v = t(zbar | z) of the rows: standard normal when t fits (means 0, standard "
    "deviations 1, skew and excess kurtosis 0), and independent of z: the held-out R² of a ridge "
    "regression predicting v from z is then about the same as from shuffled rows (about 0)."
)


@dataclass(frozen=True)
class Table:
    """A titled table: a sentence on what it shows, a header and rows of cells."""

    title: str
    text: str
    header: list[str]
    rows: list[list[str]]


def write_report(report: dict[str, Any], directory: Path) -> list[str]:
    """Write every file of ``report`` into ``directory``; return the file names, in order."""
    report = clean(report)
    (directory / JSON_FILE).write_text(json.dumps(report, indent=2) + "\n")
    figures = draw_figures(report, directory)
    tables = report_tables(report)
    (directory / MARKDOWN_FILE).write_text(markdown(report, tables, figures))
    (directory / HTML_FILE).write_text(html_page(report, tables, figures, directory))
    return [JSON_FILE, MARKDOWN_FILE, HTML_FILE, *figures]


def clean(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (valid JSON), tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def report_tables(report: dict[str, Any]) -> list[Table]:
    """The tables of the report, in order: share explained, preservation, invariances."""
    layers, factors = report["layers"], report["factors"]
    share = report["share_explained"]
    tables = [
        Table(
            "Share of variance explained by each layer",
            SHARE_TEXT,
            ["layer", *factors],
            [[layer, *(_fmt(share[layer].get(f)) for f in factors)] for layer in layers],
        )
    ]
    kept = report["preservation"]
    if kept["available"]:
        note = f" {kept['agreement_note']}." if kept.get("agreement_note") else ""
        rows = []
        for layer in layers:
            p = kept["layers"][layer]
            rows.append(
                [
                    layer,
                    _fmt(p["cosine_samples"], 3),
                    _fmt(p["cosine_reconstructions"], 3),
                    _fmt(p["cosine_shuffled"], 3),
                    _fmt(p["agreement_samples"], 3),
                    _fmt(p["agreement_reconstructions"], 3),
                ]
            )
        header = ["layer", "cosine: samples", "reconstructions", "another row"]
        header += ["agreement: samples", "reconstructions"]
        tables.append(Table("Preservation of the representation", PRESERVATION_TEXT + note,
                            header, rows))  # fmt: skip
    else:
        tables.append(
            Table("Preservation of the representation", f"Skipped: {kept['reason']}.", [], [])
        )
    found = report["invariances"]
    keys = ["mean_abs", "std_min", "std_max", "skew_abs_mean", "kurtosis_mean"]
    keys += ["r2_from_z", "r2_from_shuffled_z"]
    header = ["layer", "mean |mean|", "std min", "std max", "mean |skew|", "excess kurtosis"]
    header += ["R² from z", "R² from shuffled z"]
    rows = [[layer, *(_fmt(found[layer].get(k), 3) for k in keys)] for layer in layers]
    reasons = sorted({r for layer in layers if (r := found[layer].get("reason"))})
    text = INVARIANCE_TEXT + "".join(f" {r}." for r in reasons)
    tables.append(Table("Invariances v", text, header, rows))
    return tables


def _summary(report: dict[str, Any]) -> list[str]:
    rows, options = report["rows"], report["options"]
    lines = [
        f"store: {report['store']['path']}",
        f"rows: {rows['chosen']} ({rows['count']} rows, {rows['held_out']} held out from the fits)",
        f"draws of v per row: {options['draws']}; decoded per row: {options['decode_draws']}",
    ]
    semantic = report.get("semantic")
    lines.append(
        f"concepts: e of {semantic['run']} (block sizes: "
        + ", ".join(f"{k} {v}" for k, v in semantic["blocks"].items())
        + ")"
        if semantic
        else "concepts: none (no semantic run); the share is that of the code zbar"
    )
    details = report["details"]
    lines += [f"layer {layer}: {details[layer]['run']}" for layer in report["layers"]]
    return lines


def markdown(report: dict[str, Any], tables: list[Table], figures: list[str]) -> str:
    """``report.md``: the summary, every table, and the figures as image links."""
    out = ["# innx analyze", "", *(f"- {line}" for line in _summary(report)), ""]
    pictures = {0: figures[:2], 1: figures[2:]}
    for k, table in enumerate(tables):
        out += [f"## {table.title}", "", table.text, ""]
        if table.header:
            out.append(_md_row(table.header))
            out.append("|" + "---|" * len(table.header))
            out += [_md_row(row) for row in table.rows]
            out.append("")
        out += [f"![{name}]({name})" for name in pictures.get(k, [])]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def html_page(
    report: dict[str, Any], tables: list[Table], figures: list[str], directory: Path
) -> str:
    """``report.html``: the same content as ``report.md``, the figures embedded as base64."""
    e = html.escape
    body = ["<h1>innx analyze</h1>", "<ul>"]
    body += [f"<li>{e(line)}</li>" for line in _summary(report)]
    body.append("</ul>")
    pictures = {0: figures[:2], 1: figures[2:]}
    for k, table in enumerate(tables):
        body += [f"<h2>{e(table.title)}</h2>", f"<p>{e(table.text)}</p>"]
        if table.header:
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr>")
            for row in table.rows:
                body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            body.append("</table>")
        for name in pictures.get(k, []):
            data = base64.b64encode((directory / name).read_bytes()).decode("ascii")
            body.append(f'<img alt="{e(name)}" src="data:image/png;base64,{data}">')
    head = f'<meta charset="utf-8"><title>innx analyze</title><style>{STYLE}</style>'
    return (
        f"<!doctype html>\n<html><head>{head}</head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
