"""``innx plugins``: what is installed in the ``innx.*`` entry-point groups, and whether it loads.

The report loads every enabled plugin (that is the only way to know it loads) and exits 0 even
when some fail: it is a report, not a check. ``--json`` prints, for scripts::

    {
      "selection": null,            # INNX_PLUGINS as read ("none", "a,b"), null when unset
      "plugins": [                  # every declared entry, by group, name, distribution
        {"group": "innx.backbones", "name": "...", "value": "pkg.mod:attr",
         "dist": "...", "version": "...",
         "status": "ok" | "failed" | "duplicate" | "disabled",
         "error": null | "one-line message naming the distribution and the fix"}
      ],
      "failures": [...]             # the rows of "plugins" whose status is failed or duplicate
    }
"""

from __future__ import annotations

import json

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from innx.cli.params import JsonFlag
from innx.plugins import GROUPS, PluginStatus, registry

_STYLES = {"ok": "green", "failed": "bold red", "duplicate": "bold red", "disabled": "dim"}


def _table(statuses: list[PluginStatus], selection: str | None) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        caption=f"INNX_PLUGINS={selection}" if selection else None,
    )
    for header in ("group", "name", "distribution", "version", "status"):
        table.add_column(header, no_wrap=True)
    table.add_column("error", overflow="fold")
    for s in statuses:
        e = s.entry
        table.add_row(
            Text(e.group),
            Text(e.name),
            Text(e.dist),
            Text(e.version),
            Text(s.status, style=_STYLES[s.status]),
            Text(s.error or ""),
        )
    return table


def plugins(json_output: JsonFlag = False) -> None:
    """List the installed plugins, the distribution providing each, and why any fails to load."""
    reg = registry()
    statuses = reg.report()
    if json_output:
        rows = [s.as_dict() for s in statuses]
        report = {
            "selection": reg.selection,
            "plugins": rows,
            "failures": [r for r in rows if r["status"] in ("failed", "duplicate")],
        }
        typer.echo(json.dumps(report, indent=2))
        return
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or a file: one line per row, for grep and friends
        console.width = 1000
    if statuses:
        console.print(_table(statuses, reg.selection))
    else:
        console.print(f"no plugins installed in {', '.join(GROUPS)}")
