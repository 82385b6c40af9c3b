"""ActNorm's data-dependent initialisation, and that a loaded model keeps it."""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from innx.flows import ActNorm


def data(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(512, 4, generator=generator) * torch.tensor([0.5, 2.0, 3.0, 7.0]) + 5.0


def test_first_training_batch_comes_out_standardised() -> None:
    norm = ActNorm(4).train()
    y, logdet = norm(data())
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(logdet, -torch.log(data().std(0, unbiased=False)).sum().expand(512))


def test_initialises_only_once() -> None:
    norm = ActNorm(4).train()
    norm(data(0))
    loc = norm.loc.detach().clone()
    norm(data(1) * 10)
    assert torch.equal(norm.loc.detach(), loc)


def test_eval_mode_does_not_initialise() -> None:
    norm = ActNorm(4).eval()
    y, _ = norm(data())
    assert not bool(norm.initialized)
    torch.testing.assert_close(y, data())


def test_explicit_initialisation() -> None:
    norm = ActNorm(4)
    norm.initialize(data())
    assert bool(norm.initialized)
    y, _ = norm.eval()(data())
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-5, rtol=0)


def test_loaded_model_does_not_reinitialise(tmp_path) -> None:
    norm = ActNorm(4).train()
    norm(data(0))
    save_file(dict(norm.state_dict()), str(tmp_path / "norm.safetensors"))
    loaded = ActNorm(4)
    loaded.load_state_dict(load_file(str(tmp_path / "norm.safetensors")))
    loaded.train()(data(1) * 10)  # a training batch after loading must not re-initialise
    assert torch.equal(loaded.loc.detach(), norm.loc.detach())
    assert torch.equal(loaded.log_scale.detach(), norm.log_scale.detach())
