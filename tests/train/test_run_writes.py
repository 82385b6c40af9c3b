"""A full disk during a fit: one line, exit 1, nothing on stdout, no manifest, no ``.tmp`` file,
and the fit goes on (``--resume``, or a plain rerun before the first checkpoint) once space is
freed. The disk is a real tmpfs of a few MB, mounted for the test (skipped where mounting is not
permitted); the run directory is its mount point, so the run's lock file lies outside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import write_synthetic_store
from torch import nn
from typer.testing import CliRunner

from innx.cli.app import build_app
from innx.store.runs import MANIFEST
from innx.train.checkpoints import POINTER
from innx.train.loop import METRICS, LoopConfig, train
from innx.train.run_dir import RESUME_DIR, open_run_dir, prepare_run_dir
from innx.writes import WriteError

FULL = "no space left on device while writing"


@pytest.fixture
def disk(small_disk):  # type: ignore[no-untyped-def]
    """A 2 MB tmpfs (:class:`conftest.SmallDisk`), skipped where mounting is not permitted."""
    return small_disk("2m")


def stray(folder: Path) -> list[str]:
    """Temporary files left in ``folder``."""
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]


def fit(store: Path, out: Path, *args: str):  # type: ignore[no-untyped-def]
    """``innx fit invariance`` in-process: a small t on the synthetic store."""
    command = ["fit", "invariance", str(store), "--layer", "fc", "-o", str(out), "--steps", "4"]
    command += ["--batch-size", "16", *args]
    return CliRunner().invoke(build_app(), command, prog_name="innx")


def refused(result, message: str) -> None:  # type: ignore[no-untyped-def]
    """Exit 1, nothing on stdout, and after the fit's log one line: ``error: message``."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {message}"] and result.stderr.endswith(f"{errors[0]}\n")
    assert "Traceback" not in result.stderr


def test_a_checkpoint_that_does_not_fit_is_one_line_and_the_fit_goes_on(disk, tmp_path) -> None:
    store = write_synthetic_store(tmp_path / "acts.h5", n=200)
    run = disk.path
    # the first checkpoint (the weights alone) does not fit: nothing to resume from
    refused(
        fit(store, run, "--checkpoint-every", "2"),
        f"{FULL} {run}/resume/checkpoint-0.pt; free space and run again",
    )
    assert not (run / MANIFEST).exists() and stray(run) == []
    # it does, the second (with Adam's moments) does not: resume from the first
    disk.resize("8m")
    refused(
        fit(store, run, "--checkpoint-every", "2"),  # the same command: a plain rerun
        f"{FULL} {run}/resume/checkpoint-2.pt; free space and run again with --resume",
    )
    assert not (run / MANIFEST).exists() and stray(run) == []
    pointer = json.loads((run / RESUME_DIR / POINTER).read_text())
    assert pointer["file"] == "checkpoint-0.pt"
    assert sorted(p.name for p in (run / RESUME_DIR).iterdir()) == [
        "checkpoint-0.pt", POINTER, "fit.json"
    ]  # fmt: skip
    disk.resize("64m")
    done = fit(store, run, "--checkpoint-every", "2", "--resume")
    assert done.exit_code == 0, done.output
    assert done.stdout == f"{run}\n"
    assert json.loads((run / MANIFEST).read_text())["metrics"]["steps"] == 4
    assert not (run / RESUME_DIR).exists()


def test_final_weights_that_do_not_fit_leave_the_run_resumable(disk, tmp_path) -> None:
    store = write_synthetic_store(tmp_path / "acts.h5", n=200)
    run = disk.path
    disk.resize("5m")  # the checkpoint of step 0 fits, the final weights beside it do not
    refused(
        fit(store, run, "--checkpoint-every", "100"),
        f"{FULL} {run}/model.safetensors; free space and run again with --resume",
    )
    assert not (run / MANIFEST).exists() and stray(run) == []
    disk.resize("64m")
    done = fit(store, run, "--checkpoint-every", "100", "--resume")
    assert done.exit_code == 0, done.output
    assert (run / MANIFEST).is_file() and not (run / RESUME_DIR).exists()


class Line:
    """A linear fit whose batches depend only on the step (see ``loop.Task``)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(2, 1)

    def warm_start(self) -> None:
        pass

    def batches(self, start: int, stop: int) -> Iterator[torch.Tensor]:
        for step in range(start, stop):
            yield torch.randn(4, 2, generator=torch.Generator().manual_seed(step))

    def loss(self, model: nn.Module, x: torch.Tensor):  # type: ignore[no-untyped-def]
        return (model(x).squeeze(1) - x.sum(1)).pow(2).mean(), {}

    def evaluate(self) -> dict[str, float]:
        return {}


def test_a_metrics_line_that_does_not_fit_is_a_write_error(disk) -> None:
    out, config = disk.path, LoopConfig(steps=6, log_every=3, checkpoint_every=100)
    filled: list[Path] = []

    def fill_after_the_first_step(step: int, _total: int, _latest: dict[str, float]) -> None:
        if step == 1:
            filled.append(disk.fill())

    prepare_run_dir(out, resume=False, overwrite=False)
    with pytest.raises(WriteError) as failed:
        train(Line(), config, out, progress=fill_after_the_first_step)
    assert str(failed.value) == f"{FULL} {out}/{METRICS}; free space and run again with --resume"
    assert stray(out) == []
    filled[0].unlink()
    assert prepare_run_dir(out, resume=True, overwrite=False)
    assert train(Line(), config, out, resume=True).resumed_from == 0
    steps = [json.loads(line)["step"] for line in (out / METRICS).read_text().splitlines()]
    assert steps == [3, 6, 6]  # two lines of training, one of the final evaluation


def test_a_fit_record_that_does_not_fit_leaves_nothing_to_clean(disk) -> None:
    out = disk.path / "run"
    filler = disk.fill(leave=4096)  # a page for the run's lock file (its pid), none for fit.json
    with pytest.raises(WriteError) as failed, open_run_dir(out, fit={"lr": 0.1}):
        pass
    assert str(failed.value) == f"{FULL} {out}/{RESUME_DIR}/fit.json; free space and run again"
    assert stray(out) == [] and not (out.parent / f"{out.name}.lock").exists()
    filler.unlink()
    with pytest.raises(KeyboardInterrupt), open_run_dir(out, fit={"lr": 0.1}) as run:
        assert not run.resuming  # a plain rerun: nothing to resume from, nothing in the way
        assert json.loads((out / RESUME_DIR / "fit.json").read_text()) == {"lr": 0.1}
        raise KeyboardInterrupt
    assert not out.exists()  # stopped before its first checkpoint: nothing worth keeping
