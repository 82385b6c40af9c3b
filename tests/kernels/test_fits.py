"""The fits run their flows through the dispatcher: --kernels triton trains like torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from innx.ops.fit.invariance import InvarianceFit, fit_invariance
from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic


@pytest.mark.slow  # about a minute in the interpreter
def test_fit_invariance_trains_alike_with_fused_kernels(synthetic_store, tmp_path):
    args = {"steps": 12, "batch_size": 64, "warmup": 2}
    plain = fit_invariance(
        InvarianceFit(str(synthetic_store), "fc", kernels="torch", **args), tmp_path / "a"
    )
    fused = fit_invariance(
        InvarianceFit(str(synthetic_store), "fc", kernels="triton", **args), tmp_path / "b"
    )
    assert fused.metrics["val_nll"] == pytest.approx(plain.metrics["val_nll"], rel=1e-3)


@pytest.mark.slow
def test_fit_semantic_trains_alike_with_fused_kernels(tmp_path):
    from conftest import write_factor_store

    store = write_factor_store(tmp_path / "small.h5", n=400)  # few held-out pairs: interpreted
    args = {"steps": 12, "batch_size": 64, "warmup": 2, "dims": (2, 2), "swaps": False}
    plain = fit_semantic(
        SemanticFit(str(store), ("a", "b"), kernels="torch", **args), tmp_path / "a"
    )
    fused = fit_semantic(
        SemanticFit(str(store), ("a", "b"), kernels="triton", **args), tmp_path / "b"
    )
    assert fused.metrics["val_nll"] == pytest.approx(plain.metrics["val_nll"], rel=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where there is no GPU")
def test_triton_without_a_gpu_is_a_one_line_error(synthetic_store, tmp_path):
    env = {**os.environ, "TRITON_INTERPRET": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "innx", "fit", "invariance", str(synthetic_store), "--layer", "fc"]
    cmd += ["--kernels", "triton", "--steps", "2", "-o", str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--kernels triton needs a CUDA device" in lines[0], done.stderr
    assert not (tmp_path / "run").exists()
