"""The layout of an activation store (format ``innx.activations`` v1) and how to compare two.

:class:`StoreLayout` says what a store holds (rows, layers with shapes, attributes, dtypes,
metadata); the writer (:mod:`innx.store.activations`), the shard joiner
(:mod:`innx.store.shards`) and the reader (:mod:`innx.store.view`) all follow it.
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
CHUNK_BYTES = 4 << 20
"""A chunk holds at most this many bytes (fewer rows than ``batch_size`` when samples are big)."""
PLAIN_ATTRS = ("format", "version", "innx_version", "created", "complete")
"""Root attributes stored as themselves; every other root attribute is a JSON string."""
FIELDS = ("index", "labels", "attributes", "latents", "images")
"""Per-row datasets besides the layers, by the names :meth:`ActivationStore.load` accepts."""
RESERVED_LAYER_NAMES = (*FIELDS, "done")
"""Names a layer cannot have: the reader takes them for the store's own datasets."""


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


def check_format(path: Path, file: h5py.File) -> None:
    found = file.attrs.get("format")
    if found != FORMAT:
        raise StoreError(
            f"{path} is not an innx activation store (format attribute {found!r}, expected "
            f"{FORMAT!r}); make one with innx extract"
        )
    version = int(file.attrs.get("version", 0))
    if version > VERSION:
        raise StoreError(
            f"{path} was written by a newer innx (format version {version}, this one reads "
            f"{VERSION}); upgrade innx"
        )


def _identity(metadata: dict[str, Any]) -> dict[str, Any]:
    """What must match to resume: dataset fingerprint, backbone name and weights, preprocessing."""
    found: dict[str, Any] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{prefix}.{key}"
                if key == "fingerprint" or "sha256" in key or path == "backbone.name":
                    found[path] = item
                else:
                    visit(path, item)

    visit("dataset", metadata.get("dataset"))
    visit("backbone", metadata.get("backbone"))
    found["preprocessing"] = metadata.get("preprocessing")
    return found


def layout_signature(layout: StoreLayout) -> dict[str, Any]:
    return {
        "rows": layout.n,
        "layers": [[la.name, la.module, [int(s) for s in la.shape]] for la in layout.layers],
        "layer dtype": layout.dtype,
        "attributes": [[a.name, a.kind, list(a.categories)] for a in layout.attributes],
        "labels": layout.has_labels,
        "latent size": layout.latent_dim,
        "autoencoder": layout.autoencoder if layout.latent_dim is not None else None,
        "image shape": list(layout.image_shape) if layout.image_shape is not None else None,
        **_identity(json.loads(json.dumps(layout.metadata))),
    }


def file_signature(file: h5py.File) -> dict[str, Any]:
    layers = file["layers"]
    attributes = file["attributes"].attrs
    names, kinds = json.loads(attributes["names"]), json.loads(attributes["kinds"])
    categories = json.loads(attributes["categories"])
    dtypes = {str(layers[name].dtype) for name in layers}
    return {
        "rows": int(file["done"].shape[0]),
        "layers": [
            [name, layers[name].attrs["module"], json.loads(layers[name].attrs["shape"])]
            for name in layers
        ],
        "layer dtype": dtypes.pop() if len(dtypes) == 1 else sorted(dtypes),
        "attributes": [list(a) for a in zip(names, kinds, categories, strict=True)],
        "labels": "labels" in file,
        "latent size": int(file["latents"].shape[1]) if "latents" in file else None,
        "autoencoder": (file["latents"].attrs.get("autoencoder") or None)
        if "latents" in file
        else None,
        "image shape": list(file["images"].shape[1:]) if "images" in file else None,
        **_identity(json_attrs(file)),
    }


def layout_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``"<what> differ (file: …, now: …)"`` for each entry that is not the same."""
    out = []
    for key in sorted(set(stored) | set(wanted), key=list({**stored, **wanted}).index):
        if stored.get(key) != wanted.get(key):
            out.append(f"{key}: file has {_short(stored.get(key))}, now {_short(wanted.get(key))}")
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_attrs(file: h5py.File) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in file.attrs.items():
        if key in PLAIN_ATTRS:
            continue
        try:
            out[key] = json.loads(value)
        except (TypeError, ValueError):
            out[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out
