"""``innx data``: write the generated ``shapes`` dataset to a folder; describe any dataset.

``innx data shapes OUT`` writes PNG files, one subfolder per shape, and ``attributes.csv``;
``folder:OUT`` reads them back. ``innx data info SPEC`` prints what a spec opens: size, classes,
attributes with their kinds and categories, fingerprint (``--json`` for scripts). Paths go to
stdout, progress to stderr (a bar only on a terminal).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from innx.cli.params import JsonFlag, Overwrite, Seed
from innx.cli.progress import step_progress

app = typer.Typer(
    help="Datasets: generate the shapes dataset, describe any dataset spec.",
    no_args_is_help=True,
)


@app.command("shapes")
def shapes(
    out: Annotated[Path, typer.Argument(help="Folder to write (must not exist or be empty).")],
    # Defaults written here, not read from write_shapes_folder: 'innx data shapes --help' stays
    # instant by not importing innx.data (torch).
    n: Annotated[int, typer.Option("--n", min=1, help="Number of images.")] = 20000,
    size: Annotated[
        int, typer.Option("--size", min=16, max=128, help="Image size in pixels.")
    ] = 32,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Write the shapes dataset as an image folder (reopen it with folder:OUT); prints OUT."""
    from innx.ops.data.folders import write_shapes_folder

    with step_progress("writing shapes") as update:
        path = write_shapes_folder(
            out, n, size, seed, lambda done, total: update(done, total, {}), overwrite=overwrite
        )
    typer.echo(str(path))


SHOWN_CATEGORIES = 12
"""Categories listed per attribute by ``innx data info`` (the rest are counted)."""


def _format(description: dict[str, object]) -> str:
    """The description as aligned ``key: value`` lines, one per attribute with its kind."""
    lines = []
    for key in ("name", "spec", "root", "n", "channels", "image_size", "fingerprint"):
        value = description.get(key)
        if isinstance(value, list):
            value = "×".join(str(v) for v in value)
        elif key == "image_size" and value is None:
            value = "varying"
        lines.append(f"{key + ':':12} {value}")
    classes = description.get("classes")
    if isinstance(classes, list):
        lines.append(f"{'classes:':12} {len(classes)}: {', '.join(map(str, classes))}")
    else:
        lines.append(f"{'classes:':12} none (unlabelled)")
    attributes = description.get("attributes")
    assert isinstance(attributes, list)
    lines.append(f"{'attributes:':12} {len(attributes)}")
    for a in attributes:
        shown = a["categories"][:SHOWN_CATEGORIES]
        more = len(a["categories"]) - len(shown)
        categories = ", ".join(shown) + (f", … ({more} more)" if more else "")
        lines.append(f"  {a['name']:20} {a['kind']:12} {categories}".rstrip())
    if attributes:
        lines.append(
            "  (--factor NAME:categorical or NAME:continuous overrides a kind in fit semantic "
            "and analyze)"
        )
    return "\n".join(lines)


@app.command("info")
def info(
    spec: Annotated[
        str, typer.Argument(help="Dataset spec, e.g. shapes:n=1000 or folder:PATH or mnist:ROOT.")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Describe the dataset a spec opens: size, classes, attributes, fingerprint."""
    from innx.ops.data.folders import describe_dataset

    description = describe_dataset(spec)
    typer.echo(json.dumps(description, indent=2) if json_output else _format(description))
