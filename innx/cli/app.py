"""The ``innx`` Typer app: built-in commands, plugin commands, and error handling in one place.

Exit codes (DESIGN.md, command-line contract): 0 success; 1 a user error, printed as one line
``error: <message>`` on stderr (with the traceback first when ``INNX_DEBUG=1``); 2 bad usage
(click's usage errors); 130 interrupted. Every :class:`~innx.errors.InnxError` raised by any
command, built-in or plugin, is turned into exit 1 by :class:`InnxGroup`, so that
``typer.testing.CliRunner`` sees what the console script does.

The app is built by :func:`build_app`, once per process through :func:`get_app`: it adds the
built-in commands listed in :data:`BUILTIN_COMMANDS`, then one command per entry point in
``innx.commands``. A command plugin that fails to load, is claimed by two distributions, or is not
a command becomes a stub that exits 1 with the reason; it never breaks other commands.

Importing this module, ``innx --help`` and ``innx --version`` must stay light: command modules
import heavy libraries (torch) inside their functions, not at module level.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from innx.errors import InnxError, InnxWarning, PluginError
from innx.plugins import Registry, registry

COMMANDS_GROUP = "innx.commands"

BUILTIN_COMMANDS: dict[str, str] = {
    "analyze": "innx.cli.analyze:analyze",
    "attack": "innx.cli.attack:attack",
    "backbones": "innx.cli.backbones:backbones",
    "compare": "innx.cli.compare:compare",
    "data": "innx.cli.data:app",
    "demo": "innx.cli.demo:demo",
    "extract": "innx.cli.extract:extract",
    "fit": "innx.cli.fit:app",
    "info": "innx.cli.info:info",
    "layers": "innx.cli.backbones:layers",
    "plugins": "innx.cli.plugins:plugins",
    "render": "innx.cli.render:app",
}
"""Built-in commands: name → ``"module:attribute"`` of a function (a command) or a
``typer.Typer`` (a command group). Imported when the app is built, so keep those modules light."""

APP_HELP = (
    "Make a trained CNN explain itself: what each layer encodes and what it is invariant to, "
    "with invertible neural networks."
)


def innx_version() -> str:
    """The installed innx version, or the source tree's when innx is not installed."""
    try:
        return dist_version("innx")
    except PackageNotFoundError:
        from innx import __version__

        return __version__


