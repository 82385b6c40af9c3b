"""Checkpoints a kill -9 cannot damage, verified by sha256 before they are trusted.

``RUN/resume/`` holds ``checkpoint-<step>.pt`` (tensors and plain containers only, read with
``weights_only=True``) and the pointer ``checkpoint.json`` ``{"file", "step", "sha256"}``. A new
checkpoint is written in full and synced, then the pointer is replaced atomically, then the old
file is removed: whenever the process dies, the pointer names a complete file whose sha256 it
holds. A file that no longer matches its sha256 is refused with a message, never half-loaded.

A write that fails (a full disk) leaves the previous checkpoint current and no temporary file
behind, and is a one-line :class:`~innx.writes.WriteError` naming the file and how to go on:
``run again with --resume`` when a checkpoint is there to resume from (:func:`writing_fit`).
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch

from innx.errors import RunError, first_line
from innx.store.runs import sha256_file
from innx.writes import writing

POINTER = "checkpoint.json"
"""The name of the file that says which checkpoint is current (its presence means "resumable")."""


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` (a run's ``resume/``) holds a checkpoint to resume from."""
    return (folder / POINTER).is_file()


def save_checkpoint(folder: Path, state: dict[str, Any], step: int) -> Path:
    """Write ``state`` as the checkpoint of ``step`` and make it the current one; return its path.

    On a failed write the previous checkpoint stays current and nothing written here is left.
    """
    path = folder / f"checkpoint-{step}.pt"
    tmp = folder / f".{path.name}.tmp"
    tmp_pointer = folder / f".{POINTER}.tmp"
    current = False
    try:
        with writing_fit(folder, path):
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        pointer = {"file": path.name, "step": step, "sha256": sha256_file(path)}
        with writing_fit(folder, folder / POINTER):
            with open(tmp_pointer, "w") as handle:
                handle.write(json.dumps(pointer) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_pointer, folder / POINTER)
        current = True
    finally:
        tmp.unlink(missing_ok=True)
        tmp_pointer.unlink(missing_ok=True)
        if not current and _current_file(folder) != path.name:
            path.unlink(missing_ok=True)  # written, but the pointer could not be moved to it
    for old in folder.glob("checkpoint-*.pt"):  # superseded (or left by a kill before the pointer)
        if old != path:
            old.unlink(missing_ok=True)
    return path


def go_on(folder: Path) -> str:
    """How to go on once a failed write of a fit is fixed: ``run again with --resume`` when
    ``folder`` (a run's ``resume/``) holds a checkpoint to resume from, else ``run again``."""
    return "run again with --resume" if has_checkpoint(folder) else "run again"


def writing_fit(folder: Path, path: Path) -> AbstractContextManager[None]:
    """:func:`innx.writes.writing` for a file of the fit whose ``resume/`` is ``folder``: the
    way on (:func:`go_on`) is decided when it fails (a checkpoint may have been written since)."""
    return writing(path, lambda: go_on(folder))


def _current_file(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / POINTER).read_text())["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
