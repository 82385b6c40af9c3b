"""The method's first half through the command line on shapes: autoencoder → extract → t."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from innx.ops.autoencoders import load_autoencoder
from innx.ops.models import load_model
from innx.store import ActivationStore

ENV = {**os.environ, "OMP_NUM_THREADS": "2"}
DATA = "shapes:n=20000,size=32,seed=3"  # 2000 held-out rows: the mean of v is known to ±0.02


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=ENV)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_autoencoder_extract_invariance_on_shapes(tmp_path):
    ae, store, inv = tmp_path / "ae", tmp_path / "acts.h5", tmp_path / "inv"
    fitted = innx("fit", "autoencoder", DATA, "-o", str(ae), "--json")  # the demo defaults
    assert json.loads(fitted.stdout)["metrics"]["val_psnr"] >= 24
    innx("extract", DATA, "--backbone", "smallcnn", "--layer", "pool", "--seed", "1",
         "--autoencoder", str(ae), "--store-images", "-o", str(store))  # fmt: skip
    done = innx("fit", "invariance", str(store), "--layer", "pool", "-o", str(inv), "--json")
    metrics = json.loads(done.stdout)["metrics"]
    # held-out v is standard normal: per-dimension mean within ±0.1, std within [0.85, 1.15]
    assert metrics["val_v_mean_abs_max"] <= 0.1, metrics
    assert metrics["val_v_std_min"] >= 0.85 and metrics["val_v_std_max"] <= 1.15, metrics

    t = load_model(inv, "invariance")
    with ActivationStore(store) as acts:
        zbar = torch.from_numpy(acts.latents[:512])
        z = torch.from_numpy(acts.layer("pool")[:512])
        images = torch.from_numpy(acts.images[:8]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        back = t.inverse(t(zbar, z)[0], z)
        assert (back - zbar).norm() / zbar.norm() < 1e-4
        autoencoder = load_autoencoder(ae)
        assert torch.allclose(autoencoder.encode(images), zbar[:8], atol=1e-5)
