"""Run directories: the weights, the config that rebuilds the model, and a manifest that vouches.

A run directory holds::

    model.safetensors   weights only (never pickle)
    config.json         {"kind": ..., "config": {...}}: constructor arguments
    manifest.json       format, version, innx version, created, kind, sha256 of the weights,
                        inputs and their sha256, seed, command line, final metrics

``manifest.json`` is written last, so a directory without one is not a finished run. Loading
checks the weights against the sha256 in the manifest and refuses a file that was changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from innx import __version__
from innx.errors import RunError

RUN_FORMAT = "innx.run"
RUN_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RunFiles:
    """What a run directory holds, read and verified."""

    path: Path
    tensors: dict[str, torch.Tensor]
    kind: str
    config: dict[str, Any]
    manifest: dict[str, Any]


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
    inputs: dict[str, str | Path] | None = None,
    seed: int | None = None,
    metrics: dict[str, Any] | None = None,
    command: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write weights, config and manifest (last) into ``run_dir``; return the directory.

    ``inputs`` maps a role (``"activations"``) to a file; its path and sha256 go in the manifest.
    ``extra`` adds JSON-able fields to the manifest (a dataset's spec and fingerprint, say).
    Each file is written to a temporary name and renamed, so no reader sees half a file.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MANIFEST).unlink(missing_ok=True)  # the directory is unfinished until the end
    weights = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    _atomic(run_dir / WEIGHTS, lambda tmp: save_file(weights, str(tmp)))
    _atomic_json(run_dir / CONFIG, {"kind": kind, "config": config})
    manifest = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "innx_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kind": kind,
        "weights_sha256": sha256_file(run_dir / WEIGHTS),
        "inputs": {
            role: {"path": str(path), "sha256": sha256_file(Path(path))}
            for role, path in (inputs or {}).items()
        },
        "seed": seed,
        "command": command if command is not None else sys.argv,
        "metrics": metrics or {},
        **(extra or {}),
    }
    _atomic_json(run_dir / MANIFEST, manifest)
    return run_dir


def read_run(run_dir: str | Path) -> RunFiles:
    """Read a finished run directory, verifying the weights' sha256 against the manifest."""
    run_dir = Path(run_dir)
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
    config = _read_json(run_dir / CONFIG, "has no config.json; the run is incomplete, re-run it")
    weights_path = run_dir / WEIGHTS
    if not weights_path.is_file():
        raise RunError(f"{run_dir} has no {WEIGHTS}; the run is incomplete, re-run it")
    actual = sha256_file(weights_path)
    if actual != manifest.get("weights_sha256"):
        raise RunError(
            f"{weights_path} does not match the sha256 in its manifest (expected "
            f"{manifest.get('weights_sha256')}, got {actual}): the file was changed or corrupted; "
            "restore it or re-run the fit"
        )
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise RunError(f"cannot read {weights_path}: {err}") from err
    if "kind" not in config or "config" not in config:
        raise RunError(f"{run_dir / CONFIG} must hold 'kind' and 'config'; re-run the fit")
    return RunFiles(run_dir, tensors, config["kind"], config["config"], manifest)


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


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def _atomic(path: Path, write: Any) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
