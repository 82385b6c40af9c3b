"""``innx info STORE``: what an activation store holds, and whether it is complete.

Prints the store's metadata (dataset, backbone, preprocessing, extraction options, versions), one
row per dataset (name, shape, dtype, chunks, compression) and its completeness; ``--json`` prints
:meth:`~innx.store.ActivationStore.summary` for scripts. Works on a store that is still being
written or was interrupted ("incomplete: k of N rows").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from innx.cli.params import JsonFlag


def info(
    path: Annotated[Path, typer.Argument(help="An activation store (.h5) made by innx extract.")],
    json_output: JsonFlag = False,
) -> None:
    """Describe an activation store: metadata, datasets, completeness."""
    from innx.store.view import ActivationStore

    with ActivationStore(path, allow_incomplete=True) as store:
        summary = store.summary()
    if json_output:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print(summary)


def _completeness(summary: dict[str, Any]) -> str:
    rows = summary["rows"]
    if summary["complete"]:
        return f"complete ({rows['total']} rows)"
    return f"incomplete: {rows['done']} of {rows['total']} rows"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _print(summary: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe: one line per row, for grep
        console.width = 1000
    lines = [
        ("path", summary["path"]),
        ("format", f"{summary['format']} v{summary['version']}"),
        ("status", _completeness(summary)),
        ("size", _size(summary["size_bytes"])),
    ]
    for key, value in summary["metadata"].items():
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
            lines.append((key, text))
    for key, value in lines:
        console.print(f"{key + ':':15} {value}", markup=False)
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("dataset", "shape", "dtype", "chunks", "compression"):
        table.add_column(header, overflow="fold")
    for dataset in summary["datasets"]:
        chunks = dataset["chunks"]
        table.add_row(
            dataset["name"] + (" (virtual)" if dataset.get("virtual") else ""),
            "×".join(map(str, dataset["shape"])),
            dataset["dtype"],
            "×".join(map(str, chunks)) if chunks else "-",
            dataset["compression"] or "-",
        )
    console.print(table)
