"""The HDF5 datasets of a new store: their chunks, compression, checksums and allocation.

See :mod:`innx.store.activations` for why a store being written is allocated up front and
uncompressed, and compressed only when finished.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from innx.store.layout import StoreLayout, dataset_attrs, root_attrs

COMPRESSED = ("layers/", "latents", "images")  # the big datasets; the small ones stay plain
CHECKSUMS = True
"""Whether new stores get Fletcher-32 chunk checksums; ``benchmarks/extract.py`` turns it off
to measure what they cost. Keep it on."""


def create_datasets(file: h5py.File, layout: StoreLayout, compression: str) -> None:
    """Root attributes and every dataset of ``layout`` in the new ``file``.

    ``compression="none"`` (the file a writer fills in place): every dataset allocated at creation,
    never filled, chunked with a checksum per chunk. Otherwise (the finished copy) the big datasets
    are compressed, with the same chunks and checksums.
    """
    file.attrs.update(root_attrs(layout))
    file.create_group("layers", track_order=True)
    for name, shape, dtype in layout.datasets():
        options: dict[str, Any] = {"track_times": False}
        if 0 in shape:
            pass  # an empty dataset (no attributes, say): contiguous, nothing to allocate
        elif compression != "none" and name.startswith(COMPRESSED):
            options["chunks"] = (layout.chunk_rows(shape[1:], dtype), *shape[1:])
            options["compression"] = compression
            options["shuffle"] = True
            options["fletcher32"] = CHECKSUMS
            if compression == "gzip":
                options["compression_opts"] = 4
        else:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            options["chunks"] = (layout.chunk_rows(shape[1:], dtype), *shape[1:])
            options["dcpl"] = dcpl
            options["fill_time"] = "never"
            options["fletcher32"] = CHECKSUMS
        dataset = file.create_dataset(name, shape=shape, dtype=dtype, **options)
        dataset.attrs.update(dataset_attrs(layout, name))
    file.create_dataset(
        "bad",
        shape=(0,),
        maxshape=(None,),
        dtype=np.int64,
        chunks=(1024,),
        fletcher32=CHECKSUMS,
        track_times=False,
    )
