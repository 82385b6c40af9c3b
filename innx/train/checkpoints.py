"""Checkpoints a kill -9 cannot damage, verified by sha256 before they are trusted.

``RUN/resume/`` holds ``checkpoint-<step>.pt`` (tensors and plain containers only, read with
``weights_only=True``) and the pointer ``checkpoint.json`` ``{"file", "step", "sha256"}``. A new
checkpoint is written in full and synced, then the pointer is replaced atomically, then the old
file is removed: whenever the process dies, the pointer names a complete file whose sha256 it
holds. A file that no longer matches its sha256 is refused with a message, never half-loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from innx.errors import RunError, first_line
from innx.store.runs import sha256_file

POINTER = "checkpoint.json"
"""The name of the file that says which checkpoint is current (its presence means "resumable")."""


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` (a run's ``resume/``) holds a checkpoint to resume from."""
    return (folder / POINTER).is_file()


def save_checkpoint(folder: Path, state: dict[str, Any], step: int) -> Path:
    """Write ``state`` as the checkpoint of ``step`` and make it the current one; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint-{step}.pt"
    tmp = folder / f".{path.name}.tmp"
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    pointer = {"file": path.name, "step": step, "sha256": sha256_file(path)}
    tmp_pointer = folder / f".{POINTER}.tmp"
    with open(tmp_pointer, "w") as handle:
        handle.write(json.dumps(pointer) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp_pointer, folder / POINTER)
    for old in folder.glob("checkpoint-*.pt"):  # superseded (or left by a kill before the pointer)
        if old != path:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """The current checkpoint of ``folder``, after checking its sha256 against the pointer."""
    pointer_path = folder / POINTER
    try:
        pointer = json.loads(pointer_path.read_text())
        path = folder / str(pointer["file"])
        expected = str(pointer["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunError(
            f"cannot resume: {pointer_path} is damaged ({first_line(err)}); "
            "run with --overwrite to start over"
        ) from err
    if not path.is_file():
        raise RunError(
            f"cannot resume: {path} named by {pointer_path} is missing; "
            "run with --overwrite to start over"
        )
    actual = sha256_file(path)
    if actual != expected:
        raise RunError(
            f"cannot resume from {path}: its sha256 {actual[:12]}… does not match the "
            f"{expected[:12]}… recorded in {POINTER} (the file was changed or damaged); "
            "run with --overwrite to start over"
        )
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file means the same thing to the user
        raise RunError(
            f"cannot resume from {path} ({first_line(err)}); run with --overwrite to start over"
        ) from err
    return state
