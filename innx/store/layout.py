"""The layout of an activation store (format ``innx.activations`` v1).

:class:`StoreLayout` says what a store holds (rows, layers with shapes, attributes, dtypes,
metadata); the writer (:mod:`innx.store.activations`), the shard joiner
(:mod:`innx.store.shards`) and the reader (:mod:`innx.store.view`) all follow it. Reading a
store's record of itself back, and comparing it with a layout, is :mod:`innx.store.metadata`.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from innx import __version__
from innx.data.base import Attribute
from innx.errors import ConfigError, StoreError

FORMAT = "innx.activations"
VERSION = 1
DTYPES = ("float32", "float16")
COMPRESSIONS = ("none", "lzf", "gzip")
CHUNK_BYTES = 256 << 10
"""A chunk holds at most this many bytes (fewer rows than ``batch_size`` when samples are big):
HDF5 checksums a chunk in a buffer of its own, which the C allocator reuses at this size, where
a 4 MiB one costs a page fault per page on every write and read."""
PLAIN_ATTRS = ("format", "version", "innx_version", "created", "complete")
"""Root attributes stored as themselves; every other root attribute is a JSON string."""
FIELDS = ("index", "labels", "attributes", "latents", "images")
"""Per-row datasets besides the layers, by the names :meth:`ActivationStore.load` accepts."""
RESERVED_LAYER_NAMES = (*FIELDS, "done")
"""Names a layer cannot have: the reader takes them for the store's own datasets."""
METADATA_KEYS = ("dataset", "backbone", "preprocessing", "extract")
"""JSON root attributes every store has (each an object, or ``null`` when not recorded)."""
CHECKSUM_BYTES = 4
"""What HDF5's Fletcher-32 filter adds to each chunk."""
REEXTRACT = "extract it again (innx extract … --overwrite)"
"""The fix for a damaged store."""


def damaged(path: Path, what: str) -> StoreError:
    """``"<path> is damaged: <what>; extract it again (innx extract … --overwrite)"``."""
    return StoreError(f"{path} is damaged: {what}; {REEXTRACT}")


def check_layer_name(name: str) -> str:
    """``name`` when a layer can be stored and read back under it; else a one-line ``ConfigError``."""
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"layer name {name!r} cannot be stored; use a name without '/'")
    if name in RESERVED_LAYER_NAMES:
        raise ConfigError(
            f"layer name {name!r} is reserved for the store's own {name!r} dataset, so the layer "
            "could never be read back; store another layer, or give this one another public "
            "name in its backbone"
        )
    return name


@dataclass(frozen=True)
class LayerSpec:
    """A layer to store: public ``name`` (``"layer3.1.conv2"``), module path, sample shape."""

    name: str
    module: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class StoreLayout:
    """Everything that fixes a store's datasets before any row is written.

    ``dtype`` applies to ``/layers`` only; ``batch_size`` sets the rows per chunk along N;
    ``metadata`` maps ``dataset``, ``backbone``, ``preprocessing``, ``extract`` (and any other
    key) to JSON-able values, stored as JSON root attributes.

    >>> layout = StoreLayout(n=10, layers=(LayerSpec("conv1", "features.0", (4, 2, 2)),),
    ...                      attributes=(Attribute("size", "continuous"),), has_labels=True)
    >>> [(name, shape) for name, shape, _ in layout.datasets()][:4]
    [('index', (10,)), ('labels', (10,)), ('attributes', (10, 1)), ('layers/conv1', (10, 4, 2, 2))]
    """

    n: int
    layers: tuple[LayerSpec, ...]
    attributes: tuple[Attribute, ...]
    has_labels: bool
    dtype: str = "float32"
    compression: str = "none"
    latent_dim: int | None = None
    autoencoder: str | None = None
    image_shape: tuple[int, int, int] | None = None
    batch_size: int = 256
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"a store needs at least one row, got n={self.n}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"compression must be one of {', '.join(COMPRESSIONS)}, not {self.compression!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be at least 1, got {self.latent_dim}")
        names = [layer.name for layer in self.layers]
        for name in names:
            check_layer_name(name)
        if len(set(names)) != len(names):
            raise ConfigError(f"layer names must be unique, got {', '.join(names)}")
        reserved = set(PLAIN_ATTRS) & set(self.metadata)
        if reserved:
            raise ConfigError(f"metadata keys {sorted(reserved)} are reserved by the format")

    def datasets(self) -> list[tuple[str, tuple[int, ...], np.dtype[Any]]]:
        """``(name, shape, dtype)`` of each per-row dataset (not ``/bad``), in file order."""
        n = self.n
        specs: list[tuple[str, tuple[int, ...], np.dtype[Any]]] = [("index", (n,), _I64)]
        if self.has_labels:
            specs.append(("labels", (n,), _I64))
        specs.append(("attributes", (n, len(self.attributes)), _F32))
        for layer in self.layers:
            shape = (n, *(int(s) for s in layer.shape))
            specs.append((f"layers/{layer.name}", shape, np.dtype(self.dtype)))
        if self.latent_dim is not None:
            specs.append(("latents", (n, self.latent_dim), _F32))
        if self.image_shape is not None:
            specs.append(("images", (n, *(int(s) for s in self.image_shape)), np.dtype(np.uint8)))
        specs.append(("done", (n,), np.dtype(bool)))
        return specs

    def nbytes(self) -> int:
        """Bytes the per-row datasets take on disk (their data and chunk checksums), the most of
        a store's size: what it needs free to be created."""
        total = 0
        for _, shape, dtype in self.datasets():
            rows = self.chunk_rows(shape[1:], dtype)
            total += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            total += -(-shape[0] // rows) * CHECKSUM_BYTES
        return total

    def chunk_rows(self, sample_shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
        """Rows per chunk: ``min(batch_size, n)``, fewer when that would pass ``CHUNK_BYTES``."""
        rows = min(self.batch_size, self.n)
        sample_bytes = int(np.prod(sample_shape, dtype=np.int64)) * dtype.itemsize
        return max(1, min(rows, CHUNK_BYTES // max(sample_bytes, 1)))


_I64 = np.dtype(np.int64)
_F32 = np.dtype(np.float32)


def root_attrs(layout: StoreLayout) -> dict[str, Any]:
    metadata = {"dataset": None, "backbone": None, "preprocessing": None, "extract": None}
    metadata.update(layout.metadata)
    attrs: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "innx_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": False,
    }
    attrs.update({key: json.dumps(value) for key, value in metadata.items()})
    attrs["versions"] = json.dumps(_versions())
    return attrs


def _versions() -> dict[str, str | None]:
    def installed(name: str) -> str | None:
        try:
            return dist_version(name)
        except PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "torch": installed("torch"),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": np.__version__,
        # the libraries that define the first-party plugins' models (None: not installed)
        "torchvision": installed("torchvision"),
        "timm": installed("timm"),
    }


def dataset_attrs(layout: StoreLayout, name: str) -> dict[str, Any]:
    if name == "attributes":
        return {
            "names": json.dumps([a.name for a in layout.attributes]),
            "kinds": json.dumps([a.kind for a in layout.attributes]),
            "categories": json.dumps([list(a.categories) for a in layout.attributes]),
        }
    if name.startswith("layers/"):
        layer = next(la for la in layout.layers if f"layers/{la.name}" == name)
        return {"module": layer.module, "shape": json.dumps([int(s) for s in layer.shape])}
    if name == "latents":
        return {"autoencoder": layout.autoencoder or ""}
    return {}
