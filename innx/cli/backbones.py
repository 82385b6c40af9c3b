"""``innx backbones`` and ``innx layers``: which backbones are installed, and what their layers are."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from innx.cli.params import BackboneOptions, JsonFlag, NumClasses, Weights, parse_options


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe: one line per row, for grep
        console.width = 1000
    return console


def backbones(
    family: Annotated[
        str | None,
        typer.Argument(help="A family of backbones (e.g. timm): list its names, one per line."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """List the installed backbones, the distribution providing each, and their options."""
    from innx.backbones import backbone_names, describe_factory, family_members
    from innx.errors import PluginError

    if family is not None:
        names = family_members(family)
        typer.echo(json.dumps(names, indent=2) if json_output else "\n".join(names))
        return

    rows: list[dict[str, Any]] = []
    for name in backbone_names():
        try:
            rows.append({**describe_factory(name), "error": None})
        except PluginError as err:
            rows.append({"name": name, "dist": None, "version": None, "error": str(err)})
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("backbone", "distribution", "options", "summary"):
        table.add_column(header, overflow="fold")
    for row in rows:
        options = ", ".join(f"{k}={v}" for k, v in (row.get("options") or {}).items())
        summary = row.get("summary") or f"[red]failed: {row['error']}[/red]"
        table.add_row(row["name"], f"{row['dist']} {row['version']}", options, summary)
    _console().print(table)


def layers(
    backbone: Annotated[str, typer.Argument(help="A backbone name (see 'innx backbones').")],
    weights: Weights = None,
    num_classes: NumClasses = None,
    option: BackboneOptions = None,
    all_modules: Annotated[
        bool, typer.Option("--all", help="Also list every module path (layers for experts).")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Print each layer's name, module path and output shape for the backbone's input size."""
    from innx.backbones import load_backbone

    options = parse_options(option)
    if num_classes is not None:
        options["num_classes"] = num_classes
    model, _ = load_backbone(backbone, weights, options=options, warn_random=False)
    infos = model.layer_info()
    if all_modules:
        public = {i.module for i in infos}
        infos += model.layer_info([p for p in model.module_paths() if p not in public])
    if json_output:
        report = {
            "backbone": model.name,
            "input_shape": list(model.preprocessing.input_shape),
            "preprocessing": model.preprocessing.to_dict(),
            "layers": [info.to_dict() for info in infos],
        }
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD, caption=f"input {list(model.preprocessing.input_shape)}")
    for header in ("layer", "module", "shape"):
        table.add_column(header, no_wrap=True)
    for info in infos:
        module = info.module or "(input)"
        if info.of_input:
            module = f"input of {module}"
        if info.computed:
            module = f"{module} → {info.computed}"
        if info.calls > 1:
            module = f"{module} (last of {info.calls} calls)"
        table.add_row(info.name, module, " × ".join(map(str, info.shape)))
    _console().print(table)
