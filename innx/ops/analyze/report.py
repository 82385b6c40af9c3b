"""The files of an ``innx analyze`` report: ``report.json`` (every number), ``report.md`` (readable
tables), PNG figures (:mod:`innx.ops.analyze.figures`) and ``report.html``, which embeds the
figures as data URIs so that it opens offline, copied anywhere, on its own.

The report opens with the verdicts (``report["diagnostics"]``): whether each figure can be
interpreted, given the checks of the fits behind it. The key tables are
``report["kept"]["layers"][layer][factor]`` (how often invariance samples still show the factor)
and ``report["share_explained"][layer][factor]`` (the share of the factor's variance that the
layer explains); each cell holds its ``value``, bootstrap ``interval`` and ``verdict``
(:mod:`innx.ops.analyze.tables` draws them, marked).
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from innx.ops.analyze.figures import FIGURE_AFTER, draw_figures
from innx.ops.analyze.tables import Table, report_tables

JSON_FILE = "report.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


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
    for layer in report["layers"]:
        best = details[layer].get("best_step")
        at = f" (weights of step {best:.0f})" if best is not None else ""
        lines.append(f"layer {layer}: {details[layer]['run']}{at}")
    counts = report["diagnostics"]["counts"]
    lines.append(
        "verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + " (layer × concept)"
    )
    return lines


def _placed(tables: list[Table], figures: list[str]) -> dict[int, list[str]]:
    """Which figures follow which table (by title); the rest follow the last table."""
    titles = [t.title for t in tables]
    placed: dict[int, list[str]] = {}
    for name in figures:
        after = FIGURE_AFTER.get(name)
        k = titles.index(after) if after in titles else len(tables) - 1
        placed.setdefault(k, []).append(name)
    return placed


def markdown(report: dict[str, Any], tables: list[Table], figures: list[str]) -> str:
    """``report.md``: the summary, every table, and the figures as image links."""
    return markdown_document("innx analyze", _summary(report), _sections(tables, figures))


def _sections(tables: list[Table], figures: list[str]) -> list[tuple[Table, list[str]]]:
    """Each table with the figures shown after it."""
    pictures = _placed(tables, figures)
    return [(table, pictures.get(k, [])) for k, table in enumerate(tables)]


def markdown_document(
    title: str, summary: list[str], sections: list[tuple[Table, list[str]]]
) -> str:
    """A markdown report: ``title``, the ``summary`` as a list, then each section's table and
    pictures (analyze's ``report.md``, compare's ``compare.md``)."""
    out = [f"# {title}", "", *(f"- {line}" for line in summary), ""]
    for table, pictures in sections:
        out += table_markdown(table, pictures)
    return "\n".join(out).rstrip() + "\n"


def table_markdown(table: Table, pictures: list[str]) -> list[str]:
    """The markdown lines of one section: ``table`` (title, text, rows, notes), then
    ``pictures`` as image links."""
    out = [f"## {table.title}", "", table.text, ""]
    if table.header:
        out.append(_md_row(table.header))
        out.append("|" + "---|" * len(table.header))
        out += [_md_row(row) for row in table.rows]
        out.append("")
    out += [f"- {note}" for note in table.notes]
    if table.notes:
        out.append("")
    return [*out, *(f"![{name}]({name})" for name in pictures), ""]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.sound { background: #e6f4e6; }
td.doubtful { background: #fdf0d5; }
td.not-interpretable { background: #f8d7d7; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def html_page(
    report: dict[str, Any], tables: list[Table], figures: list[str], directory: Path
) -> str:
    """``report.html``: the same content as ``report.md``, the figures embedded as base64."""
    return html_document("innx analyze", _summary(report), _sections(tables, figures), directory)


def html_document(
    title: str, summary: list[str], sections: list[tuple[Table, list[str]]], directory: Path
) -> str:
    """:func:`markdown_document` as one self-contained html page: the pictures (files in
    ``directory``) embedded as base64."""
    e = html.escape
    body = [f"<h1>{e(title)}</h1>", "<ul>", *(f"<li>{e(line)}</li>" for line in summary), "</ul>"]
    for table, pictures in sections:
        body += [f"<h2>{e(table.title)}</h2>", f"<p>{e(table.text)}</p>"]
        if table.header:
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr>")
            for i, row in enumerate(table.rows):
                classes = table.classes[i] if i < len(table.classes) else []
                cells = []
                for j, cell in enumerate(row):
                    css = classes[j].replace(" ", "-") if j < len(classes) else ""
                    attr = f' class="{css}"' if css else ""
                    cells.append(f"<td{attr}>{e(cell)}</td>")
                body.append("<tr>" + "".join(cells) + "</tr>")
            body.append("</table>")
        if table.notes:
            body.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in table.notes) + "</ul>")
        for name in pictures:
            data = base64.b64encode((directory / name).read_bytes()).decode("ascii")
            body.append(f'<img alt="{e(name)}" src="data:image/png;base64,{data}">')
    head = f'<meta charset="utf-8"><title>{e(title)}</title><style>{STYLE}</style>'
    return (
        f"<!doctype html>\n<html><head>{head}</head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
