"""The lifecycle of a fit's run directory: refuse to clobber, resume, record the fit, finish.

A finished run has ``manifest.json``; an unfinished one has ``resume/`` with a checkpoint and
``fit.json``, the arguments it was started with, so that ``--resume`` can refuse changed ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from innx.errors import ConfigError
from innx.store.runs import MANIFEST
from innx.train.checkpoints import has_checkpoint

RESUME_DIR = "resume"
FIT_FILE = "fit.json"


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> bool:
    """Make ``out`` ready for a fit; return whether training resumes from a checkpoint.

    A finished run (``manifest.json``) or an unfinished one (``resume/``) is never clobbered
    silently: ``overwrite`` starts over, ``resume`` continues an unfinished run.
    """
    if resume and overwrite:
        raise ConfigError("pass either --resume or --overwrite, not both")
    resume_dir = out / RESUME_DIR
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; choose another -o")
    if overwrite and out.exists():
        shutil.rmtree(out)
    if resume:
        if has_checkpoint(resume_dir):
            return True
        if (out / MANIFEST).is_file():
            raise ConfigError(f"{out} is already a finished run; nothing to resume (--overwrite)")
        raise ConfigError(
            f"{out} has no checkpoint to resume from ({resume_dir} holds none); "
            "run without --resume"
        )
    only_resume_dir = out.is_dir() and [p.name for p in out.iterdir()] == [RESUME_DIR]
    if only_resume_dir and not has_checkpoint(resume_dir):
        shutil.rmtree(resume_dir)  # a fit that failed before its first checkpoint
    if out.is_dir() and any(out.iterdir()):
        if (out / MANIFEST).is_file():
            raise ConfigError(f"{out} already holds a finished run; pass --overwrite to replace it")
        if has_checkpoint(resume_dir):
            raise ConfigError(
                f"{out} holds an unfinished run; pass --resume to continue it or --overwrite"
            )
        raise ConfigError(f"{out} exists and is not empty; choose another -o or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    return False


def finish_run_dir(out: Path) -> None:
    """Remove the checkpoints of a run whose manifest has been written."""
    shutil.rmtree(out / RESUME_DIR, ignore_errors=True)


def check_same_fit(
    out: Path, fit: dict[str, Any], resuming: bool, *, ignore: Iterable[str] = ()
) -> None:
    """Record the arguments of a new fit in ``resume/fit.json``; on resume, refuse changed ones.

    ``ignore`` names arguments that may change between runs (worker counts, intervals).
    """
    path = out / RESUME_DIR / FIT_FILE
    current = json.loads(json.dumps(fit))
    if not resuming:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2) + "\n")
        return
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return  # written before the first checkpoint; nothing to compare
    skip = set(ignore)
    changed = [
        f"{key} was {recorded.get(key)!r}, now {value!r}"
        for key, value in current.items()
        if key not in skip and recorded.get(key) != value
    ]
    if changed:
        raise ConfigError(
            f"--resume needs the options of the interrupted run in {out}: {'; '.join(changed)}"
        )


def check_same_store(out: Path, fingerprint: str, resuming: bool) -> None:
    """On resume, refuse a store other than the one the run was started on (by fingerprint)."""
    if not resuming:
        return
    try:
        recorded = json.loads((out / RESUME_DIR / FIT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return
    if recorded.get("store_fingerprint") not in (None, fingerprint):
        raise ConfigError(
            f"the store {recorded.get('store')} is not the one the run in {out} was started on "
            "(its fingerprint differs); resume with that store, or start over with --overwrite"
        )
