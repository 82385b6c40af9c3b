"""What the generated datasets (``shapes``, ``cues``, ``digits``) share: ``n`` images of ``size`` px from a
``seed``, image ``i`` a function of ``(seed, i)`` only, rendered in blocks, and a spec string
``name:n=N,size=S,seed=SEED`` that reopens them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from innx.data.base import ImageDataset, Item, check_index, hash_json
from innx.data.spec import Options, no_location
from innx.errors import ConfigError

SIZE_RANGE = (16, 128)
RENDER_BLOCK = 256
"""Images rendered at once from attribute rows (fastest, and memory stays bounded)."""

P = TypeVar("P", bound="ProceduralDataset")


class ProceduralDataset(ImageDataset):
    """Base of a generated dataset: subclasses set :attr:`name`, :attr:`default_n`,
    :attr:`generator` (bumped whenever the images a ``(seed, index)`` pair gives change) and
    implement :meth:`render_range`."""

    root = None
    channels = 3
    default_n: ClassVar[int]
    generator: ClassVar[int]
    identity: ClassVar[dict[str, Any]] = {}
    """Extra keys of the fingerprint that tell this generator from another one."""

    def __init__(self, n: int, size: int = 32, seed: int = 0) -> None:
        if n < 1 or seed < 0 or not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
            raise ConfigError(
                f"{self.name} needs n >= 1, size in {SIZE_RANGE[0]}..{SIZE_RANGE[1]} and "
                f"seed >= 0; got n={n}, size={size}, seed={seed}"
            )
        self.n, self.size, self.seed = n, size, seed
        self.image_size = (size, size)
        self.spec = f"{self.name}:n={n},size={size},seed={seed}"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Item:
        i = check_index(index, self.n)
        x, labels, attributes = self.render_range(i, i + 1)
        return x[0], int(labels[0]), attributes[0]

    def render_range(
        self, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``start..stop-1`` at once: ``x`` uint8 ``[B, 3, S, S]``, labels int64 ``[B]``,
        attributes float32 ``[B, K]``; identical to indexing them one by one."""
        raise NotImplementedError

    def check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"range {start}..{stop} is outside a dataset of {self.n} items")

    def fingerprint(self) -> str:
        """sha256 of the generator version and the options: the images follow from them."""
        return hash_json(
            {
                **self.identity,
                "generator": self.generator,
                "n": self.n,
                "size": self.size,
                "seed": self.seed,
            }
        )

    @classmethod
    def open(cls: type[P], location: str | None, options: dict[str, str]) -> P:
        """The dataset of a spec's ``options`` (``n``, ``size``, ``seed``; no location)."""
        no_location(cls.name, location, f"{cls.name}:n=1000,size=32,seed=0")
        opts = Options(cls.name, options)
        n = opts.get_int("n", cls.default_n, min=1)
        size = opts.get_int("size", 32, min=SIZE_RANGE[0], max=SIZE_RANGE[1])
        seed = opts.get_int("seed", 0, min=0, max=2**63 - 1)
        opts.spec()
        return cls(n=n, size=size, seed=seed)


def render_items(
    attributes: NDArray[np.float32],
    size: int,
    render: Callable[[NDArray[np.float32], int], NDArray[np.uint8]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The items of attribute rows ``[B, K]`` whose first column is the label: images uint8
    ``[B, 3, S, S]`` drawn by ``render(rows, size)`` :data:`RENDER_BLOCK` rows at a time, labels
    int64 ``[B]`` and the rows themselves."""
    x = np.empty((len(attributes), 3, size, size), dtype=np.uint8)
    for k in range(0, len(attributes), RENDER_BLOCK):
        x[k : k + RENDER_BLOCK] = render(attributes[k : k + RENDER_BLOCK], size)
    labels = attributes[:, 0].astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(attributes)
