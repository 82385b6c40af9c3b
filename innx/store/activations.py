"""HDF5 activation stores (format ``innx.activations`` version 1): write, resume, join, read.

One file per extraction, N rows, row ``i`` being one sample of the source dataset::

    /               attrs: format, version, innx_version, created, complete (bool), and as JSON
                    strings: dataset, backbone, preprocessing, extract, versions (and shards)
    /index          int64 [N]                 row → sample index in the source dataset
    /labels         int64 [N]                 when the dataset has labels
    /attributes     float32 [N, K]            attrs: names, kinds, categories (JSON)
    /layers/<name>  float32|float16 [N, *shape]   attrs: module, shape
    /latents        float32 [N, d]            attrs: autoencoder (run id)
    /images         uint8 [N, H, W, C]        thumbnails
    /done           bool [N]                  rows written
    /bad            int64 [M]                 dataset indices skipped as unreadable

Crash safety. :class:`StoreWriter` creates every dataset at full size up front, uncompressed,
allocated at creation and never filled (``ALLOC_TIME_EARLY``, ``FILL_TIME_NEVER``), without
timestamps, and flushes the file. After that a write only puts raw bytes into space that is already
allocated, so no HDF5 metadata changes until :meth:`StoreWriter.finish`. Each
:meth:`StoreWriter.write` flushes its data before it marks its rows in ``/done`` (and flushes
again), so a process killed at any moment leaves a readable file whose ``done`` rows are right;
``--resume`` writes the others. Compressed chunks cannot be written in place (their size is known
only once written, and each write moves HDF5 metadata; a kill then damages the file), so a
compressed store is written uncompressed and compressed by :meth:`StoreWriter.finish` into a
temporary file that replaces it atomically. Data reach the operating system at each flush (enough
for a killed process); only the finished file is fsynced.

One writer at a time: see :mod:`innx.store.locking`. Reading is :mod:`innx.store.view`; readers
open files with HDF5 locking off, so ``innx info`` works on a store that is being written.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from innx import __version__
from innx.data.base import Attribute
from innx.errors import ConfigError, StoreError, first_line
from innx.store.locking import WriteLock

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
            if not name or "/" in name or name in (".", ".."):
                raise ConfigError(f"layer name {name!r} cannot be stored; use a name without '/'")
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
_COMPRESSED = ("layers/", "latents", "images")  # the big datasets; the small ones stay plain


class StoreWriter:
    """Writes rows into a store, in any order of batches, and marks it complete at the end.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "acts.h5"
    >>> layout = StoreLayout(n=4, layers=(LayerSpec("conv1", "features.0", (3,)),),
    ...                      attributes=(), has_labels=False)
    >>> with StoreWriter.create(path, layout) as writer:
    ...     writer.write(np.arange(2, 4), index=np.array([7, 8]), labels=None,
    ...                  attributes=np.zeros((2, 0)), layers={"conv1": np.ones((2, 3))})
    ...     writer.pending().tolist()
    [0, 1]
    >>> with StoreWriter.resume(path, layout) as writer:
    ...     writer.write(np.arange(0, 2), index=np.array([5, 6]), labels=None,
    ...                  attributes=np.zeros((2, 0)), layers={"conv1": np.zeros((2, 3))})
    ...     writer.finish()
    >>> from innx.store import ActivationStore
    >>> with ActivationStore(path) as store:
    ...     store.index.tolist(), float(store.load("conv1").sum())
    ([5, 6, 7, 8], 6.0)
    """

    def __init__(self, path: Path, layout: StoreLayout, file: h5py.File, lock: WriteLock) -> None:
        """Use :meth:`create` or :meth:`resume`."""
        self.path = path
        self.layout = layout
        self._file: h5py.File | None = file
        self._lock = lock

    @classmethod
    def create(
        cls, path: str | Path, layout: StoreLayout, *, overwrite: bool = False
    ) -> StoreWriter:
        """A new store at ``path`` with every dataset created at full size, ``complete=False``."""
        path = Path(path)
        if not path.parent.is_dir():
            raise StoreError(f"folder {path.parent} does not exist; create it first")
        lock = WriteLock(path)
        try:
            if path.is_dir():
                raise StoreError(f"{path} is a folder; pass a file name such as {path}/acts.h5")
            if path.exists() and not overwrite:
                raise StoreError(
                    f"{path} exists; pass --resume to finish it or --overwrite to replace it"
                )
            try:
                file = h5py.File(path, "w", locking=False)
            except OSError as err:
                raise StoreError(f"cannot write {path} ({first_line(err)})") from err
            try:
                _create_datasets(file, layout, "none")
                file.flush()
            except BaseException:
                file.close()
                raise
        except BaseException:
            lock.release()
            raise
        return cls(path, layout, file, lock)

    @classmethod
    def resume(cls, path: str | Path, layout: StoreLayout) -> StoreWriter:
        """Reopen an unfinished store written with the same ``layout`` to write its pending rows."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path} does not exist, so there is nothing to resume; drop --resume")
        lock = WriteLock(path)
        try:
            try:
                file = h5py.File(path, "r+", locking=False)
            except OSError as err:
                raise StoreError(
                    f"{path} is damaged ({first_line(err)}); pass --overwrite to start over"
                ) from err
            try:
                check_format(path, file)
                if "shards" in file.attrs:
                    raise StoreError(f"{path} joins shard files; resume each shard instead")
                if bool(file.attrs.get("complete", False)):
                    raise StoreError(
                        f"{path} is complete; nothing to resume; pass --overwrite to extract again"
                    )
                try:
                    differences = _differences(_file_signature(file), _signature(layout))
                except (KeyError, ValueError, TypeError) as err:
                    raise StoreError(
                        f"{path} is damaged ({first_line(err)}); pass --overwrite to start over"
                    ) from err
                if differences:
                    raise StoreError(
                        f"cannot resume {path}: it was written for a different extraction "
                        f"({'; '.join(differences)}); pass --overwrite to start over"
                    )
            except BaseException:
                file.close()
                raise
        except BaseException:
            lock.release()
            raise
        return cls(path, layout, file, lock)

    @property
    def file(self) -> h5py.File:
        if self._file is None:
            raise StoreError(f"the writer of {self.path} is closed")
        return self._file

    def pending(self) -> np.ndarray:
        """Rows not written yet: sorted ``int64 [P]``."""
        done = self.file["done"][...]
        return np.flatnonzero(~done).astype(np.int64)

    def write(
        self,
        rows: np.ndarray,
        *,
        index: np.ndarray,
        labels: np.ndarray | None,
        attributes: np.ndarray,
        layers: dict[str, np.ndarray],
        latents: np.ndarray | None = None,
        images: np.ndarray | None = None,
    ) -> None:
        """Write a batch of ``B`` contiguous rows ``start..stop-1`` and mark them done.

        ``index`` int ``[B]``, ``labels`` int ``[B]`` (``None`` without labels), ``attributes``
        ``[B, K]``, ``layers[name]`` ``[B, *shape]`` for every layer, ``latents`` ``[B, d]``,
        ``images`` uint8 ``[B, H, W, C]``; values are cast to the stored dtypes. Everything is
        checked before anything is written.
        """
        file = self.file
        start, stop = self._check_rows(rows)
        given: dict[str, Any] = {"index": index, "attributes": attributes}
        optional = {"labels": labels, "latents": latents, "images": images}
        unknown = sorted(set(layers) - {layer.name for layer in self.layout.layers})
        if unknown:
            names = ", ".join(layer.name for layer in self.layout.layers)
            raise StoreError(f"layers {', '.join(unknown)} are not in this store; it has {names}")
        given.update({f"layers/{name}": value for name, value in layers.items()})
        values: list[tuple[str, np.ndarray]] = []
        for name, shape, dtype in self.layout.datasets():
            if name == "done":
                continue
            value = given.get(name, optional.get(name))
            if value is None:
                raise StoreError(f"write() needs {name} (the store was created with it)")
            values.append((name, _cast(name, value, (stop - start, *shape[1:]), dtype)))
        for name, value in optional.items():
            if value is not None and name not in file:
                raise StoreError(f"this store has no {name}; pass {name}=None")
        try:
            for name, value in values:
                file[name][start:stop] = value
            file.flush()
            file["done"][start:stop] = True
            file.flush()
        except OSError as err:
            raise StoreError(
                f"cannot write rows {start}..{stop - 1} of {self.path} ({first_line(err)}); "
                "check the disk, then --resume (or --overwrite if the file is damaged)"
            ) from err

    def _check_rows(self, rows: np.ndarray) -> tuple[int, int]:
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
            raise StoreError(f"rows must be a non-empty 1-D integer array, got {rows.shape}")
        start = int(rows[0])
        stop = start + rows.size
        if start < 0 or stop > self.layout.n or not np.array_equal(rows, np.arange(start, stop)):
            raise StoreError(
                f"rows must be contiguous and ascending within 0..{self.layout.n - 1}, "
                f"got {rows[0]}..{rows[-1]} ({rows.size} rows)"
            )
        return start, stop

    def record_bad(self, indices: Sequence[int]) -> None:
        """Append dataset indices that were skipped as unreadable to ``/bad``."""
        values = np.asarray(indices, dtype=np.int64).ravel()
        if values.size == 0:
            return
        bad = self.file["bad"]
        old = bad.shape[0]
        bad.resize((old + values.size,))
        bad[old:] = values
        self.file.flush()

    def finish(self) -> None:
        """Mark the store complete (every row must be written), close it, release the lock."""
        file = self.file
        missing = self.layout.n - int(np.count_nonzero(file["done"][...]))
        if missing:
            raise StoreError(
                f"cannot finish {self.path}: {missing} of {self.layout.n} rows are not written "
                "yet; write pending() rows first"
            )
        if self.layout.compression == "none":
            file.attrs.modify("complete", True)
            file.flush()
        else:
            self._compress()
        self.close()

    def _compress(self) -> None:
        """Copy the finished rows into a compressed file and put it in place of this one."""
        file = self.file
        tmp = self.path.with_name(f".{self.path.name}.finishing")
        try:
            with h5py.File(tmp, "w", locking=False) as out:
                _create_datasets(out, self.layout, self.layout.compression)
                for key, value in file.attrs.items():
                    out.attrs[key] = value
                out.attrs["complete"] = True
                for name, shape, dtype in self.layout.datasets():
                    step = 16 * self.layout.chunk_rows(shape[1:], dtype)
                    for start in range(0, shape[0], step):
                        out[name][start : start + step] = file[name][start : start + step]
                out["bad"].resize(file["bad"].shape)
                out["bad"][...] = file["bad"][...]
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            file.close()
            os.replace(tmp, self.path)
        except OSError as err:
            raise StoreError(
                f"cannot write the compressed {self.path} ({first_line(err)}); "
                "free some disk space and finish it with --resume"
            ) from err
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Close without finishing (the store stays resumable); idempotent."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
        self._lock.release()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cast(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise StoreError(
            f"/{name} expects a batch of shape {shape}, got {array.shape}; "
            "check the layer shapes the store was created with"
        )
    return array.astype(dtype, copy=False)


def _root_attrs(layout: StoreLayout) -> dict[str, Any]:
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
    }


