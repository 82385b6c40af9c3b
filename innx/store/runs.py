"""Run directories: the weights, the config that rebuilds the model, and a manifest that vouches.

A run directory holds::

    model.safetensors   weights only (never pickle)
    config.json         {"kind": ..., "config": {...}}: constructor arguments
    manifest.json       format, version, innx version, created, kind, the sha256 of every
                        file the run is loaded from (``files``: weights and config; the
                        weights' also as ``weights_sha256``, for older readers), seed, the
                        device it ran on (``cpu``, ``cuda:0``), command line, final metrics,
                        and what the fit read (:class:`RunInputs`: its store or dataset, input
                        files with their sha256, its arguments)

``manifest.json`` is written last, so a directory without one is not a finished run. Loading
checks every file against its sha256 in the manifest and refuses one that was changed (runs
written before ``files`` was recorded are checked by their weights only). Each file is written
under a temporary name and renamed (:func:`~innx.writes.atomic_write`): a full disk leaves no
half-written file and no manifest, and is a one-line :class:`~innx.writes.WriteError`.

The record of the inputs is typed (:class:`RunInputs`); on disk it keeps the layout runs have
always had: ``inputs`` (role → path and sha256), ``store`` (a flow's activation store),
``dataset`` (a classifier's or autoencoder's images) and ``fit`` (the arguments), each optional.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from innx import __version__
from innx.errors import InnxError, PluginError, RunError, first_line
from innx.writes import atomic_write, writing

RUN_FORMAT = "innx.run"
RUN_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
MANIFEST = "manifest.json"
LOADED = (WEIGHTS, CONFIG)
"""The files a run is loaded from, each vouched for by its sha256 in the manifest (``files``)."""

_T = TypeVar("_T")


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
    ``layer:L``)."""

    path: str
    fingerprint: str
    layer: str | None = None
    cond_shape: tuple[int, ...] | None = None
    on: str | None = None
    train: int | None = None
    validation: int | None = None


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
        section = _Section(run_dir)
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


@dataclass(frozen=True)
class RunFiles:
    """What a run directory holds, read and verified: the weights, the model's ``kind`` and
    ``config``, the whole ``manifest`` and, typed, its record of the fit's ``inputs``."""

    path: Path
    tensors: dict[str, torch.Tensor]
    kind: str
    config: dict[str, Any]
    manifest: dict[str, Any]
    inputs: RunInputs

    @property
    def metrics(self) -> dict[str, Any]:
        """The final metrics of the fit (empty when it recorded none)."""
        return dict(self.manifest.get("metrics") or {})


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_run(
    run_dir: str | Path,
    tensors: dict[str, torch.Tensor],
    kind: str,
    config: dict[str, Any],
    *,
    inputs: RunInputs | None = None,
    seed: int | None = None,
    metrics: dict[str, Any] | None = None,
    command: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    then: str = "run again",
) -> Path:
    """Write weights, config and manifest (last) into ``run_dir``; return the directory.

    ``inputs`` records what the fit read (:class:`RunInputs`; files by role with their sha256,
    see :meth:`InputFile.of`). ``device`` is the device the fit ran on, resolved (``cuda:0``,
    not the ``auto`` asked for, which the fit's arguments keep). ``extra`` adds other JSON-able
    fields to the manifest (a semantic run's factors, say).
    Each file is written to a temporary name and renamed, so no reader sees half a file; a
    failed write (a full disk) is a :class:`~innx.writes.WriteError` naming the file and saying
    how to go on once fixed: ``then`` (``"run again with --resume"`` in a resumable fit).
    """
    run_dir = Path(run_dir)
    with writing(run_dir, then):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / MANIFEST).unlink(missing_ok=True)  # the directory is unfinished until the end
    weights = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write(run_dir / WEIGHTS, lambda tmp: save_file(weights, str(tmp)), then)
    _atomic_json(run_dir / CONFIG, {"kind": kind, "config": config}, then)
    files = {name: sha256_file(run_dir / name) for name in LOADED}
    manifest = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "innx_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kind": kind,
        "weights_sha256": files[WEIGHTS],
        "files": files,
        "seed": seed,
        "device": None if device is None else str(device),
        "command": command if command is not None else sys.argv,
        "metrics": metrics or {},
        **(inputs or RunInputs()).to_manifest(),
        **(extra or {}),
    }
    _atomic_json(run_dir / MANIFEST, manifest, then)
    return run_dir


