"""Read images of a dataset in batches, at a backbone's input size, as compact ``uint8`` tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from innx.backbones import Preprocessing
from innx.data.base import ImageDataset
from innx.train.batches import hold_in_memory
from innx.train.distributed import SINGLE, Part


@dataclass(frozen=True)
class ImageBatch:
    """``images`` ``uint8 [B, C, H, W]`` at the backbone's input size, ``labels`` ``int64 [B]``,
    ``attributes`` ``float32 [B, K]``."""

    images: torch.Tensor
    labels: torch.Tensor
    attributes: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def take(self, index: torch.Tensor) -> ImageBatch:
        return ImageBatch(self.images[index], self.labels[index], self.attributes[index])


class _Collate:
    """Resizes each image to the input size, then stacks (picklable for worker processes)."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        self.preprocessing = preprocessing

    def __call__(self, items: list[tuple[torch.Tensor, int, torch.Tensor]]) -> ImageBatch:
        images = torch.stack([self.preprocessing.fit(x) for x, _, _ in items])
        labels = torch.tensor([label for _, label, _ in items], dtype=torch.int64)
        attributes = torch.stack([a for _, _, a in items]).to(torch.float32)
        return ImageBatch(images, labels, attributes)


def iter_batches(
    dataset: ImageDataset,
    batches: Sequence[Sequence[int]],
    preprocessing: Preprocessing,
    *,
    workers: int = 0,
) -> Iterator[ImageBatch]:
    """The given batches of dataset rows, in order, read by ``workers`` processes."""
    loader = DataLoader(
        dataset,
        batch_sampler=[list(b) for b in batches],
        num_workers=workers,
        collate_fn=_Collate(preprocessing),
        persistent_workers=False,
    )
    yield from loader


def image_bytes(n: int, preprocessing: Preprocessing) -> int:
    """Memory of ``n`` images at the input size, as ``uint8``."""
    c, h, w = preprocessing.input_shape
    return n * c * h * w


def load_images(
    dataset: ImageDataset,
    rows: torch.Tensor,
    preprocessing: Preprocessing,
    *,
    workers: int = 0,
    batch_size: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> ImageBatch:
    """Rows ``rows`` of ``dataset`` in memory, in that order."""
    order = rows.tolist()
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    parts = []
    done = 0
    for batch in iter_batches(dataset, chunks, preprocessing, workers=workers):
        parts.append(batch)
        done += len(batch)
        if progress is not None:
            progress(done, len(order))
    if not parts:
        k = len(dataset.attributes)
        empty = torch.empty(0, *preprocessing.input_shape, dtype=torch.uint8)
        return ImageBatch(empty, torch.empty(0, dtype=torch.int64), torch.empty(0, k))
    return ImageBatch(
        torch.cat([p.images for p in parts]),
        torch.cat([p.labels for p in parts]),
        torch.cat([p.attributes for p in parts]),
    )


class ShuffledImages:
    """Training batches of some rows of a dataset for the shared loop: held in memory as
    ``uint8`` when they fit under :data:`~innx.train.batches.MEMORY_CAP`, else read from the dataset per batch.

    Each epoch visits the rows in a fresh permutation seeded by ``(seed, epoch)``, so the batch of
    any step can be recomputed alone (a resume sees the same batches); under ``torchrun`` each
    process takes its share of every global batch.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        rows: torch.Tensor,
        preprocessing: Preprocessing,
        batch_size: int,
        seed: int,
        *,
        workers: int = 0,
        part: Part = SINGLE,
    ) -> None:
        self.dataset = dataset
        self.rows = rows
        self.preprocessing = preprocessing
        self.batch_size = min(batch_size, len(rows))
        self.seed = seed
        self.workers = workers
        self.part = part
        self.steps_per_epoch = max(1, len(rows) // batch_size)
        in_memory = hold_in_memory(image_bytes(len(rows), preprocessing))
        self.data = (
            load_images(dataset, rows, preprocessing, workers=workers) if in_memory else None
        )
        self._epoch: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation)

    def _positions(self, step: int) -> torch.Tensor:
        """This process's positions (into ``rows``) in the global batch of ``step``."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:  # once per epoch, not per step
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch = (epoch, torch.randperm(len(self.rows), generator=generator))
        size = self.batch_size
        return self._epoch[1][offset * size : (offset + 1) * size][self.part.share(size)]

    def batches(self, start: int, stop: int) -> Iterator[ImageBatch]:
        """The batches of steps ``start … stop-1``, in order."""
        if self.data is not None:
            for step in range(start, stop):
                yield self.data.take(self._positions(step))
            return
        rows = [self.rows[self._positions(step)].tolist() for step in range(start, stop)]
        yield from iter_batches(self.dataset, rows, self.preprocessing, workers=self.workers)