def debug_enabled() -> bool:
    """Whether ``INNX_DEBUG`` asks for tracebacks on user errors."""
    return os.environ.get("INNX_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def report_error(exc: InnxError) -> None:
    """Print ``error: <message>`` on stderr, after the traceback when debugging."""
    if debug_enabled():
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        typer.echo(trace, err=True, nl=False)
    typer.echo(f"error: {exc}", err=True)


def report_interrupt() -> None:
    """Say on stderr why the command stopped (the shell shows ``^C`` without a newline)."""
    typer.echo("\ninterrupted", err=True)


class InnxGroup(TyperGroup):
    """The root command group; turns errors of whatever command runs into exit codes.

    ``InnxError`` → ``error: <message>`` on stderr and exit 1; ``KeyboardInterrupt`` → exit 130;
    an :class:`~innx.errors.InnxWarning` → ``warning: <message>`` on stderr.
    Any other exception is a bug and keeps its traceback.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except InnxError as exc:
            report_error(exc)
            raise typer.Exit(1) from None
        except (OSError, RuntimeError) as exc:
            failure = storage_failure(exc)
            if failure is None:
                raise  # a bug: keep its traceback
            report_error(failure)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            report_interrupt()
            raise typer.Exit(130) from None


def storage_failure(exc: BaseException) -> InnxError | None:
    """A one-line error for a full disk, read-only target or failed device write that escaped
    the command's own handling (which names the file and the way to go on); ``None`` for any
    other exception."""
    from innx.writes import ONLY_ON_WRITE, write_errno, write_failed

    if write_errno(exc) not in ONLY_ON_WRITE:
        return None
    target = getattr(exc, "filename", None) or _quoted_filename(str(exc)) or "the output"
    return write_failed(exc, target, "run again")


def _quoted_filename(text: str) -> str | None:
    """The file an HDF5 error message names (``filename = 'acts.h5'``)."""
    start = text.find("filename = '")
    if start < 0:
        return None
    rest = text[start + len("filename = '") :]
    return rest[: rest.find("'")] or None


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warning: <message>`` on stderr for innx's own warnings; Python's format for others."""
    if issubclass(category, InnxWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        text = warnings.formatwarning(message, category, filename, lineno, line)
        typer.echo(text, err=True, nl=False)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"innx {innx_version()}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the innx version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Make a trained CNN explain itself with invertible neural networks."""


def _import(target: str) -> Any:
    """The object at ``"module:attribute"``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _add_command(app: typer.Typer, name: str, obj: Any) -> None:
    """Add ``obj`` as ``innx NAME``: a Typer becomes a command group, a function a command."""
    if isinstance(obj, typer.Typer):
        app.add_typer(obj, name=name)
    else:
        app.command(name)(obj)


def _command_problem(name: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be added as command ``name`` (a phrase), or ``None`` when it can.

    Builds the command on a throwaway app, so that a plugin with, say, an unsupported parameter
    type fails here, alone, instead of breaking the whole command line when it is run.
    """
    if isinstance(obj, typer.Typer):
        probe = obj
    elif callable(obj) and not isinstance(obj, type):
        probe = typer.Typer()
        probe.command(name)(obj)
    else:
        return f"is a {type(obj).__name__}, not a typer.Typer or a function"
    try:
        typer.main.get_command(probe)
    except Exception as exc:
        detail = " ".join(str(exc).split())
        return f"is not a valid command: {type(exc).__name__}: {detail}"
    return None


def _add_stub(app: typer.Typer, reg: Registry, name: str) -> None:
    """Add ``innx NAME`` that fails with the plugin's error, whatever arguments it is given."""

    def unavailable(ctx: typer.Context) -> None:
        reg.load(COMMANDS_GROUP, name)  # raises the PluginError that explains the problem
        raise PluginError(f"command '{name}' is unavailable; run 'innx plugins' to see why")

    app.command(
        name,
        help="Unavailable: this plugin did not load; run 'innx plugins' to see why.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(unavailable)


def _add_plugin_commands(app: typer.Typer, reg: Registry, taken: set[str]) -> None:
    """One command per enabled ``innx.commands`` entry; never raises for a plugin."""
    for name in reg.names(COMMANDS_GROUP):
        if name in taken:
            reg.reject(COMMANDS_GROUP, name, f"clashes with the built-in command 'innx {name}'")
            continue
        try:
            obj = reg.load(COMMANDS_GROUP, name)
        except PluginError:
            _add_stub(app, reg, name)
            continue
        problem = _command_problem(name, obj)
        if problem is None:
            _add_command(app, name, obj)
        else:
            reg.reject(COMMANDS_GROUP, name, problem)
            _add_stub(app, reg, name)


def build_app(reg: Registry | None = None) -> typer.Typer:
    """A new ``innx`` app with the built-in commands and the command plugins of ``reg``
    (default: the process-wide registry). Loads the command plugins; tests call it after
    registering plugins, the console script goes through :func:`get_app`."""
    reg = registry() if reg is None else reg
    app = typer.Typer(
        name="innx",
        cls=InnxGroup,
        help=APP_HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name, target in BUILTIN_COMMANDS.items():
        _add_command(app, name, _import(target))
    _add_plugin_commands(app, reg, set(BUILTIN_COMMANDS))
    return app


@functools.cache
def get_app() -> typer.Typer:
    """The process-wide app, built on first use."""
    return build_app()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``innx`` console script and ``python -m innx``; exits the process."""
    try:
        get_app()(args=None if argv is None else list(argv), prog_name="innx")
    except InnxError as exc:  # raised while building the app, outside any command
        report_error(exc)
        sys.exit(1)
    except KeyboardInterrupt:  # pressed during start-up, before a command runs
        report_interrupt()
        sys.exit(130)
