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
