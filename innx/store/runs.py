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

The record of the inputs is typed (:class:`RunInputs`, :mod:`innx.store.run_inputs`; imported
from here too).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from innx import __version__
from innx.errors import InnxError, PluginError, RunError, first_line
from innx.store.run_inputs import (
    MANIFEST,
    DatasetInput,
    InputFile,
    ManifestSection,
    RunInputs,
    StoreInput,
    sha256_file,
)
from innx.writes import atomic_write, writing

__all__ = [  # the record of a fit's inputs is read and written with its run, so it is here too
    "CONFIG", "MANIFEST", "WEIGHTS", "DatasetInput", "InputFile", "RunFiles", "RunInputs",
    "StoreInput", "build_from_config", "read_run", "sha256_file", "write_run",
]  # fmt: skip

RUN_FORMAT = "innx.run"
RUN_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
LOADED = (WEIGHTS, CONFIG)
"""The files a run is loaded from, each vouched for by its sha256 in the manifest (``files``)."""

_T = TypeVar("_T")


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
    ManifestSection(run_dir).object(manifest, "metrics", "")  # RunFiles.metrics reads a JSON object
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
    section = ManifestSection(run_dir)
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
