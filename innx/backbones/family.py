"""Backbone families: one plugin entry that names many backbones, ``FAMILY:MEMBER``.

A library such as timm creates a thousand models from their names; one entry point per model
would be absurd. A plugin declares one entry in ``innx.backbones`` whose object is a family
(anything with the methods of :class:`BackboneFamily`), and every backbone name of the form
``FAMILY:MEMBER`` (``timm:resnet18``) is built by it. The family checks the member's name and its
options itself: they are the library's, not innx's.

The protocol is structural, so a plugin need not import innx (nor torch) to declare a family::

    class Family:
        summary = "Every model of mylib: mylib:<name>"

        def members(self) -> list[str]: ...
        def is_member(self, name: str) -> bool: ...
        def build(self, name: str, **options) -> Backbone: ...

    family = Family()   # the entry point: [project.entry-points."innx.backbones"] mylib = "pkg:family"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from innx.backbones.backbone import Backbone

SEPARATOR = ":"
"""Between a family's entry name and its member's name: ``timm:convnext_atto``."""


@runtime_checkable
class BackboneFamily(Protocol):
    """Many backbones behind one entry point (see the module docstring)."""

    summary: str
    """One line for ``innx backbones``: what the family is and how its names look."""

    def members(self) -> list[str]:
        """Every member name, sorted (may be long: timm has over a thousand)."""
        ...

    def is_member(self, name: str) -> bool:
        """Whether ``name`` builds (may accept more than :meth:`members` lists, such as tags)."""
        ...

    def build(self, name: str, **options: Any) -> Backbone:
        """Member ``name`` with random weights and ``options``; a ``ConfigError`` for bad ones."""
        ...


def split_name(name: str) -> tuple[str, str | None]:
    """``"timm:resnet18"`` → ``("timm", "resnet18")``; a plain name → ``(name, None)``."""
    family, sep, member = name.partition(SEPARATOR)
    return (family, member) if sep else (name, None)
