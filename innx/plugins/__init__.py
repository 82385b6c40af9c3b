"""Plugins: what is installed in the ``innx.*`` entry-point groups, loaded lazily and once.

This module is the whole plugin surface of innx. A plugin is an installed distribution that
declares entry points in one of :data:`GROUPS`, for example in its ``pyproject.toml``::

    [project.entry-points."innx.backbones"]
    my-net = "my_package.backbone:make_my_net"

    [project.entry-points."innx.commands"]
    hello = "my_package.cli:app"      # a typer.Typer (``innx hello ...``) or a function

Rules, and why:

- **Lazy, once.** Nothing is imported when innx is imported. The entry points are read on first
  use of the :func:`registry` and each plugin is imported the first time it is asked for; both
  results (including failures) are cached for the life of the process.
- **A broken plugin breaks only itself.** A plugin whose import raises is recorded as a failure;
  asking for it raises :class:`~innx.errors.PluginError` naming its distribution and the fix,
  everything else keeps working, and ``innx plugins`` reports it.
- **Names are owned by the core.** Two distributions declaring the same name in the same group
  make that name unusable (loading it is an error naming both); other names are unaffected.
- **``INNX_PLUGINS`` limits what loads.** Unset or empty: everything. ``none``: no third-party
  plugin. A comma list (``INNX_PLUGINS=innx-timm,my-net``): only entries whose distribution name
  (case-insensitive, ``-``/``_``/``.`` equivalent) or entry-point name is listed. Entries of the
  ``innx`` distribution itself always load. Disabled entries stay listed, they are just not loaded,
  and do not take part in duplicate detection, so the variable also settles a name clash.
- **One path for everything.** Built-in entries (declared by the ``innx`` distribution) and
  in-process objects added with :meth:`Registry.register` (tests, notebooks) go through the same
  checks as third-party plugins.

Example::

    from innx.plugins import registry

    factory = registry().load("innx.backbones", "my-net")   # PluginError if missing or broken
    for status in registry().report():                      # loads every enabled plugin
        print(status.entry.group, status.entry.name, status.status, status.error)
"""

from innx.plugins.entries import BUILTIN_DIST, ENV_VAR, GROUPS, PluginEntry, PluginStatus, Status
from innx.plugins.registry import Registry, registry

__all__ = [
    "BUILTIN_DIST",
    "ENV_VAR",
    "GROUPS",
    "PluginEntry",
    "PluginStatus",
    "Registry",
    "Status",
    "registry",
]
