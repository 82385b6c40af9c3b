"""A writer thread, so that HDF5 writes overlap the next forward pass of ``innx extract``."""

from __future__ import annotations

import queue
import threading
from typing import Any

import numpy as np

from innx.store import StoreWriter

QUEUE_DEPTH = 2
"""Batches waiting for the writer: memory stays bounded, compute never waits on one slow write."""


class StoreThread:
    """Writes batches on a thread, so HDF5 I/O overlaps the next forward pass."""

    def __init__(self, writer: StoreWriter, store_images: bool, has_labels: bool) -> None:
        self.writer = writer
        self.store_images = store_images
        self.has_labels = has_labels
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="innx-store-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.error is not None:
                continue  # drain after a failure
            local, batch, values = job
            try:
                self.writer.write(
                    local,
                    index=batch["index"].numpy(),
                    labels=batch["label"].numpy() if self.has_labels else None,
                    attributes=batch["attributes"].numpy(),
                    layers=values["layers"],
                    latents=values.get("latents"),
                    images=batch["image"].numpy() if self.store_images else None,
                )
            except BaseException as err:  # re-raised in the main thread
                self.error = err

    def put(self, local: np.ndarray, batch: dict[str, Any], values: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((local, batch, values))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self.error = self.error or RuntimeError("aborted")
        self.queue.put(None)
        self.thread.join()
