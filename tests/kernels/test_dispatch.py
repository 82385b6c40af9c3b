"""The dispatcher: what auto picks, when triton is refused, and what always takes torch."""

from __future__ import annotations

import pytest
import torch

from innx.errors import ConfigError
from innx.kernels.dispatch import backend, set_kernels, use_kernels

CPU = torch.device("cpu")


def test_auto_takes_torch_on_the_cpu_even_where_triton_could_interpret():
    assert backend(CPU) == "torch"
    with use_kernels("torch"):
        assert backend(CPU) == "torch"


def test_triton_on_the_cpu_runs_only_interpreted(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with use_kernels("triton"):
        assert backend(CPU) == "triton"
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(ConfigError, match=r"needs a CUDA device .*use --kernels auto or torch"):
            backend(CPU)


def test_double_precision_takes_torch():
    with use_kernels("triton"):
        assert backend(CPU, dtype=torch.float64) == "torch"
        assert backend(CPU, clamp="atan", dtype=torch.float64) == "torch"


@pytest.mark.parametrize("clamp", ["tanh", "atan"])
def test_both_clamps_have_kernels(clamp, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with use_kernels("triton"):
        assert backend(CPU, clamp=clamp) == "triton"
    with use_kernels("torch"):
        assert backend(CPU, clamp=clamp) == "torch"


def test_unknown_choices_are_refused_and_the_choice_is_restored():
    with pytest.raises(ConfigError, match="--kernels must be one of auto, torch, triton"):
        set_kernels("cuda")
    with use_kernels("torch"):
        pass
    assert backend(CPU) == "torch"
