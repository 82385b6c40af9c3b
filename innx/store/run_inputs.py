"""What a fit read, as its run's manifest records it (:class:`RunInputs`), and typed reads of a
manifest's parts (:class:`ManifestSection`): anything malformed is one line naming the field.

On disk the record keeps the layout runs have always had: ``inputs`` (role → path and sha256),
``store`` (a flow's activation store), ``dataset`` (a classifier's or autoencoder's images) and
``fit`` (the arguments), each optional. The run directory itself is :mod:`innx.store.runs`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from innx.errors import RunError

MANIFEST = "manifest.json"

_T = TypeVar("_T")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class InputFile:
    """A file a fit read, by path and sha256 (``inputs.<role>`` of the manifest)."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> InputFile:
        """The record of ``path`` as it is now (its sha256 read from disk)."""
        return cls(str(path), sha256_file(Path(path)))


@dataclass(frozen=True)
class StoreInput:
    """The activation store a flow was fitted on (``store`` of the manifest): its resolved
    ``path``, its ``fingerprint``, the training and validation rows, and what was read from it:
    ``layer`` and its per-sample ``cond_shape`` (``t``) or ``on`` (``e``: ``latents`` or
    ``layer:L``); for ``e`` on latents, the store's ``latents`` fingerprint
    (:meth:`~innx.store.view.ActivationStore.latents_fingerprint`), which other stores of the same
    dataset and autoencoder share."""

    path: str
    fingerprint: str
    layer: str | None = None
    cond_shape: tuple[int, ...] | None = None
    on: str | None = None
    train: int | None = None
    validation: int | None = None
    latents: str | None = None


@dataclass(frozen=True)
class DatasetInput:
    """The image dataset a classifier or autoencoder was fitted on (``dataset`` of the manifest):
    its ``spec``, ``fingerprint``, size ``n`` and the training and validation images."""

    spec: str
    fingerprint: str
    n: int | None = None
    train: int | None = None
    validation: int | None = None


@dataclass(frozen=True)
class RunInputs:
    """What a fit read: its activation ``store`` or image ``dataset``, input ``files`` by role,
    and ``fit``, the arguments it was started with (as JSON). Every part is optional: a run
    written by hand, or by a test, may record none of them.

    >>> inputs = RunInputs(store=StoreInput("/data/acts.h5", "ab12", layer="fc", train=9))
    >>> RunInputs.from_manifest(inputs.to_manifest(), Path("run")) == inputs
    True
    """

    store: StoreInput | None = None
    dataset: DatasetInput | None = None
    files: Mapping[str, InputFile] = field(default_factory=dict)
    fit: Mapping[str, Any] | None = None

    @property
    def split(self) -> tuple[float, int] | None:
        """``(val_fraction, seed)`` of the fit's training/validation split, or ``None`` when the
        run does not record its arguments (held-out rows are then unknown)."""
        if self.fit is None or "val_fraction" not in self.fit or "seed" not in self.fit:
            return None
        return float(self.fit["val_fraction"]), int(self.fit["seed"])

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's fields for these inputs (``inputs`` always; the others when given)."""
        fields: dict[str, Any] = {
            "inputs": {role: {"path": f.path, "sha256": f.sha256} for role, f in self.files.items()}
        }
        if self.store is not None:
            fields["store"] = _without_none(
                {**vars(self.store), "cond_shape": _as_list(self.store.cond_shape)}
            )
        if self.dataset is not None:
            fields["dataset"] = _without_none(vars(self.dataset))
        if self.fit is not None:
            fields["fit"] = json.loads(json.dumps(dict(self.fit)))
        return fields

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], run_dir: Path) -> RunInputs:
        """The inputs recorded in ``manifest`` (of ``run_dir``, named in errors); a part that is
        absent is ``None``, one that is malformed a :class:`RunError`."""
        section = ManifestSection(run_dir)
        files = {
            role: InputFile(
                section.text(entry, "path", f"inputs.{role}"),
                section.text(entry, "sha256", f"inputs.{role}"),
            )
            for role, entry in section.object(manifest, "inputs", "").items()
        }
        store = dataset = None
        if manifest.get("store") is not None:
            store = _store(section, section.object(manifest, "store", ""))
        if manifest.get("dataset") is not None:
            dataset = _dataset(section, section.object(manifest, "dataset", ""))
        fit = None
        if manifest.get("fit") is not None:
            fit = section.object(manifest, "fit", "")
            for key, kind in (("val_fraction", float), ("seed", int)):
                section.optional(fit, key, kind, "fit")
        return cls(store, dataset, files, fit)


class ManifestSection:
    """Typed reads of a manifest's parts; anything malformed is a :class:`RunError` naming the
    field, the file and the fix."""

    def __init__(self, run_dir: Path) -> None:
        self.manifest = run_dir / MANIFEST

    def fail(self, name: str, wanted: str) -> RunError:
        return RunError(
            f"{self.manifest}: {name!r} must be {wanted}; the manifest was changed or "
            "corrupted: restore it or re-run the fit"
        )

    def object(self, raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        value = raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(_name(where, key), "a JSON object")
        return value

    def text(self, raw: Any, key: str, where: str) -> str:
        value = raw.get(key) if isinstance(raw, dict) else None
        if not isinstance(value, str):
            raise self.fail(_name(where, key), "a string")
        return value

    def optional(self, raw: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T | None:
        value = raw.get(key)
        if value is None:
            return None
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise self.fail(_name(where, key), f"a {kind.__name__}")
        return value  # type: ignore[no-any-return]

    def ints(self, values: list[Any], where: str) -> list[int]:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise self.fail(where, "a list of integers")
        return values


def _store(section: ManifestSection, raw: dict[str, Any]) -> StoreInput:
    shape = section.optional(raw, "cond_shape", list, "store")
    return StoreInput(
        path=section.text(raw, "path", "store"),
        fingerprint=section.text(raw, "fingerprint", "store"),
        layer=section.optional(raw, "layer", str, "store"),
        cond_shape=None if shape is None else tuple(section.ints(shape, "store.cond_shape")),
        on=section.optional(raw, "on", str, "store"),
        train=section.optional(raw, "train", int, "store"),
        validation=section.optional(raw, "validation", int, "store"),
        latents=section.optional(raw, "latents", str, "store"),
    )


def _dataset(section: ManifestSection, raw: dict[str, Any]) -> DatasetInput:
    return DatasetInput(
        spec=section.text(raw, "spec", "dataset"),
        fingerprint=section.text(raw, "fingerprint", "dataset"),
        n=section.optional(raw, "n", int, "dataset"),
        train=section.optional(raw, "train", int, "dataset"),
        validation=section.optional(raw, "validation", int, "dataset"),
    )


def _name(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _as_list(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)
