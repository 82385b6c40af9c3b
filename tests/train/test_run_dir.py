"""``open_run_dir``: the one owner of a fit's run directory (fresh, resume, refuse, overwrite)."""

from __future__ import annotations

import json

import pytest
import torch

from innx.errors import ConfigError
from innx.store.locking import WriteLock
from innx.store.runs import MANIFEST, RunInputs, StoreInput, read_run
from innx.train import run_dir as run_dir_module
from innx.train.checkpoints import has_checkpoint, save_checkpoint
from innx.train.distributed import Part
from innx.train.run_dir import FIT_FILE, RESUME_DIR, RunDir, open_run_dir

FIT = {"store": "acts.h5", "layer": "fc", "lr": 0.1, "workers": 0}
STORE = "f1ngerprint"
INPUTS = RunInputs(store=StoreInput("/data/acts.h5", STORE, layer="fc"), fit=FIT)


def finish(run: RunDir) -> None:
    run.write(
        {"w": torch.ones(2)}, "invariance", {"zbar_dim": 2}, inputs=INPUTS, seed=0, metrics={},
        device=torch.device("cpu"),
    )  # fmt: skip


def interrupted(out, fit=FIT):
    """A run that checkpointed at step 3 and was then interrupted."""
    with (
        pytest.raises(KeyboardInterrupt),
        open_run_dir(out, fit=fit, store_fingerprint=STORE) as run,
    ):
        save_checkpoint(out / RESUME_DIR, {"step": 3}, 3)
        raise KeyboardInterrupt
    assert not run.resuming


def enter(out, **options) -> None:
    """Open ``out`` for a fit and leave at once (to see what is refused)."""
    with open_run_dir(out, **options):
        pass


def test_a_fresh_fit_records_its_arguments_and_finishes(tmp_path) -> None:
    out = tmp_path / "run"
    with open_run_dir(out, fit=FIT, store_fingerprint=STORE) as run:
        assert not run.resuming and run.path == out
        recorded = json.loads((out / RESUME_DIR / FIT_FILE).read_text())
        assert recorded == {**FIT, "store_fingerprint": STORE}
        finish(run)
    assert not (out / RESUME_DIR).exists()
    assert read_run(out).inputs == INPUTS
    assert read_run(out).manifest["device"] == "cpu"  # the device it ran on, as written


def test_an_exception_leaves_the_run_resumable_and_resume_continues_it(tmp_path) -> None:
    out = tmp_path / "run"
    interrupted(out)
    assert has_checkpoint(out / RESUME_DIR) and not (out / MANIFEST).exists()
    with pytest.raises(ConfigError, match="holds an unfinished run; pass --resume"):
        enter(out, fit=FIT)
    with open_run_dir(out, fit=FIT, resume=True, store_fingerprint=STORE) as run:
        assert run.resuming
        finish(run)
    assert (out / MANIFEST).is_file() and not (out / RESUME_DIR).exists()
    with pytest.raises(ConfigError, match="already a finished run; nothing to resume"):
        enter(out, fit=FIT, resume=True)


def test_resume_refuses_changed_arguments_but_not_ignored_ones(tmp_path) -> None:
    out = tmp_path / "run"
    interrupted(out)
    changed = {**FIT, "lr": 0.2, "workers": 4}
    with pytest.raises(
        ConfigError, match=r"options of the interrupted run in .*: lr was 0\.1, now 0\.2$"
    ):
        enter(out, fit=changed, resume=True, ignore=("workers",), store_fingerprint=STORE)
    with open_run_dir(
        out, fit={**FIT, "workers": 4}, resume=True, ignore=("workers",), store_fingerprint=STORE
    ) as run:
        assert run.resuming
        finish(run)


def test_resume_refuses_another_store(tmp_path) -> None:
    out = tmp_path / "run"
    interrupted(out)
    now = {**FIT, "store": "other.h5"}
    with pytest.raises(ConfigError) as refused:
        enter(out, fit=now, resume=True, store_fingerprint="another")
    assert str(refused.value) == (
        f"the store other.h5 given now is not the one the run in {out} was started on, acts.h5 "
        "(their fingerprints differ); resume with that store, or start over with --overwrite"
    )
    assert has_checkpoint(out / RESUME_DIR)  # still resumable with the right store


def test_overwrite_starts_over_and_a_finished_run_is_never_clobbered(tmp_path) -> None:
    out = tmp_path / "run"
    with open_run_dir(out, fit=FIT) as run:
        finish(run)
    with pytest.raises(ConfigError, match="already holds a finished run; pass --overwrite"):
        enter(out, fit=FIT)
    with pytest.raises(ConfigError, match="either --resume or --overwrite, not both"):
        enter(out, fit=FIT, resume=True, overwrite=True)
    with open_run_dir(out, fit={**FIT, "lr": 0.5}, overwrite=True) as run:
        assert not run.resuming and not (out / MANIFEST).exists()
        assert json.loads((out / RESUME_DIR / FIT_FILE).read_text())["lr"] == 0.5
        finish(run)
    assert (out / MANIFEST).is_file()


def test_a_fit_that_writes_no_run_is_not_finished(tmp_path) -> None:
    out = tmp_path / "run"
    with (
        pytest.raises(RuntimeError, match="ended without writing its run"),
        open_run_dir(out, fit=FIT),
    ):
        save_checkpoint(out / RESUME_DIR, {"step": 1}, 1)
    assert has_checkpoint(out / RESUME_DIR)


def test_only_the_main_process_touches_the_directory(tmp_path, monkeypatch) -> None:
    waited: list[int] = []
    monkeypatch.setattr(run_dir_module, "agree", lambda part, value: True)  # rank 0 resumes
    monkeypatch.setattr(Part, "barrier", lambda self: waited.append(self.rank))
    out = tmp_path / "run"
    rank_0 = WriteLock(out)  # rank 0 holds the run's lock; rank 1 takes none
    with open_run_dir(out, fit=FIT, part=Part(1, 2), resume=True, store_fingerprint=STORE) as run:
        assert run.resuming  # rank 0's decision
        finish(run)
    rank_0.release()
    assert not out.exists() and waited == [1]
