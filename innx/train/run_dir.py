"""The lifecycle of a fit's run directory: refuse to clobber, resume, record the fit, finish.

A finished run has ``manifest.json``; an unfinished one has ``resume/`` with a checkpoint and
``fit.json``, the arguments it was started with, so that ``--resume`` can refuse changed ones.
Every fit goes through :func:`open_run_dir`, the one owner of this lifecycle::

    with open_run_dir(out, fit=fit.to_dict(), part=part, resume=resume) as run:
        result = train(task, loop, out, resume=run.resuming)
        run.write(model.state_dict(), kind, config, inputs=..., metrics=..., device=device)

Only the main process (rank 0) touches the directory; every process learns whether it resumes.
The main process holds the directory's write lock (``RUN.lock`` beside it,
:class:`~innx.store.locking.WriteLock`) for the whole fit: a second fit into the same directory,
``--resume`` and ``--overwrite`` included, is refused while the first runs.

A write that fails (a full disk, a read-only target) is a one-line
:class:`~innx.writes.WriteError` naming the file and how to go on once fixed: ``run again with
--resume`` when a checkpoint is there to resume from, else ``run again``; no manifest is
written, so the run is not finished.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from innx.errors import ConfigError
from innx.store.locking import WriteLock, lock_path
from innx.store.runs import MANIFEST, RunInputs, write_run
from innx.train.checkpoints import go_on as resume_go_on
from innx.train.checkpoints import has_checkpoint
from innx.train.distributed import SINGLE, Part, agree
from innx.writes import ONLY_ON_WRITE, atomic_write, write_errno, write_failed, writing

RESUME_DIR = "resume"
FIT_FILE = "fit.json"
METRICS = "metrics.jsonl"


@dataclass
class RunDir:
    """A run directory being fitted: ``path``, this process's ``part``, and whether training
    ``resuming`` from a checkpoint (the same on every process)."""

    path: Path
    part: Part
    resuming: bool
    written: bool = False

    def write(
        self,
        tensors: dict[str, torch.Tensor],
        kind: str,
        config: dict[str, Any],
        *,
        inputs: RunInputs,
        seed: int | None,
        metrics: dict[str, Any],
        device: torch.device,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write the finished run (:func:`~innx.store.runs.write_run`; the main process only,
        the others just take note), with the ``device`` the main process trained on. Call it
        once, last thing in the ``with`` block."""
        if self.part.is_main:
            write_run(
                self.path, tensors, kind, config,
                inputs=inputs, seed=seed, metrics=metrics, extra=extra, device=device,
                then=go_on(self.path),
            )  # fmt: skip
        self.written = True


@contextmanager
def open_run_dir(
    out: Path,
    *,
    fit: Mapping[str, Any],
    part: Part = SINGLE,
    resume: bool = False,
    overwrite: bool = False,
    ignore: Iterable[str] = (),
    store_fingerprint: str | None = None,
) -> Iterator[RunDir]:
    """Own run directory ``out`` for one fit with arguments ``fit`` (JSON-able).

    On entry the main process takes the write lock of ``out`` (``out.lock`` beside it, held
    until the block ends: a second writer is refused with this one's pid), prepares ``out``
    (:func:`prepare_run_dir`), refuses on resume a store other than ``store_fingerprint``
    (:func:`check_same_store`; it is recorded among the arguments) and changed arguments other
    than ``ignore`` (:func:`check_same_fit`); then every process agrees whether it resumes. The
    block trains and calls :meth:`RunDir.write`. On a normal exit the checkpoints are removed
    (:func:`finish_run_dir`) and every process waits for the others, so each returns once the
    run is complete. On an exception nothing is finished: the checkpoints stay for ``--resume``;
    a directory this call made and that holds no checkpoint yet (a bad input found while setting
    up the fit) is removed, so nothing is left behind.
    """
    lock = _lock(out) if part.is_main else None
    made = part.is_main and not out.exists()
    try:
        resuming = False
        if part.is_main:
            resuming = prepare_run_dir(out, resume=resume, overwrite=overwrite)
            recorded = dict(fit)
            if store_fingerprint is not None:
                check_same_store(out, store_fingerprint, resuming, store=fit.get("store"))
                recorded["store_fingerprint"] = store_fingerprint
            check_same_fit(out, recorded, resuming, ignore=ignore)
        run = RunDir(out, part, agree(part, resuming))
        try:
            yield run
        except (OSError, RuntimeError) as exc:  # a write the fit made itself, not through us
            if write_errno(exc) not in ONLY_ON_WRITE:
                raise
            raise write_failed(exc, getattr(exc, "filename", None) or out, go_on(out)) from exc
        if not run.written:
            raise RuntimeError(f"the fit into {out} ended without writing its run (RunDir.write)")
        if part.is_main:
            finish_run_dir(out)
    except BaseException:
        if made and not has_checkpoint(out / RESUME_DIR) and not (out / MANIFEST).exists():
            shutil.rmtree(out, ignore_errors=True)  # failed before anything worth keeping
        raise
    finally:
        if lock is not None:
            lock.release()
    part.barrier()  # every process returns once the run directory is complete


def go_on(out: Path) -> str:
    """How to go on once a failed write into run ``out`` is fixed: the way on of its
    ``resume/`` (:func:`innx.train.checkpoints.go_on`)."""
    return resume_go_on(out / RESUME_DIR)


def _lock(out: Path) -> WriteLock:
    """The write lock of run directory ``out``, on ``out.lock`` beside it (created with its
    parent folder)."""
    named = out if out.name not in ("", ".", "..") else out.resolve()  # "." has no sibling
    with writing(lock_path(named), go_on(out)):
        named.parent.mkdir(parents=True, exist_ok=True)
        return WriteLock(named, error=ConfigError, what="run directory")


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> bool:
    """Make ``out`` ready for a fit; return whether training resumes from a checkpoint.

    A finished run (``manifest.json``) or an unfinished one (``resume/``) is never clobbered
    silently: ``overwrite`` starts over, ``resume`` continues an unfinished run.
    """
    if resume and overwrite:
        raise ConfigError("pass either --resume or --overwrite, not both")
    with writing(out, "run again"):
        return _prepare(out, resume=resume, overwrite=overwrite)


def _prepare(out: Path, *, resume: bool, overwrite: bool) -> bool:
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
    failed_early = out.is_dir() and {p.name for p in out.iterdir()} <= {RESUME_DIR, METRICS}
    if failed_early and not has_checkpoint(resume_dir):  # a fit that failed before its first
        shutil.rmtree(resume_dir, ignore_errors=True)  # checkpoint: nothing to keep
        (out / METRICS).unlink(missing_ok=True)
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
        text = json.dumps(current, indent=2) + "\n"
        atomic_write(path, lambda tmp: tmp.write_text(text), "run again")
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


def check_same_store(
    out: Path, fingerprint: str, resuming: bool, *, store: str | None = None
) -> None:
    """On resume, refuse a store other than the one the run was started on (by fingerprint);
    ``store`` is the path given now, named in the message beside the recorded one."""
    if not resuming:
        return
    try:
        recorded = json.loads((out / RESUME_DIR / FIT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return
    if recorded.get("store_fingerprint") not in (None, fingerprint):
        given = "the store given now" if store is None else f"the store {store} given now"
        raise ConfigError(
            f"{given} is not the one the run in {out} was started on, "
            f"{recorded.get('store')} (their fingerprints differ); resume with that store, or "
            "start over with --overwrite"
        )
