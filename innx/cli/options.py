"""Options shared by several commands, declared once as ``Annotated`` aliases, and their parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from innx.errors import ConfigError

JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON summary (for scripts).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed: same seed, same result.")]
Device = Annotated[str, typer.Option("--device", help="Torch device: cpu, cuda, cuda:1, …")]
Workers = Annotated[
    int, typer.Option("--workers", min=0, help="Data-loading worker processes (0: in process).")
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output instead of refusing.")
]
Weights = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Local weights: an 'innx fit classifier' run directory, a .safetensors file, or a "
        "torch state dict. Without it the model is randomly initialised.",
    ),
]
BackboneOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        help="A backbone option KEY=VALUE (repeatable), e.g. --option size=64; "
        "'innx backbones' lists each backbone's options.",
    ),
]
NumClasses = Annotated[
    int | None,
    typer.Option("--num-classes", min=2, help="Classes of the backbone's classifier layer."),
]
Output = Annotated[Path, typer.Option("-o", "--output", help="Where to write the result.")]


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["size=64", "name=x"]`` → ``{"size": 64, "name": "x"}`` (ints, floats, booleans typed)."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option takes KEY=VALUE, got {item!r}")
        options[key.strip()] = _literal(raw.strip())
    return options


def _literal(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
