"""The one exception family of innx.

Every error a user can cause is an :class:`InnxError` whose message says what is wrong and how to
fix it, in one line. The command line turns it into ``error: <message>`` and exit code 1 in one
place (``innx.cli.app``); library callers catch it like any exception.
"""

from __future__ import annotations


class InnxError(Exception):
    """A problem the user can fix; the message says how."""


class ConfigError(InnxError, ValueError):
    """Arguments that cannot build a working object (sizes, names, presets)."""


class ShapeError(InnxError, ValueError):
    """A tensor whose shape or values do not match what a module was built for."""


class PluginError(InnxError):
    """A plugin that is missing, failed to load, or claims a name another plugin claims."""


class RunError(InnxError):
    """A run directory that is missing, incomplete, or was changed after it was written."""


class DataError(InnxError):
    """A dataset that is missing, malformed, or cannot be read (names the file and the fix)."""


class StoreError(InnxError):
    """An activation store that is missing, damaged, incomplete, locked, or does not match."""


class InnxWarning(UserWarning):
    """Something works but is probably not what the user wants (random weights, say); the command
    line prints it as ``warning: <message>`` on stderr."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``"ExcType: first line of the message"``, cut at ``limit`` characters: the cause of a
    library error inside a one-line innx message (torch's messages run to paragraphs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
