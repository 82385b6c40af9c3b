"""Join per-rank shard stores into one store of HDF5 virtual datasets (``innx extract`` under
``torchrun``): readers see one file, the data stay in the shards."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from innx.errors import ConfigError, StoreError, first_line
from innx.store.checked import CheckedDataset
from innx.store.layout import StoreLayout, dataset_attrs, root_attrs
from innx.store.metadata import file_signature, layout_differences, layout_signature
from innx.writes import writing


def join_shards(path: str | Path, shards: Sequence[str | Path], layout: StoreLayout) -> None:
    """Write ``path``: one store whose datasets are virtual views over ``shards``, in order.

    Shard ``k`` holds rows ``offsets[k]..offsets[k+1]-1`` and is itself a store written with
    ``replace(layout, n=its rows)``. Source files are recorded relative to ``path``'s folder, so
    the set moves together. ``/bad`` is concatenated for real; ``complete`` is true when every
    shard is. The file is written under a temporary name and renamed.
    """
    path = Path(path)
    if not shards:
        raise ConfigError("join_shards needs at least one shard file")
    if not path.parent.is_dir():
        raise StoreError(f"folder {path.parent} does not exist; create it first")
    infos = [_read_shard(Path(shard), layout) for shard in shards]
    total = sum(n for _, n, _, _ in infos)
    if total != layout.n:
        raise StoreError(f"the shards hold {total} rows, the layout {layout.n}; join all shards")
    relative = [os.path.relpath(Path(shard).resolve(), path.parent.resolve()) for shard in shards]
    with writing(path):
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    tmp = Path(name)
    try:
        with writing(path), h5py.File(tmp, "w", locking=False) as file:
            file.attrs.update(root_attrs(layout))
            file.attrs["complete"] = all(complete for _, _, complete, _ in infos)
            file.attrs["shards"] = json.dumps(relative)
            file.create_group("layers", track_order=True)
            for ds_name, shape, dtype in layout.datasets():
                virtual = h5py.VirtualLayout(shape=shape, dtype=dtype)
                offset = 0
                for source, (_, n, _, _) in zip(relative, infos, strict=True):
                    part = (n, *shape[1:])
                    virtual[offset : offset + n] = h5py.VirtualSource(source, ds_name, shape=part)
                    offset += n
                dataset = file.create_virtual_dataset(ds_name, virtual)
                dataset.attrs.update(dataset_attrs(layout, ds_name))
            bad = np.concatenate([bad for _, _, _, bad in infos]).astype(np.int64)
            file.create_dataset("bad", data=bad, maxshape=(None,), chunks=(1024,), fletcher32=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_shard(path: Path, layout: StoreLayout) -> tuple[Path, int, bool, np.ndarray]:
    """``(path, rows, complete, bad)`` of a shard whose layout matches ``layout`` but for n."""
    if not path.is_file():
        raise StoreError(f"shard {path} does not exist; extract it first")
    try:
        file = h5py.File(path, "r", locking=False)
    except OSError as err:
        raise StoreError(f"shard {path} is not a readable HDF5 file ({first_line(err)})") from err
    with file:
        stored = file_signature(path, file)  # checks the format and metadata
        n = int(stored["rows"])
        differences = layout_differences(stored, layout_signature(replace(layout, n=n)))
        if differences:
            raise StoreError(f"shard {path} does not match the others ({'; '.join(differences)})")
        bad = (
            np.asarray(CheckedDataset(file["bad"], path)[...])
            if "bad" in file
            else np.zeros(0, np.int64)
        )
        return path, n, bool(file.attrs.get("complete", False)), bad
