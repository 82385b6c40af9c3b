"""The dispatcher: what auto picks, when triton is refused, and what always takes torch; the
choice belongs to each model (its config records it), not to the process."""

from __future__ import annotations

import pytest
import torch

from innx.errors import ConfigError
from innx.flows import InvarianceConfig, InvarianceFlow, SemanticConfig, SemanticFlow
from innx.kernels.dispatch import backend, check_choice, check_kernels

CPU = torch.device("cpu")


def test_auto_takes_torch_on_the_cpu_even_where_triton_could_interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert backend(CPU) == "torch"
    assert backend(CPU, kernels="torch") == "torch"


def test_triton_on_the_cpu_runs_only_interpreted(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert backend(CPU, kernels="triton") == "triton"
    check_choice("triton", CPU)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ConfigError, match=r"needs a CUDA device .*use --kernels auto or torch"):
        backend(CPU, kernels="triton")
    with pytest.raises(ConfigError, match=r"needs a CUDA device"):
        check_choice("triton", CPU)


def test_double_precision_takes_torch():
    assert backend(CPU, dtype=torch.float64, kernels="triton") == "torch"
    assert backend(CPU, clamp="atan", dtype=torch.float64, kernels="triton") == "torch"


@pytest.mark.parametrize("clamp", ["tanh", "atan"])
def test_both_clamps_have_kernels(clamp, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert backend(CPU, clamp=clamp, kernels="triton") == "triton"
    assert backend(CPU, clamp=clamp, kernels="torch") == "torch"


def test_unknown_choices_are_refused():
    with pytest.raises(ConfigError, match="--kernels must be one of auto, torch, triton"):
        check_kernels("cuda")
    with pytest.raises(ConfigError, match="--kernels must be one of"):
        InvarianceFlow(InvarianceConfig.preset("small", 4, (3,), kernels="cuda"))


def test_each_model_holds_its_own_choice_and_its_config_records_it():
    t = InvarianceFlow(InvarianceConfig.preset("small", 4, (3,), n_blocks=2, kernels="triton"))
    e = SemanticFlow(SemanticConfig.preset("small", 4, {"a": 2}, n_blocks=2))
    blocks = [m for m in t.modules() if hasattr(m, "kernels")]
    assert blocks and {m.kernels for m in blocks} == {"triton"}
    assert {m.kernels for m in e.modules() if hasattr(m, "kernels")} == {"auto"}  # untouched
    assert InvarianceConfig.from_dict(t.config.to_dict()).kernels == "triton"
    e.with_kernels("torch")
    assert e.config.kernels == "torch" and {
        m.kernels for m in e.flow.modules() if hasattr(m, "kernels")
    } == {"torch"}
    assert {m.kernels for m in blocks} == {"triton"}  # another model's choice does not move
    legacy = {k: v for k, v in t.config.to_dict().items() if k != "kernels"}
    assert InvarianceConfig.from_dict(legacy).kernels == "auto"  # configs saved before the choice