def _dataset_attrs(layout: StoreLayout, name: str) -> dict[str, Any]:
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


def _create_datasets(file: h5py.File, layout: StoreLayout, compression: str) -> None:
    """Root attributes and every dataset; ``compression="none"``: allocated at creation."""
    file.attrs.update(_root_attrs(layout))
    file.create_group("layers", track_order=True)
    for name, shape, dtype in layout.datasets():
        options: dict[str, Any] = {"track_times": False}
        if 0 in shape:
            pass  # an empty dataset (no attributes, say): contiguous, nothing to allocate
        elif compression != "none" and name.startswith(_COMPRESSED):
            options["chunks"] = (layout.chunk_rows(shape[1:], dtype), *shape[1:])
            options["compression"] = compression
            options["shuffle"] = True
            if compression == "gzip":
                options["compression_opts"] = 4
        else:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            options["chunks"] = (layout.chunk_rows(shape[1:], dtype), *shape[1:])
            options["dcpl"] = dcpl
            options["fill_time"] = "never"
        dataset = file.create_dataset(name, shape=shape, dtype=dtype, **options)
        dataset.attrs.update(_dataset_attrs(layout, name))
    file.create_dataset(
        "bad", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,), track_times=False
    )


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


def _signature(layout: StoreLayout) -> dict[str, Any]:
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


def _file_signature(file: h5py.File) -> dict[str, Any]:
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


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
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
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        with h5py.File(tmp, "w", locking=False) as file:
            file.attrs.update(_root_attrs(layout))
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
                dataset.attrs.update(_dataset_attrs(layout, ds_name))
            bad = np.concatenate([bad for _, _, _, bad in infos]).astype(np.int64)
            file.create_dataset("bad", data=bad, maxshape=(None,), chunks=(1024,))
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
        check_format(path, file)
        n = int(file["done"].shape[0])
        differences = _differences(_file_signature(file), _signature(replace(layout, n=n)))
        if differences:
            raise StoreError(f"shard {path} does not match the others ({'; '.join(differences)})")
        bad = np.asarray(file["bad"][...]) if "bad" in file else np.zeros(0, np.int64)
        return path, n, bool(file.attrs.get("complete", False)), bad
