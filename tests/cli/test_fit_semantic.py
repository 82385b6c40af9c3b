"""``innx fit semantic`` in real processes: the run, the size estimate, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from innx.ops.fit.models import load_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FACTORS = ["--factor", "a", "--factor", "b", "--factor", "c:bins=4"]


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)


def test_fit_semantic_prints_the_run_and_the_probes(factor_store, tmp_path):
    run = tmp_path / "sem"
    args = ["fit", "semantic", str(factor_store), *FACTORS, "-o", str(run)]
    done = innx(*args, "--steps", "200", "--batch-size", "128", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["run"] == str(run)
    assert summary["metrics"]["probe_a"] >= 0.9
    assert "a probe" in done.stderr and "leak" in done.stderr
    assert load_model(run, "semantic").config.block_sizes == {"a": 2, "b": 2, "c": 1, "residual": 3}
    plain = innx(*args, "--steps", "20", "--batch-size", "128", "--overwrite")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == str(run)


def test_estimate_dims_prints_the_sizes_and_writes_nothing(factor_store, tmp_path):
    done = innx("fit", "semantic", str(factor_store), *FACTORS, "--estimate-dims")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2,2,1,3"
    as_json = innx("fit", "semantic", str(factor_store), *FACTORS, "--estimate-dims", "--json")
    assert json.loads(as_json.stdout) == {"a": 2, "b": 2, "c": 1, "residual": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["factors.h5"]


def test_user_errors_are_one_line_and_exit_1(factor_store, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("0,1,a\n5,9999,b\n")
    store = str(factor_store)
    cases = [
        ([store, "--factor", "a", "--factor", "hue"], "its attributes are: a, b, c, const"),
        ([store, "--factor", "const"], "needs at least two values"),
        ([store, "--factor", "a", "--factor", "b", "--dims", "2,2,2"], "must add up to 8"),
        (
            [store, "--factor", "a", "--factor", "b", "--pairs", str(pairs)],
            "row 9999 is out of range",
        ),
        ([str(tmp_path / "none.h5"), "--factor", "a"], "make it with innx extract"),
    ]
    for args, message in cases:
        done = innx("fit", "semantic", *args, "-o", str(tmp_path / "run"), "--steps", "5")
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
        assert not (tmp_path / "run").exists()
    usage = innx("fit", "semantic", store, "--factor", "a")
    assert usage.returncode == 2 and "-o" in usage.stderr


@pytest.mark.slow
def test_torchrun_two_processes_train_one_run(factor_store, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "innx", "fit", "semantic", str(factor_store), *FACTORS]
    cmd += ["-o", str(run), "--steps", "300", "--batch-size", "128"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(run)]  # one process reports; the other stays quiet
    metrics = json.loads((run / "manifest.json").read_text())["metrics"]
    assert metrics["steps"] == 300 and metrics["probe_a"] >= 0.9, metrics
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))  # written once, not once per process
