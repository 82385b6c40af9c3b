"""What a store says about itself, read back without trusting it, and compared with a layout.

:func:`read_meta` reads what a store records of itself (its JSON root attributes, its
attributes' names, kinds and categories, its layers' modules and shapes) and refuses, in one line,
an attribute that is missing, not UTF-8 text, not JSON or not of the expected form: in every
command that reads a store (``innx info``, ``--resume``, joining shards, every reader).
:func:`file_signature` and :func:`layout_signature` say what must match to resume or join.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from innx.errors import StoreError, first_line
from innx.store.layout import FORMAT, METADATA_KEYS, PLAIN_ATTRS, VERSION, StoreLayout, damaged


def check_format(path: Path, file: h5py.File) -> None:
    """Refuse a file that is not an activation store, or one of a newer format version."""
    try:
        found = file.attrs.get("format")
    except (OSError, RuntimeError, ValueError, TypeError, UnicodeError):
        found = None
    if found != FORMAT:
        raise StoreError(
            f"{path} is not an innx activation store (format attribute {found!r}, expected "
            f"{FORMAT!r}); make one with innx extract"
        )
    try:
        version = int(file.attrs.get("version", 0))
    except (OSError, RuntimeError, ValueError, TypeError, UnicodeError):
        raise damaged(path, "root attribute 'version' is not a whole number") from None
    if version > VERSION:
        raise StoreError(
            f"{path} was written by a newer innx (format version {version}, this one reads "
            f"{VERSION}); upgrade innx"
        )


@dataclass(frozen=True)
class StoreMeta:
    """What a store records of itself, read and checked by :func:`read_meta`: its JSON root
    attributes (``metadata``), rows, attributes and layers (name, module, per-sample shape)."""

    metadata: dict[str, Any]
    n: int
    attribute_names: list[str]
    attribute_kinds: list[str]
    attribute_categories: list[list[str]]
    layers: list[tuple[str, str, list[int]]]


_ROOT_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    **{key: ((dict, type(None)), "an object or null") for key in METADATA_KEYS},
    "versions": ((dict,), "an object"),
    "device": ((str,), "a string"),
    "shards": ((list,), "a list of file names"),
}
"""The JSON root attributes innx writes (when present) and what each must hold."""
_REQUIRED_ROOT = (*METADATA_KEYS, "versions")
_KINDS = ("categorical", "continuous")
_READ_ERRORS = (OSError, RuntimeError, ValueError, TypeError, UnicodeError)


def read_meta(path: Path, file: h5py.File) -> StoreMeta:
    """The metadata of store ``file`` (its format checked first); a one-line ``StoreError``
    naming ``path`` and the attribute when one is missing, not UTF-8 text, not JSON or not of the
    form innx writes (a damaged store, or one edited by hand)."""
    check_format(path, file)
    metadata = _root_metadata(path, file)
    done = _dataset(path, file, "done")
    if len(done.shape) != 1:
        raise damaged(path, f"done has shape {list(done.shape)}, not one value per row")
    n = int(done.shape[0])
    for name in ("index", "labels", "attributes", "latents", "images"):
        if name in ("index", "attributes") or name in file:
            rows = _dataset(path, file, name).shape
            if not rows or rows[0] != n:
                raise damaged(path, f"{name} has shape {list(rows)}, not {n} rows like done")
    attributes = _dataset(path, file, "attributes")
    if len(attributes.shape) != 2:
        raise damaged(path, f"attributes has shape {list(attributes.shape)}, not rows × values")
    width = attributes.shape[1]
    names = _json_list(path, attributes.attrs, "names", "attributes", width, str)
    kinds = _json_list(path, attributes.attrs, "kinds", "attributes", width, str)
    categories = _json_list(path, attributes.attrs, "categories", "attributes", width, list)
    wrong = [kind for kind in kinds if kind not in _KINDS]
    if wrong:
        raise damaged(path, f"attribute 'kinds' of attributes holds {wrong[0]!r}")
    if not all(isinstance(c, str) for cats in categories for c in cats):
        raise damaged(path, "attribute 'categories' of attributes is not lists of names")
    try:
        group = file["layers"]
        layer_names = list(group)
    except (*_READ_ERRORS, KeyError) as err:
        raise damaged(path, f"its layers cannot be read ({first_line(err)})") from err
    layers = []
    for name in layer_names:
        dataset = _dataset(path, file, f"layers/{name}")
        if not dataset.shape or dataset.shape[0] != n:
            raise damaged(path, f"layers/{name} has shape {list(dataset.shape)}, not {n} rows")
        module = _text(path, dataset.attrs, "module", f"attribute 'module' of layers/{name}")
        label = f"attribute 'shape' of layers/{name}"
        shape = _json(path, dataset.attrs, "shape", label)
        if shape != [int(s) for s in dataset.shape[1:]]:
            raise damaged(path, f"{label} is {shape!r}, the layer holds {list(dataset.shape)}")
        layers.append((name, module, shape))
    if "latents" in file and "autoencoder" in file["latents"].attrs:
        _text(path, file["latents"].attrs, "autoencoder", "attribute 'autoencoder' of latents")
    return StoreMeta(metadata, n, names, kinds, categories, layers)


def _dataset(path: Path, file: h5py.File, name: str) -> h5py.Dataset:
    try:
        found = file.get(name)
    except _READ_ERRORS as err:
        raise damaged(path, f"{name} cannot be read ({first_line(err)})") from err
    if not isinstance(found, h5py.Dataset):
        raise damaged(path, f"it has no {name} dataset")
    return found


def _root_metadata(path: Path, file: h5py.File) -> dict[str, Any]:
    """The root attributes but the plain ones, JSON-decoded: innx's own strictly (see
    ``_ROOT_TYPES``), any other as JSON when it is, else as it is."""
    out: dict[str, Any] = {}
    for key in file.attrs:
        if key in PLAIN_ATTRS:
            continue
        label = f"root attribute {key!r}"
        if key not in _ROOT_TYPES:
            out[key] = _lenient(file.attrs, key)
            continue
        value = _json(path, file.attrs, key, label)
        types, form = _ROOT_TYPES[key]
        fits = isinstance(value, types)
        if fits and key == "shards":
            fits = all(isinstance(s, str) for s in value)
        if not fits:
            raise damaged(path, f"{label} is not {form}")
        out[key] = value
    missing = [key for key in _REQUIRED_ROOT if key not in out]
    if missing:
        raise damaged(path, f"root attribute {missing[0]!r} is missing")
    return out


def _lenient(attrs: Any, key: str) -> Any:
    """A root attribute innx does not write: JSON when it is, else as it is (text when it
    cannot be read)."""
    try:
        value = attrs[key]
    except _READ_ERRORS as err:
        return f"unreadable ({first_line(err)})"
    try:
        return json.loads(value)
    except _READ_ERRORS:
        return value if isinstance(value, (str, int, float, bool)) else str(value)


def _text(path: Path, attrs: Any, key: str, label: str) -> str:
    """Attribute ``key`` as text; ``label`` names it in the message."""
    try:
        value = attrs[key]
    except KeyError:
        raise damaged(path, f"{label} is missing") from None
    except _READ_ERRORS as err:
        raise damaged(path, f"{label} cannot be read ({first_line(err)})") from err
    try:
        if isinstance(value, (bytes, np.bytes_)):
            value = bytes(value).decode("utf-8")
        elif isinstance(value, str):
            value.encode("utf-8")  # h5py hands bytes that are not UTF-8 over as surrogates
        else:
            raise damaged(path, f"{label} is not text")
    except UnicodeError:
        raise damaged(path, f"{label} is not UTF-8 text") from None
    return value


def _json(path: Path, attrs: Any, key: str, label: str) -> Any:
    text = _text(path, attrs, key, label)
    try:
        return json.loads(text)
    except ValueError:
        raise damaged(path, f"{label} is not valid JSON ({text[:40]!r})") from None


def _json_list(path: Path, attrs: Any, key: str, name: str, length: int, item: type) -> list[Any]:
    label = f"attribute {key!r} of {name}"
    value = _json(path, attrs, key, label)
    if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
        raise damaged(path, f"{label} is not a list of {item.__name__}")
    if len(value) != length:
        raise damaged(path, f"{label} names {len(value)} attributes, the store holds {length}")
    return value


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


def file_signature(path: Path, file: h5py.File) -> dict[str, Any]:
    """What :func:`layout_signature` says of a layout, read from store ``file``."""
    meta = read_meta(path, file)
    dtypes = {str(file["layers"][name].dtype) for name, _, _ in meta.layers}
    latents = file.get("latents")
    return {
        "rows": meta.n,
        "layers": [list(layer) for layer in meta.layers],
        "layer dtype": dtypes.pop() if len(dtypes) == 1 else sorted(dtypes),
        "attributes": [
            list(a)
            for a in zip(
                meta.attribute_names, meta.attribute_kinds, meta.attribute_categories, strict=True
            )
        ],
        "labels": "labels" in file,
        "latent size": int(latents.shape[1]) if latents is not None else None,
        "autoencoder": (latents.attrs.get("autoencoder") or None) if latents is not None else None,
        "image shape": list(file["images"].shape[1:]) if "images" in file else None,
        **_identity(meta.metadata),
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
