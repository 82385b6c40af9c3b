"""fit_semantic on a real store whose latents mix known factors: what it learns and refuses."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from innx.data.pairs import FactorSpec, PairSampler
from innx.device import resolve_device
from innx.errors import ConfigError, DataError, StoreError
from innx.flows import SemanticFlow, semantic_pair_nll
from innx.ops.fit.models import load_model
from innx.ops.fit.semantic.fit import (
    SemanticFit,
    SemanticTask,
    block_correlation,
    estimate_dims,
    fit_semantic,
)
from innx.ops.fit.semantic.inputs import InputTable, PairBatches, parse_dims
from innx.store import ActivationStore
from innx.train.checkpoints import POINTER
from innx.train.run_dir import RESUME_DIR


def quick(store, factors=("a", "b", "c:bins=4"), **kw):
    args = {"steps": 300, "batch_size": 128, "checkpoint_every": 50, "warmup": 20, **kw}
    return SemanticFit(store=str(store), factors=tuple(factors), **args)


def test_fit_separates_known_factors_and_loads_back(factor_store, tmp_path):
    result = fit_semantic(quick(factor_store), tmp_path / "run")
    m = result.metrics
    # latents hold a in 2 dims, b in 2, c in 1 (then rotated): the estimate finds that
    assert result.sizes == {"a": 2, "b": 2, "c": 1, "residual": 3}
    for name in ("a", "b"):
        assert m[f"probe_{name}"] >= 0.95, m
        assert m[f"leak_{name}"] <= m[f"chance_{name}"] + 0.1, m
        assert m[f"val_corr_{name}"] >= 0.85, m
        assert abs(m[f"val_corr_{name}_unshared"]) < 0.1, m
    assert m["probe_c"] >= 0.9 and m["leak_c"] < 0.1, m  # R² of a continuous factor
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["metrics"]["probe_a"] == m["probe_a"]
    assert manifest["factors"] == ["a", "b", "c:bins=4"]
    assert manifest["sizes"] == result.sizes
    assert manifest["device"] == str(resolve_device("auto"))  # what auto is here
    with ActivationStore(factor_store) as store:
        assert manifest["store"]["fingerprint"] == store.fingerprint()
        zbar = torch.from_numpy(store.latents[:256])
    e = load_model(tmp_path / "run", "semantic")
    assert isinstance(e, SemanticFlow) and e.factor_names == ["a", "b", "c"]
    with torch.no_grad():
        zhat, _ = e(zbar)
        blocks = e.split(zhat)
        assert [b.shape[1] for b in blocks.values()] == [2, 2, 1, 3]
        assert torch.equal(e.merge(blocks), zhat)
        assert (e.inverse(zhat) - zbar).norm() / zbar.norm() < 1e-4


def test_a_layer_can_be_the_input(factor_store, tmp_path):
    fit = quick(factor_store, factors=("a", "b"), on="layer:fc", dims=(2, 2))
    result = fit_semantic(fit, tmp_path / "run")
    assert result.sizes == {"a": 2, "b": 2, "residual": 4}
    assert result.metrics["probe_a"] >= 0.9
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["store"]["on"] == "layer:fc"


def test_the_paper_preset_builds_the_papers_e(factor_store, tmp_path):
    fit_semantic(quick(factor_store, preset="paper", steps=5, dims=(2, 2, 1)), tmp_path / "run")
    config = load_model(tmp_path / "run", "semantic").config
    assert (config.n_blocks, config.width, config.depth) == (12, 512, 2)


def test_explicit_pairs_from_a_csv_train_e(factor_store, tmp_path):
    with ActivationStore(factor_store) as store:
        values = store.attributes
    rows = np.arange(len(values))
    sampler = PairSampler(
        rows, values[:, :2], ["categorical"] * 2, [FactorSpec("a"), FactorSpec("b")]
    )
    pairs = sampler.sample(0, 6000)
    path = tmp_path / "pairs.csv"
    names = {1: "a", 2: "b"}
    lines = [f"{a},{b},{names[f]}" for a, b, f in zip(pairs.a, pairs.b, pairs.factor, strict=True)]
    path.write_text("a,b,factor\n" + "\n".join(lines) + "\n")
    result = fit_semantic(
        quick(factor_store, factors=("a", "b"), pairs=str(path)), tmp_path / "run"
    )
    assert result.metrics["probe_a"] >= 0.95 and result.metrics["probe_b"] >= 0.95


def test_negative_pairs_train_too(factor_store, tmp_path):
    fit = quick(factor_store, factors=("a", "b"), dims=(2, 2), negative=0.3, steps=150)
    result = fit_semantic(fit, tmp_path / "run")
    assert result.metrics["probe_a"] >= 0.9 and np.isfinite(result.metrics["val_nll"])


def test_estimated_dims_add_up_to_the_input_size(factor_store):
    sizes = estimate_dims(quick(factor_store, factors=("a", "b")))
    assert list(sizes) == ["a", "b", "residual"] and sum(sizes.values()) == 8


def test_dims_give_every_factor_a_size_and_the_residual_the_rest():
    assert parse_dims((2, 3), ["a", "b"], 8) == {"a": 2, "b": 3, "residual": 3}
    assert parse_dims((2, 3, 3), ["a", "b"], 8) == {"a": 2, "b": 3, "residual": 3}
    with pytest.raises(ConfigError, match="add up to 10, more than the 8 dimensions"):
        parse_dims((5, 5), ["a", "b"], 8)
    with pytest.raises(ConfigError, match="add up to 7, but factors and residual must add up to 8"):
        parse_dims((2, 2, 3), ["a", "b"], 8)
    with pytest.raises(ConfigError, match="3 sizes for 1 factors"):
        parse_dims((2, 2, 3), ["a"], 8)


def test_resume_equals_an_uninterrupted_run(factor_store, tmp_path):
    fit = quick(factor_store, steps=80, checkpoint_every=20)
    fit_semantic(fit, tmp_path / "whole")

    def stop_at_45(done, total, metrics):
        if done == 45:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_semantic(fit, tmp_path / "cut", progress=stop_at_45)
    assert json.loads((tmp_path / "cut" / RESUME_DIR / POINTER).read_text())["step"] == 40
    with pytest.raises(ConfigError, match=r"rho was 0\.975, now 0\.9"):
        fit_semantic(quick(factor_store, steps=80, rho=0.9), tmp_path / "cut", resume=True)
    fit_semantic(fit, tmp_path / "cut", resume=True)
    a, b = load_model(tmp_path / "whole"), load_model(tmp_path / "cut")
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        (
            {"factors": ("a", "size")},
            ConfigError,
            r"no attribute 'size'; its attributes are: a, b, c, const",
        ),
        ({"factors": ("a", "const")}, ConfigError, r"factor 'const' takes 1 value\(s\)"),
        ({"dims": (6, 6, 6)}, ConfigError, r"add up to 18, more than the 8 dimensions"),
        ({"on": "layer:fc7"}, StoreError, r"layer .fc7. is not in .*choose one of: fc"),
        ({"on": "logits"}, ConfigError, r"--on must be 'latents' or 'layer:NAME'"),
        ({"factors": ("a", "a")}, ConfigError, "factor names must be distinct"),
        ({"factors": ("a:bins=3",)}, ConfigError, r"'a' cannot be continuous: its categories"),
        ({"factors": ("a:categorical,bins=3",)}, ConfigError, "apply only to a continuous"),
        ({"factors": ("a:ordinal",)}, ConfigError, "unknown kind 'ordinal' for 'a'; write a:cat"),
        ({"factors": ("c:categorical",)}, ConfigError, r"'c' cannot be categorical: .*whole"),
        ({"device": "gpu"}, ConfigError, "--device 'gpu' is not a torch device"),
        ({"kernels": "cuda"}, ConfigError, "--kernels must be one of auto, torch, triton"),
    ],
)
def test_bad_input_says_what_to_do(factor_store, tmp_path, kw, error, message):
    with pytest.raises(error, match=message):
        fit_semantic(quick(factor_store, **kw), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_pairs_file_with_rows_out_of_range_is_refused(factor_store, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("0,1,a\n2,3000,b\n")
    with pytest.raises(DataError, match=r"pairs.csv:2: row 3000 is out of range; .*0…2999"):
        fit_semantic(quick(factor_store, factors=("a", "b"), pairs=str(path)), tmp_path / "run")


def test_a_store_without_latents_points_to_extract_or_a_layer(make_store, tmp_path):
    store = make_store(tmp_path / "bare.h5", latents=False)
    with pytest.raises(ConfigError, match=r"no latents .*--autoencoder RUN, or fit e to a layer"):
        fit_semantic(quick(store, factors=("a",)), tmp_path / "run")


def test_the_task_loss_is_the_pair_likelihood(factor_store):
    sampler = PairSampler(
        np.arange(3000), ActivationStore(factor_store).attributes[:, :2], ["categorical"] * 2,
        [FactorSpec("a"), FactorSpec("b")],
    )  # fmt: skip
    data = PairBatches(InputTable(factor_store, "latents"), sampler, 64, seed=0)
    fit = SemanticFit(store=str(factor_store), factors=("a", "b"), preset="small")
    from innx.flows import SemanticConfig

    e = SemanticFlow(SemanticConfig.preset(fit.preset, 8, {"a": 2, "b": 2}))
    task = SemanticTask(e, data, data.global_batch(1), 0.975, torch.device("cpu"))
    za, zb, factor = data.global_batch(0)
    loss, _ = task.loss(e, (za, zb, factor))
    ha, la = e(za)
    hb, lb = e(zb)
    expected = semantic_pair_nll(ha, la, hb, lb, factor, [2, 2, 4], 0.975)
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_block_correlation_is_the_mean_pearson_correlation():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=generator)
    noise = torch.randn(4000, 3, generator=generator)
    assert block_correlation(a, 2 * a + 1) == pytest.approx(1.0)
    assert block_correlation(a, -a) == pytest.approx(-1.0)
    assert block_correlation(a, 0.6 * a + 0.8 * noise) == pytest.approx(0.6, abs=0.03)
    assert abs(block_correlation(a, noise)) < 0.05


def test_a_nan_in_the_store_stops_the_run_with_a_clear_message(factor_store, tmp_path):
    with h5py.File(factor_store, "r+") as file:
        file["latents"][:] = float("nan")
    with pytest.raises(ConfigError, match="latents of some rows are not finite"):
        fit_semantic(quick(factor_store), tmp_path / "run")
    with pytest.raises(Exception, match="loss became nan at step 0"):
        fit_semantic(quick(factor_store, factors=("a",), dims=(2,)), tmp_path / "run")


def test_no_swaps_skips_the_judge(tiny_pipeline, tmp_path):
    """``swaps=False`` (``--no-swaps``) measures the probes and no swap rates; the tiny pipeline's
    run, fitted with swaps on the same store, has them."""
    from innx.store.runs import read_run

    fit = SemanticFit(
        store=str(tiny_pipeline.store), factors=("shape",), dims=(4,), steps=5, batch_size=64,
        swaps=False,
    )  # fmt: skip
    metrics = fit_semantic(fit, tmp_path / "sem").metrics
    assert "probe_shape" in metrics
    assert not [k for k in metrics if k.startswith(("swap_", "judge_"))]
    assert "swap_shape" in read_run(tiny_pipeline.semantic).manifest["metrics"]


def write_kinds_store(path, n=1200):
    """A store whose latents hold ``digit`` (whole numbers 0..4, recorded continuous, as an
    integer column with many values would be) in 2 dims and ``level`` (categories "0", "5",
    "10", recorded categorical) in 1, 3 dims of noise."""
    from innx.data.base import Attribute
    from innx.store import StoreLayout, StoreWriter

    rng = np.random.default_rng(3)
    digit, level = rng.integers(0, 5, n), rng.integers(0, 3, n)
    angle = 2 * np.pi * digit / 5
    code = np.stack([np.cos(angle), np.sin(angle), level - 1.0], axis=1) * 2
    noise, jitter = rng.normal(size=(n, 3)), 0.1 * rng.normal(size=(n, 6))
    latents = np.concatenate([code, noise], axis=1) + jitter
    layout = StoreLayout(
        n=n,
        layers=(),
        attributes=(
            Attribute("digit", "continuous"),
            Attribute("level", "categorical", ("0", "5", "10")),
        ),
        has_labels=False,
        latent_dim=6,
    )
    with StoreWriter.create(path, layout) as writer:
        writer.write(
            np.arange(n),
            index=np.arange(n),
            labels=None,
            layers={},
            attributes=np.stack([digit, level], axis=1).astype(np.float32),
            latents=latents.astype(np.float32),
        )
        writer.finish()
    return path


@pytest.mark.parametrize(
    ("factors", "kinds"),
    [
        (("digit", "level"), {"digit": "continuous", "level": "categorical"}),
        (
            ("digit:categorical", "level:continuous"),
            {"digit": "categorical", "level": "continuous"},
        ),
    ],
)
def test_a_stated_kind_changes_pairs_probes_and_the_record(tmp_path, factors, kinds):
    """``digit:categorical`` pairs rows of the same digit and probes it by accuracy (beside its
    chance level); ``level:continuous`` bins the numbers its categories name and probes them by
    R²; the manifest records how each factor was treated."""
    from innx.ops.fit.semantic.inputs import read_inputs

    store = write_kinds_store(tmp_path / "kinds.h5")
    fit = quick(store, factors=factors, steps=20, dims=(2, 1), swaps=False)
    inputs = read_inputs(fit)
    try:
        assert {n: kind for n, (kind, _) in inputs.attributes.items()} == kinds
        values = {n: column for n, (_, column) in inputs.attributes.items()}
        # level is read as its category indices, or as the numbers its categories name
        assert set(values["level"]) == (
            {0, 1, 2} if kinds["level"] == "categorical" else {0, 5, 10}
        )
        if kinds["digit"] == "categorical":  # pairs share the digit itself, not a quantile bin
            pairs = inputs.train.sample(0, 2000)
            a, b = pairs.a[pairs.factor == 1], pairs.b[pairs.factor == 1]
            assert (values["digit"][a] == values["digit"][b]).all()
            assert set(values["digit"]) == {0, 1, 2, 3, 4}
    finally:
        inputs.close()
    metrics = fit_semantic(fit, tmp_path / "run").metrics
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["kinds"] == kinds and manifest["factors"] == list(factors)
    for name, kind in kinds.items():
        assert (f"chance_{name}" in metrics) == (kind == "categorical"), metrics
