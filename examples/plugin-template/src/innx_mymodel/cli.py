"""``innx hello``: the smallest useful command plugin."""

from __future__ import annotations

from typing import Annotated

import typer

from innx.errors import InnxError


def hello(
    name: Annotated[str, typer.Argument(help="Who to greet.")] = "world",
    shout: Annotated[bool, typer.Option(help="Greet loudly.")] = False,
) -> None:
    """Greet someone: prints the result on stdout, like every innx command."""
    if not name.strip():
        # a user error: innx prints "error: <message>" and exits 1
        raise InnxError("name must not be empty; pass a name, e.g. innx hello Ada")
    greeting = f"hello, {name}"
    typer.echo(greeting.upper() if shout else greeting)
