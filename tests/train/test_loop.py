"""The shared training loop: deterministic resume, checkpoints, the NaN guard, the run directory."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from typing import ClassVar

import pytest
import torch
from torch import nn

from innx.errors import ConfigError, RunError
from innx.train.checkpoints import POINTER, load_checkpoint
from innx.train.loop import METRICS, LoopConfig, train
from innx.train.run_dir import RESUME_DIR, finish_run_dir, prepare_run_dir


class Regression:
    """A small MLP fitting a fixed random target; batches depend only on (seed, step)."""

    def __init__(self, stop_at: int | None = None, nan_at: int | None = None) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.2), nn.Linear(16, 1))
        self.stop_at, self.nan_at = stop_at, nan_at
        self.warm_starts = 0

    def warm_start(self) -> None:
        self.warm_starts += 1

    def batches(self, start: int, stop: int) -> Iterator[torch.Tensor]:
        for step in range(start, stop):
            if step == self.stop_at:
                raise KeyboardInterrupt
            yield torch.randn(8, 4, generator=torch.Generator().manual_seed(step)), step

    def loss(self, model, batch):
        x, step = batch
        loss = (model(x).squeeze(1) - x.sum(1)).pow(2).mean()
        if step == self.nan_at:
            loss = loss * float("nan")
        return loss, {"abs": loss.sqrt().item()}

    def evaluate(self):
        x = torch.randn(32, 4, generator=torch.Generator().manual_seed(-1))
        return {"mse": (self.model(x).squeeze(1) - x.sum(1)).pow(2).mean().item()}


CONFIG = LoopConfig(steps=30, lr=1e-2, warmup=3, log_every=4, eval_every=10, checkpoint_every=5)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    whole = Regression()
    prepare_run_dir(tmp_path / "a", resume=False, overwrite=False)
    train(whole, CONFIG, tmp_path / "a")

    out = tmp_path / "b"
    prepare_run_dir(out, resume=False, overwrite=False)
    with pytest.raises(KeyboardInterrupt):
        train(Regression(stop_at=17), CONFIG, out)
    assert prepare_run_dir(out, resume=True, overwrite=False) is True
    second = Regression()  # a fresh process would rebuild the model from scratch
    result = train(second, CONFIG, out, resume=True)
    assert result.resumed_from == 15
    assert whole.warm_starts == 1 and second.warm_starts == 0  # fresh runs only
    for key, value in weights(whole.model).items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert (out / METRICS).read_text() == (tmp_path / "a" / METRICS).read_text()


def test_metrics_record_training_and_validation(tmp_path):
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    result = train(Regression(), CONFIG, tmp_path)
    lines = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [4, 8, 12, 16, 20, 24, 28, 30]
    assert [r["step"] for r in lines if "val_mse" in r] == [10, 20, 30]
    assert (
        lines[-1]["val_mse"]
        < json.loads((tmp_path / METRICS).read_text().splitlines()[2])["val_mse"]
    )
    assert set(result.metrics) >= {"loss", "abs", "lr", "val_mse"}


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    with pytest.raises(RunError, match=r"loss became nan at step 12.*lower --lr"):
        train(Regression(nan_at=12), CONFIG, tmp_path)
    state = load_checkpoint(tmp_path / RESUME_DIR)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_non_finite_loss_read_later_is_reported_at_its_own_step(tmp_path):
    """Metrics are read from the device only at log lines (a GPU would otherwise sync every
    step); a NaN inside a window is still named by its step, and its window is never logged."""
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    config = LoopConfig(steps=30, lr=1e-2, log_every=10, checkpoint_every=100)
    with pytest.raises(RunError, match=r"loss became nan at step 12"):
        train(Regression(nan_at=12), config, tmp_path)
    lines = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert [r["step"] for r in lines] == [10]
    assert load_checkpoint(tmp_path / RESUME_DIR)["step"] == 0


def test_learning_rate_schedule():
    config = LoopConfig(steps=10, lr=1.0, warmup=2)
    factors = [config.lr_factor(s) for s in range(10)]
    assert factors[:2] == [0.5, 1.0]
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))
    assert LoopConfig(steps=10, schedule="constant").lr_factor(9) == 1.0
    with pytest.raises(ConfigError, match="schedule 'linear'"):
        LoopConfig(steps=10, schedule="linear")
    with pytest.raises(ConfigError, match="at least one step"):
        LoopConfig(steps=0)


def test_run_directory_lifecycle(tmp_path):
    out = tmp_path / "run"
    assert prepare_run_dir(out, resume=False, overwrite=False) is False
    (out / RESUME_DIR).mkdir()
    (out / RESUME_DIR / POINTER).write_text("{}")
    with pytest.raises(ConfigError, match="unfinished run; pass --resume"):
        prepare_run_dir(out, resume=False, overwrite=False)
    (out / "manifest.json").write_text("{}")
    finish_run_dir(out)
    assert not (out / RESUME_DIR).exists()
    with pytest.raises(ConfigError, match="already holds a finished run; pass --overwrite"):
        prepare_run_dir(out, resume=False, overwrite=False)
    with pytest.raises(ConfigError, match="finished run; nothing to resume"):
        prepare_run_dir(out, resume=True, overwrite=False)
    assert prepare_run_dir(out, resume=False, overwrite=True) is False
    assert list(out.iterdir()) == []
    with pytest.raises(ConfigError, match="no checkpoint to resume from"):
        prepare_run_dir(out, resume=True, overwrite=False)
    with pytest.raises(ConfigError, match="either --resume or --overwrite"):
        prepare_run_dir(out, resume=True, overwrite=True)
    (out / RESUME_DIR).mkdir()  # a fit that failed before its first checkpoint: start afresh
    (out / RESUME_DIR / "fit.json").write_text("{}")
    assert prepare_run_dir(out, resume=False, overwrite=False) is False
    assert not (out / RESUME_DIR).exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        prepare_run_dir(tmp_path / "file", resume=False, overwrite=False)


def test_a_damaged_checkpoint_says_how_to_recover(tmp_path):
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    with pytest.raises(KeyboardInterrupt):
        train(Regression(stop_at=7), CONFIG, tmp_path)
    checkpoint = tmp_path / RESUME_DIR / "checkpoint-5.pt"
    good = checkpoint.read_bytes()
    checkpoint.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one flipped bit
    with pytest.raises(RunError, match=r"sha256 .* does not match .*--overwrite"):
        train(Regression(), CONFIG, tmp_path, resume=True)
    checkpoint.unlink()
    with pytest.raises(RunError, match=r"checkpoint-5.pt named by .* is missing"):
        train(Regression(), CONFIG, tmp_path, resume=True)
    (tmp_path / RESUME_DIR / POINTER).write_text("garbage")
    with pytest.raises(RunError, match=r"checkpoint.json is damaged.*--overwrite"):
        train(Regression(), CONFIG, tmp_path, resume=True)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    with pytest.raises(KeyboardInterrupt):
        train(Regression(stop_at=7), CONFIG, tmp_path)
    other = Regression()
    other.model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    with pytest.raises(RunError, match=r"does not fit this model.*--overwrite"):
        train(other, CONFIG, tmp_path, resume=True)


def test_only_the_newest_checkpoint_is_kept(tmp_path):
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    with pytest.raises(KeyboardInterrupt):
        train(Regression(stop_at=17), CONFIG, tmp_path)
    names = sorted(p.name for p in (tmp_path / RESUME_DIR).iterdir())
    assert names == ["checkpoint-15.pt", POINTER]
    assert json.loads((tmp_path / RESUME_DIR / POINTER).read_text())["step"] == 15


def test_gradient_clipping_and_bf16_run(tmp_path):
    seen = []
    config = LoopConfig(steps=4, lr=1e-2, grad_clip=1e-3, precision="bf16")
    prepare_run_dir(tmp_path, resume=False, overwrite=False)
    task = Regression()

    def after_clip_norm(step, model):
        seen.append(float(nn.utils.clip_grad_norm_(model.parameters(), float("inf"))))

    result = train(task, config, tmp_path, on_gradients=after_clip_norm)
    assert len(seen) == 4 and all(n > 1e-3 for n in seen)  # the hook sees gradients before clipping
    assert math.isfinite(result.metrics["loss"])
    with pytest.raises(ConfigError, match="precision 'fp8'"):
        LoopConfig(steps=1, precision="fp8")
    with pytest.raises(ConfigError, match="--grad-clip must be positive"):
        LoopConfig(steps=1, grad_clip=0.0)


class Peaked(Regression):
    """Regression whose validation score peaks at step 20 of 30 (it follows the step, so a resumed
    process sees the same scores)."""

    SCORES: ClassVar[dict[int, float]] = {10: 1.0, 20: 3.0, 30: 2.0}

    def batches(self, start: int, stop: int) -> Iterator[torch.Tensor]:
        for batch in super().batches(start, stop):
            self.step = batch[1] + 1
            yield batch

    def evaluate(self):
        return {**super().evaluate(), "score": self.SCORES[self.step]}


BEST = LoopConfig(**{**CONFIG.__dict__, "keep_best": "val_score", "best_higher": True})


def test_the_run_ends_on_its_best_evaluated_weights_bit_for_bit(tmp_path):
    at_best = {}

    def capture(step, model):  # before update 21: the weights after 20 steps
        if step == 20:
            at_best.update(weights(model))

    prepare_run_dir(tmp_path / "a", resume=False, overwrite=False)
    whole = Peaked()
    result = train(whole, BEST, tmp_path / "a", on_gradients=capture)
    assert result.best_step == 20 and result.metrics["best_step"] == 20
    assert result.metrics["val_score"] == 3.0
    for key, value in at_best.items():
        assert torch.equal(value, whole.model.state_dict()[key]), key
    last = Peaked()
    prepare_run_dir(tmp_path / "last", resume=False, overwrite=False)
    train(last, CONFIG, tmp_path / "last")  # without keep_best: the last weights
    assert not all(torch.equal(v, last.model.state_dict()[k]) for k, v in at_best.items())

    for stop_at in (17, 27):  # before the best evaluation, and after it
        out = tmp_path / f"stop-{stop_at}"
        prepare_run_dir(out, resume=False, overwrite=False)
        with pytest.raises(KeyboardInterrupt):
            train(Peaked(stop_at=stop_at), BEST, out)
        resumed = Peaked()
        assert train(resumed, BEST, out, resume=True).best_step == 20
        for key, value in at_best.items():
            assert torch.equal(value, resumed.model.state_dict()[key]), (stop_at, key)