def read_run(run_dir: str | Path) -> RunFiles:
    """Read a finished run directory, verifying each file it is loaded from (weights, config)
    against its sha256 in the manifest."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        parent = run_dir.parent
        hint = f" (its folder {parent} may be)" if run_dir.name in (*LOADED, MANIFEST) else ""
        raise RunError(
            f"{run_dir} is a file, not a run directory{hint}; pass the -o directory of an "
            "innx fit, the folder that holds manifest.json"
        )
    if not run_dir.is_dir():
        raise RunError(
            f"run directory {run_dir} does not exist; pass the -o directory of an innx fit"
        )
    manifest = _read_json(
        run_dir / MANIFEST,
        "is not a finished run (no manifest.json): "
        "training may still be running or was interrupted; resume or re-run it",
    )
    if manifest.get("format") != RUN_FORMAT or manifest.get("version") != RUN_VERSION:
        raise RunError(
            f"{run_dir / MANIFEST} is not an {RUN_FORMAT} v{RUN_VERSION} manifest "
            f"(format={manifest.get('format')!r}, version={manifest.get('version')!r})"
        )
    _verify_files(run_dir, manifest)
    config = _read_json(run_dir / CONFIG, "has no config.json; the run is incomplete, re-run it")
    weights_path = run_dir / WEIGHTS
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise RunError(f"cannot read {weights_path}: {err}") from err
    if "kind" not in config or "config" not in config:
        raise RunError(f"{run_dir / CONFIG} must hold 'kind' and 'config'; re-run the fit")
    if not isinstance(config["kind"], str) or not isinstance(config["config"], dict):
        raise RunError(
            f"{run_dir / CONFIG}: 'kind' must be a string and 'config' a JSON object; "
            "restore it or re-run the fit"
        )
    _Section(run_dir).object(manifest, "metrics", "")  # RunFiles.metrics reads a JSON object
    inputs = RunInputs.from_manifest(manifest, run_dir)
    return RunFiles(run_dir, tensors, config["kind"], config["config"], manifest, inputs)


def build_from_config(run: RunFiles, build: Callable[[], _T], what: str) -> _T:
    """``build()`` the ``what`` (``"invariance model"``) that ``run``'s ``config.json``
    describes; a config it cannot be built from (a string or list where a number belongs, a
    value out of range) is a one-line :class:`~innx.errors.RunError` naming the file, never a
    traceback. The one wrapping for every place a run's config becomes a module; a
    :class:`~innx.errors.PluginError` (a plugin to install or fix) passes unchanged.

    >>> run = RunFiles(Path("runs/t"), {}, "invariance", {"width": "abc"}, {}, RunInputs())
    >>> build_from_config(run, lambda: 1 + run.config["width"], "invariance model")
    Traceback (most recent call last):
    innx.errors.RunError: runs/t/config.json does not describe an invariance model (TypeError: unsupported operand type(s) for +: 'int' and 'str'); restore it or re-run the fit
    """
    try:
        return build()
    except (RunError, PluginError):  # already about the run, or a plugin to install or fix
        raise
    except (InnxError, TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        article = "an" if what[:1] in ("a", "e", "i", "o", "u") else "a"
        cause = str(err) if isinstance(err, InnxError) else first_line(err)
        raise RunError(
            f"{run.path / CONFIG} does not describe {article} {what} ({cause}); "
            "restore it or re-run the fit"
        ) from err


def _verify_files(run_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Check the weights against ``weights_sha256`` and every file of ``files`` (absent in
    runs written before it was recorded) against its sha256."""
    section = _Section(run_dir)
    expected: dict[str, Any] = {WEIGHTS: manifest.get("weights_sha256")}
    for name, sha in section.object(manifest, "files", "").items():
        if name not in LOADED:  # a name of our own only: never a path out of the directory
            raise section.fail(f"files.{name}", f"one of {', '.join(LOADED)}")
        expected[name] = section.text({name: sha}, name, "files")
    for name, sha in expected.items():
        path = run_dir / name
        if not path.is_file():
            raise RunError(f"{run_dir} has no {name}; the run is incomplete, re-run it")
        actual = sha256_file(path)
        if actual != sha:
            raise RunError(
                f"{path} does not match the sha256 in its manifest (expected {sha}, got "
                f"{actual}): the file was changed or corrupted; restore it or re-run the fit"
            )


def _read_json(path: Path, missing: str) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path.parent} {missing}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON ({err}); restore it or re-run the fit") from err
    if not isinstance(data, dict):
        raise RunError(f"{path} must hold a JSON object; restore it or re-run the fit")
    return data


def _atomic_json(path: Path, data: dict[str, Any], then: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"), then)


class _Section:
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


def _store(section: _Section, raw: dict[str, Any]) -> StoreInput:
    shape = section.optional(raw, "cond_shape", list, "store")
    return StoreInput(
        path=section.text(raw, "path", "store"),
        fingerprint=section.text(raw, "fingerprint", "store"),
        layer=section.optional(raw, "layer", str, "store"),
        cond_shape=None if shape is None else tuple(section.ints(shape, "store.cond_shape")),
        on=section.optional(raw, "on", str, "store"),
        train=section.optional(raw, "train", int, "store"),
        validation=section.optional(raw, "validation", int, "store"),
    )


def _dataset(section: _Section, raw: dict[str, Any]) -> DatasetInput:
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
