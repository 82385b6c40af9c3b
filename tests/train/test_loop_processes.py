"""The shared loop across processes: resume after a real kill -9, and DDP under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from innx.train.checkpoints import POINTER
from innx.train.loop import METRICS
from innx.train.run_dir import RESUME_DIR

WORKER = Path(__file__).with_name("loop_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def worker(out: Path, mode: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(out), mode],
        env={**ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def test_resume_after_kill_9_ends_at_the_same_weights(tmp_path):
    finished(worker(tmp_path / "whole", "fresh"))

    out = tmp_path / "killed"
    proc = worker(out, "fresh", INNX_TEST_SLOW="0.1")
    pointer = out / RESUME_DIR / POINTER
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for a checkpoint past step 0, then kill mid-run
        if pointer.is_file() and json.loads(pointer.read_text())["step"] >= 10:
            break
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.05)
    time.sleep(0.25)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "final.pt").exists()
    step = json.loads(pointer.read_text())["step"]
    assert 10 <= step < 24

    finished(worker(out, "resume"))
    whole = torch.load(tmp_path / "whole" / "final.pt", weights_only=True)
    resumed = torch.load(out / "final.pt", weights_only=True)
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
    assert (out / METRICS).read_text() == (tmp_path / "whole" / METRICS).read_text()


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc-per-node", str(nproc), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)


@pytest.mark.slow
def test_two_process_ddp_gradients_equal_one_process_on_the_doubled_batch(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    finished(worker(one, "grads"))
    proc = torchrun(2, str(WORKER), str(two), "grads")
    assert proc.returncode == 0, proc.stderr
    single = torch.load(one / "grads-0.pt", weights_only=True)
    ranks = [torch.load(two / f"grads-{r}.pt", weights_only=True) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == 3  # three steps
    nonzero = 0
    for step, expected in enumerate(single):
        for name, grad in expected.items():
            for rank in ranks:  # every process holds the average over both halves
                torch.testing.assert_close(
                    rank[step][name], grad, rtol=1e-4, atol=1e-6, msg=f"{step} {name}"
                )
            nonzero += int(grad.abs().sum() > 0)
    assert nonzero > len(single[0])  # the comparison is not between zeros
