"""Saving t and e to a run directory and loading them back gives the same functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from flows.blocks import randomize

from innx.errors import RunError
from innx.flows import InvarianceConfig, InvarianceFlow, SemanticConfig, SemanticFlow
from innx.ops.fit.models import load_model, save_model


def test_invariance_flow_round_trip(tmp_path) -> None:
    config = InvarianceConfig.preset("small", 6, (4, 8, 8), n_blocks=2, width=16, seed=3)
    t = randomize(InvarianceFlow(config), seed=1).eval()
    save_model(t, tmp_path / "inv", seed=3)
    loaded = load_model(tmp_path / "inv", expected_kind="invariance")
    assert isinstance(loaded, InvarianceFlow) and loaded.config == config
    zbar, z = torch.randn(5, 6), torch.randn(5, 4, 8, 8)
    v, logdet = t(zbar, z)
    v2, logdet2 = loaded(zbar, z)
    assert torch.equal(v, v2) and torch.equal(logdet, logdet2)
    assert torch.equal(t.inverse(v, z), loaded.inverse(v, z))


def test_semantic_flow_round_trip(tmp_path) -> None:
    config = SemanticConfig.preset("small", 8, {"shape": 3, "colour": 2}, n_blocks=2)
    e = randomize(SemanticFlow(config), seed=2).eval()
    save_model(e, tmp_path / "sem")
    loaded = load_model(tmp_path / "sem")
    assert isinstance(loaded, SemanticFlow) and loaded.factor_names == ["shape", "colour"]
    zbar = torch.randn(4, 8)
    assert torch.equal(e(zbar)[0], loaded(zbar)[0])


def test_the_kernel_choice_travels_with_the_run_and_can_be_overridden(tmp_path) -> None:
    config = SemanticConfig.preset("small", 8, {"shape": 3}, n_blocks=2, kernels="torch")
    save_model(SemanticFlow(config), tmp_path / "sem")
    recorded = load_model(tmp_path / "sem")
    assert recorded.config.kernels == "torch"
    assert {m.kernels for m in recorded.modules() if hasattr(m, "kernels")} == {"torch"}
    chosen = load_model(tmp_path / "sem", kernels="auto")
    assert chosen.config.kernels == "auto"
    assert {m.kernels for m in chosen.modules() if hasattr(m, "kernels")} == {"auto"}


def test_trained_actnorm_is_not_reinitialised_after_loading(tmp_path) -> None:
    t = InvarianceFlow(InvarianceConfig.preset("small", 4, (3,), n_blocks=1, width=8)).train()
    t(torch.randn(64, 4) * 5 + 2, torch.randn(64, 3))  # data-dependent init happens here
    save_model(t, tmp_path / "run")
    loaded = load_model(tmp_path / "run").train()
    zbar, z = torch.randn(8, 4), torch.randn(8, 3)
    assert torch.equal(loaded(zbar, z)[0], t.eval()(zbar, z)[0])


def test_wrong_kind_and_mismatched_weights_are_refused(tmp_path) -> None:
    e = SemanticFlow(SemanticConfig.preset("small", 8, {"a": 3}, n_blocks=1))
    save_model(e, tmp_path / "sem")
    with pytest.raises(RunError, match=r"holds a semantic model, but a model of kind .invariance."):
        load_model(tmp_path / "sem", expected_kind="invariance")
    config_path = tmp_path / "sem" / "config.json"
    config_path.write_text(config_path.read_text().replace('"n_blocks": 1', '"n_blocks": 2'))
    with pytest.raises(RunError, match=r"config\.json does not match the sha256 in its manifest"):
        load_model(tmp_path / "sem")
    forget_file_hashes(tmp_path / "sem")  # a run written before config.json was hashed
    with pytest.raises(RunError, match=r"do not fit its config\.json"):
        load_model(tmp_path / "sem")


def forget_file_hashes(run: Path) -> None:
    """Make ``run`` look written before manifests hashed ``config.json`` (``files`` absent)."""
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["files"]
    (run / "manifest.json").write_text(json.dumps(manifest))
