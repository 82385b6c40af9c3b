"""One writer per run directory: a fit into a directory another process is writing is refused
(``--overwrite`` and ``--resume`` included), with the writer's pid, and the directory is left as it
was; the lock (``RUN.lock`` beside the directory) is gone once its holder is, even by kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import write_synthetic_store
from typer.testing import CliRunner

from innx.cli.app import build_app
from innx.errors import ConfigError
from innx.store.runs import MANIFEST, write_run
from innx.train.run_dir import open_run_dir

HOLD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"{os.getpid()}\\n".encode())
    print("locked", flush=True)
    time.sleep(120)
    """
)
"""A writer of run ``argv[1]`` as :class:`~innx.store.locking.WriteLock` takes it (a flock on
``RUN.lock``, holding the pid), without the import time of innx."""


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_fit_into_a_directory_another_process_writes_is_refused(tmp_path) -> None:
    store = write_synthetic_store(tmp_path / "acts.h5", n=200)
    run = tmp_path / "runs" / "t"
    write_run(run, {"w": torch.ones(2)}, "invariance", {"zbar_dim": 2})
    before = contents(run)
    holder = subprocess.Popen(
        [sys.executable, "-S", "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        args = ["fit", "invariance", str(store), "--layer", "fc", "-o", str(run), "--steps", "2"]
        args += ["--batch-size", "16"]
        for flag in ("--overwrite", "--resume"):
            done = CliRunner().invoke(build_app(), [*args, flag], prog_name="innx")
            assert done.exit_code == 1 and done.stdout == "", done.output
            assert done.stderr.splitlines()[-1] == (
                f"error: {run} is being written by another process (pid {holder.pid}); "
                "wait for it or stop it"
            )
            assert contents(run) == before  # not removed, not resumed: untouched
        os.kill(holder.pid, signal.SIGKILL)  # the lock goes with its holder
        holder.wait(timeout=30)
        done = CliRunner().invoke(build_app(), [*args, "--overwrite"], prog_name="innx")
        assert done.exit_code == 0, done.output
        assert done.stdout == f"{run}\n" and (run / MANIFEST).is_file()
        assert contents(run) != before
        assert sorted(p.name for p in run.parent.iterdir()) == ["t"]  # the lock file is gone
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_lock_lies_beside_the_run_and_goes_with_the_fit(tmp_path) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), open_run_dir(run, fit={}):
        assert (tmp_path / "run.lock").read_text() == f"{os.getpid()}\n"
        assert list(run.iterdir()) == [run / "resume"]  # nothing of the lock inside the run
        with pytest.raises(ConfigError, match=r"run is being written by another process \(pid"):
            open_run_dir(run, fit={}, overwrite=True).__enter__()
        raise KeyboardInterrupt
    assert not (tmp_path / "run.lock").exists()
