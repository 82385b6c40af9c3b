"""The inputs of ``innx extract``: dataset rows preprocessed in the loader's workers, batched."""

from __future__ import annotations

from typing import Any

import torch

from innx.backbones import Preprocessing
from innx.data.base import ImageDataset
from innx.errors import DataError


class ExtractItems(torch.utils.data.Dataset[dict[str, Any]]):
    """Dataset rows, read in the loader's workers; :meth:`collate` turns a batch of them into
    backbone inputs (float, preprocessed) and thumbnails, in the workers too."""

    def __init__(
        self,
        dataset: ImageDataset,
        preprocessing: Preprocessing,
        thumb: tuple[int, int] | None,
        skip_bad: bool,
    ) -> None:
        self.dataset, self.preprocessing, self.skip_bad = dataset, preprocessing, skip_bad
        self.thumbnail: Preprocessing | None = None  # resized and cropped, not normalised
        if thumb is not None:
            c = preprocessing.channels
            self.thumbnail = Preprocessing(size=thumb, mean=(0.0,) * c, std=(1.0,) * c, channels=c)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            x, label, attributes = self.dataset[index]
        except DataError:
            if not self.skip_bad:
                raise
            return {"index": index, "bad": True}
        return {"index": index, "bad": False, "raw": x, "label": label, "attributes": attributes}

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch of items: preprocessed once all of them are read (a few percent faster than
        reading and preprocessing each in turn), then stacked (:func:`collate_items`)."""
        for item in items:
            if not item["bad"]:
                raw = item.pop("raw")
                item["x"] = self.preprocessing(raw)
                if self.thumbnail is not None:
                    item["image"] = self.thumbnail.fit(raw).permute(1, 2, 0).contiguous()  # HWC
        return collate_items(items)


def collate_items(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [item for item in items if not item["bad"]]
    if not good:
        raise DataError("every image of a batch is unreadable; check the dataset")
    template = good[0]
    batch: dict[str, Any] = {"bad": [item["index"] for item in items if item["bad"]]}
    batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.int64)
    batch["index"][[i for i, item in enumerate(items) if item["bad"]]] = -1
    for key in ("x", "attributes", "image"):
        if key in template:
            batch[key] = torch.stack(
                [
                    item[key] if not item["bad"] else torch.zeros_like(template[key])
                    for item in items
                ]
            )
    batch["label"] = torch.tensor(
        [item["label"] if not item["bad"] else -1 for item in items], dtype=torch.int64
    )
    return batch
