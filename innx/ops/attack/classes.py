"""The classes of the attacked classifier, its ``--target``, and the store's attribute that holds
those classes: the attribute whose judge says which class an image shows to a reader other than
the classifier.

A run of ``innx fit classifier`` records its ``classes`` and, since ``--label ATTR``, the
``label`` it learnt (``None``: the dataset's classes). A classifier loaded from a weights file
records neither: its classes are then its logits' indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innx.data.base import CATEGORICAL
from innx.errors import ConfigError
from innx.store import ActivationStore
from innx.store.runs import read_run


@dataclass(frozen=True)
class Classes:
    """The names of a classifier's classes, where they come from (``source``: the run that
    recorded them, or ``None`` when they are only indices) and the ``label`` it recorded."""

    names: tuple[str, ...]
    source: str | None = None
    label: str | None = None

    def __len__(self) -> int:
        return len(self.names)

    def name(self, index: int) -> str:
        return self.names[index]

    def index(self, target: str, classifier: str) -> int:
        """The class ``target`` names, by name or by index; a one-line error otherwise."""
        if target in self.names:
            return self.names.index(target)
        if target.strip().isdigit() and int(target) < len(self.names):
            return int(target)
        shown = ", ".join(self.names[:20]) + (", …" if len(self.names) > 20 else "")
        raise ConfigError(
            f"--target {target} is not a class of {classifier}; give a class name ({shown}) or "
            f"an index from 0 to {len(self.names) - 1}"
        )


def classes_of(weights: str | Path | None, num_classes: int) -> Classes:
    """The classes recorded by the classifier run at ``weights`` (a run directory), or the
    indices ``0 … num_classes − 1`` when it records none (a weights file)."""
    config: dict[str, Any] = {}
    if weights is not None and Path(weights).is_dir():
        config = read_run(weights).config
    names = config.get("classes")
    label = config.get("label")
    if isinstance(names, list) and len(names) == num_classes:
        return Classes(
            tuple(map(str, names)), str(weights), label if isinstance(label, str) else None
        )
    return Classes(tuple(str(i) for i in range(num_classes)))


@dataclass(frozen=True)
class LabelAttribute:
    """The store's attribute that holds the classifier's classes: its ``name`` and, per class,
    the index of the attribute's category of the same name (``categories``); or ``None`` with
    the ``reason`` there is none."""

    name: str | None
    categories: tuple[int, ...] = ()
    reason: str | None = None


def label_attribute(store: ActivationStore, classes: Classes) -> LabelAttribute:
    """The attribute the classifier's run names as its ``label`` when the store has it; else the
    categorical attribute whose categories are the classifier's classes (in any order)."""
    if classes.source is None:
        return LabelAttribute(None, reason="the classifier records no class names")
    wanted = set(classes.names)
    found = [
        name
        for name, kind, categories in zip(
            store.attribute_names, store.attribute_kinds, store.attribute_categories, strict=True
        )
        if kind == CATEGORICAL and set(categories) == wanted and len(categories) == len(wanted)
    ]
    if classes.label in found:
        found = [classes.label]
    if not found:
        return LabelAttribute(
            None,
            reason=f"no attribute of {store.path} has the classifier's classes as its categories",
        )
    name = found[0]
    categories = store.attribute_categories[store.attribute_names.index(name)]
    return LabelAttribute(name, tuple(categories.index(c) for c in classes.names))
