"""``innx fit invariance`` in real processes: output, errors, kill -9 and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from innx.train.checkpoints import POINTER
from innx.train.run_dir import RESUME_DIR

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)


def test_fit_invariance_prints_the_run_and_its_metrics(synthetic_store, tmp_path):
    run = tmp_path / "inv-fc"
    args = ["fit", "invariance", str(synthetic_store), "--layer", "fc", "-o", str(run)]
    done = innx(*args, "--steps", "30", "--batch-size", "64", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["run"] == str(run)
    assert summary["metrics"]["val_bits_per_dim"] > 0
    assert "bits/dim" in done.stderr
    again = innx(*args, "--steps", "30")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("error:")
    assert "--overwrite" in again.stderr


def test_user_errors_are_one_line_and_exit_1(synthetic_store, make_store, tmp_path):
    bare = make_store(tmp_path / "bare.h5", n=50, latents=False)
    cases = [
        ([str(synthetic_store), "--layer", "fc9"], "choose one of: fc, conv"),
        ([str(bare), "--layer", "fc"], "--autoencoder"),
        ([str(tmp_path / "none.h5"), "--layer", "fc"], "make it with innx extract"),
        ([str(synthetic_store), "--layer", "fc", "--precision", "fp16"], "precision 'fp16'"),
        ([str(synthetic_store), "--layer", "fc", "--cuda-graph"], "--cuda-graph needs a CUDA"),
    ]
    for args, message in cases:
        done = innx("fit", "invariance", *args, "-o", str(tmp_path / "run"), "--steps", "5")
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
        assert not (tmp_path / "run").exists()


def test_kill_9_then_resume_finishes_the_run(synthetic_store, tmp_path):
    run = tmp_path / "run"
    args = ["fit", "invariance", str(synthetic_store), "--layer", "fc", "-o", str(run)]
    args += ["--steps", "400", "--batch-size", "64", "--checkpoint-every", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "innx", *args], env=ENV, stderr=subprocess.PIPE, text=True
    )
    pointer = run / RESUME_DIR / POINTER
    deadline = time.monotonic() + 200
    while not (pointer.is_file() and json.loads(pointer.read_text())["step"] >= 40):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run / "manifest.json").exists()
    refused = innx(*args)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    resumed = innx(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "manifest.json").read_text())["metrics"]["steps"] == 400
    assert not (run / RESUME_DIR).exists()


@pytest.mark.slow
def test_torchrun_two_processes_train_one_run(synthetic_store, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "innx", "fit", "invariance", str(synthetic_store), "--layer", "conv"]
    cmd += ["-o", str(run), "--steps", "20", "--batch-size", "64"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(run)]  # one process reports; the other stays quiet
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["metrics"]["steps"] == 20
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))  # written once, not once per process
    odd = innx(*cmd[8:13], "-o", str(tmp_path / "odd"), "--batch-size", "63", "--steps", "2")
    assert odd.returncode == 0, odd.stderr  # one process takes any batch size
