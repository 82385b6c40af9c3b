"""fit_invariance on real stores: what it learns, what it records, and what it refuses."""

from __future__ import annotations

import json

import h5py
import pytest
import torch

from innx.device import resolve_device
from innx.errors import ConfigError, StoreError
from innx.ops.fit.invariance import InvarianceFit, fit_invariance
from innx.ops.fit.models import load_model
from innx.store import ActivationStore
from innx.train.checkpoints import POINTER
from innx.train.run_dir import RESUME_DIR


def quick(store, layer="fc", **kw):
    args = {"steps": 40, "batch_size": 64, "checkpoint_every": 10, "warmup": 5, **kw}
    return InvarianceFit(store=str(store), layer=layer, **args)


def test_fit_records_the_store_and_inverts_exactly(synthetic_store, tmp_path):
    result = fit_invariance(quick(synthetic_store, steps=150), tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    with ActivationStore(synthetic_store) as store:
        assert manifest["store"]["fingerprint"] == store.fingerprint()
        zbar = torch.from_numpy(store.latents[:256])
        z = torch.from_numpy(store.layer("fc")[:256])
    assert manifest["store"]["layer"] == "fc"
    assert manifest["device"] == str(resolve_device("auto")) and manifest["fit"]["device"] == "auto"
    assert manifest["store"]["train"] + manifest["store"]["validation"] == 2000 - 40
    assert manifest["metrics"]["val_bits_per_dim"] == result.metrics["val_bits_per_dim"]
    assert not (tmp_path / "run" / RESUME_DIR).exists()
    curve = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    val = [r["val_bits_per_dim"] for r in curve if "val_bits_per_dim" in r]
    assert len(val) == 10 and val[-1] < val[0]  # it learns
    t = load_model(tmp_path / "run", "invariance")
    with torch.no_grad():
        back = t.inverse(t(zbar, z)[0], z)
    assert ((back - zbar).norm() / zbar.norm()) < 1e-4


def test_spatial_layers_train_through_the_conv_embedder(synthetic_store, tmp_path):
    result = fit_invariance(quick(synthetic_store, layer="conv", steps=10), tmp_path / "run")
    t = load_model(tmp_path / "run", "invariance")
    assert t.config.cond_shape == (4, 4, 4)
    assert type(t.embedder).__name__ == "SpatialEmbedder"
    assert result.metrics["val_bits_per_dim"] > 0


def test_streamed_and_in_memory_data_train_alike(synthetic_store, tmp_path):
    memory = fit_invariance(quick(synthetic_store, in_memory=True), tmp_path / "a")
    streamed = fit_invariance(quick(synthetic_store, in_memory=False), tmp_path / "b")
    assert memory.metrics["val_nll"] == pytest.approx(streamed.metrics["val_nll"], rel=0.2)


def test_bf16_trains_close_to_fp32(synthetic_store, tmp_path):
    # bf16 matrix products, float32 log-dets: the same run to within bf16 rounding
    full = fit_invariance(quick(synthetic_store), tmp_path / "fp32")
    half = fit_invariance(quick(synthetic_store, precision="bf16"), tmp_path / "bf16")
    manifest = json.loads((tmp_path / "bf16" / "manifest.json").read_text())
    assert manifest["fit"]["precision"] == "bf16"
    assert half.metrics["val_nll"] == pytest.approx(full.metrics["val_nll"], rel=0.01)


def test_resume_equals_an_uninterrupted_run(synthetic_store, tmp_path):
    fit = quick(synthetic_store)
    fit_invariance(fit, tmp_path / "whole")

    def stop_at_25(done, total, metrics):
        if done == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_invariance(fit, tmp_path / "cut", progress=stop_at_25)
    assert json.loads((tmp_path / "cut" / RESUME_DIR / POINTER).read_text())["step"] == 20
    fit_invariance(fit, tmp_path / "cut", resume=True)
    a, b = load_model(tmp_path / "whole"), load_model(tmp_path / "cut")
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_resuming_against_another_store_is_refused_and_loses_nothing(
    synthetic_store, make_store, tmp_path
):
    def stop(done, total, metrics):
        if done == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_invariance(quick(synthetic_store), tmp_path / "run", progress=stop)
    before = sorted(p.name for p in (tmp_path / "run" / RESUME_DIR).iterdir())
    other = make_store(tmp_path / "other.h5", seed=1)
    with pytest.raises(ConfigError, match=r"not the one the run .* was started on"):
        fit_invariance(quick(other), tmp_path / "run", resume=True)
    with pytest.raises(ConfigError, match=r"lr was 0\.002, now 0\.01"):
        fit_invariance(quick(synthetic_store, lr=1e-2), tmp_path / "run", resume=True)
    assert sorted(p.name for p in (tmp_path / "run" / RESUME_DIR).iterdir()) == before
    fit_invariance(quick(synthetic_store), tmp_path / "run", resume=True)  # still resumable


def test_bad_stores_say_what_to_do(make_store, synthetic_store, tmp_path):
    no_latents = make_store(tmp_path / "a.h5", n=100, latents=False)
    with pytest.raises(ConfigError, match=r"no latents .*--autoencoder RUN"):
        fit_invariance(quick(no_latents), tmp_path / "r1")
    with pytest.raises(StoreError, match=r"layer .fc7. is not in .*choose one of: fc, conv"):
        fit_invariance(quick(synthetic_store, layer="fc7"), tmp_path / "r2")
    incomplete = make_store(tmp_path / "b.h5", n=100, complete=False)
    with pytest.raises(StoreError, match=r"incomplete .*innx extract … --resume"):
        fit_invariance(quick(incomplete), tmp_path / "r3")
    with pytest.raises(StoreError, match="does not exist; make it with innx extract"):
        fit_invariance(quick(tmp_path / "missing.h5"), tmp_path / "r4")
    for run in ("r1", "r2", "r3", "r4"):
        assert not (tmp_path / run).exists()
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        quick(synthetic_store, preset="huge")
    with pytest.raises(ConfigError, match="either --steps or --epochs"):
        quick(synthetic_store, epochs=2.0)


def test_a_nan_in_the_store_stops_the_run_with_a_clear_message(make_store, tmp_path):
    path = make_store(tmp_path / "acts.h5", n=300)
    with h5py.File(path, "r+") as file:
        file["latents"][:] = float("nan")
    with pytest.raises(Exception, match="loss became nan at step 0"):
        fit_invariance(quick(path), tmp_path / "run")


def test_stores_made_in_the_same_second_have_different_fingerprints(make_store, tmp_path):
    a = make_store(tmp_path / "a.h5", n=100, seed=0)
    b = make_store(tmp_path / "b.h5", n=100, seed=1)
    with ActivationStore(a) as first, ActivationStore(b) as second:
        first.metadata["created"] = second.metadata["created"]  # as if made in the same second
        assert first.fingerprint() != second.fingerprint()
    with ActivationStore(a) as again, ActivationStore(a) as same:
        assert again.fingerprint() == same.fingerprint()
