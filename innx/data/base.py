"""The dataset contract: images with labels and named attributes, each row the same every time.

Every innx dataset is an :class:`ImageDataset`: a map-style ``torch.utils.data.Dataset`` whose
item ``i`` is ``(x, label, attributes)``:

- ``x``: ``uint8`` tensor ``[C, H, W]`` in the dataset's own size and channels (a backbone's
  :class:`~innx.backbones.Preprocessing` resizes and normalises it);
- ``label``: ``int`` class index into :attr:`ImageDataset.classes`, ``-1`` for unlabelled data;
- ``attributes``: ``float32`` tensor ``[K]``, one value per entry of :attr:`ImageDataset.attributes`
  (a categorical attribute holds its category index, a continuous one its value).

Datasets are addressed by spec strings (``shapes:n=20000,size=32,seed=0``, ``folder:PATH``) and
registered as entry points in the ``innx.datasets`` group; see :mod:`innx.data.spec`.
"""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import Dataset

AttributeKind = Literal["categorical", "continuous"]
CATEGORICAL: AttributeKind = "categorical"
CONTINUOUS: AttributeKind = "continuous"

Item = tuple[torch.Tensor, int, torch.Tensor]
"""``(x uint8 [C, H, W], label, attributes float32 [K])``."""


def check_index(index: int, n: int) -> int:
    """``index`` as a plain ``int`` in ``[0, n)``; ``IndexError`` otherwise (negative too).

    Negative indices are refused rather than wrapped: a dataset index is a row id that is recorded
    (``/index`` of an activation store), and ``-1`` there is always a bug.
    """
    i = operator.index(index)
    if not 0 <= i < n:
        raise IndexError(f"index {i} is out of range for a dataset of {n} items")
    return i


def hash_json(value: object) -> str:
    """Hex sha256 of ``value`` as canonical JSON (sorted keys, no spaces): fingerprints of small
    descriptions (generator version and options, file listings, checksums)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Attribute:
    """A named factor of variation of the images.

    ``categories`` names the values of a categorical attribute (value ``k`` is
    ``categories[k]``); it is empty for a continuous one.
    """

    name: str
    kind: AttributeKind
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (CATEGORICAL, CONTINUOUS):
            raise ValueError(f"attribute kind must be categorical or continuous, not {self.kind!r}")


class ImageDataset(Dataset[Item]):
    """Base class of innx datasets; see the module docstring for the item contract.

    Subclasses set the attributes below in ``__init__`` and implement ``__len__``,
    ``__getitem__`` and :meth:`fingerprint`. Instances must pickle cheaply (DataLoader workers):
    open files lazily, per process.
    """

    name: str
    """Registry name (``"shapes"``, ``"folder"``, ...)."""
    spec: str
    """The canonical spec string that reopens this dataset (``open_dataset(ds.spec)``)."""
    root: str | None
    """The file or directory the data comes from; ``None`` for generated data."""
    classes: tuple[str, ...] | None
    """Class names (``label`` indexes them), ``None`` when the data has no labels."""
    attributes: tuple[Attribute, ...]
    """The attributes, in the order of the ``attributes`` tensor of each item."""
    channels: int
    """Channels of ``x`` (1 or 3)."""
    image_size: tuple[int, int] | None
    """``(H, W)`` when every image has that size, ``None`` when sizes vary."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Item:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A hex sha256 that changes when the content changes; cheap (seconds, not a full read)."""
        raise NotImplementedError

    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def describe(self) -> dict[str, object]:
        """A JSON-able summary: spec, size, classes, attributes with kinds."""
        return {
            "name": self.name,
            "spec": self.spec,
            "root": self.root,
            "n": len(self),
            "channels": self.channels,
            "image_size": list(self.image_size) if self.image_size else None,
            "classes": list(self.classes) if self.classes is not None else None,
            "attributes": [
                {"name": a.name, "kind": a.kind, "categories": list(a.categories)}
                for a in self.attributes
            ],
        }
