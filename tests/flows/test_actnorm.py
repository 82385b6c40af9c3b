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


def _flag_reads(norm: ActNorm, x: torch.Tensor) -> int:
    """How many times a forward pass reads a tensor's value on the host (a sync on a GPU)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        norm(x)
    return sum(e.count for e in prof.key_averages() if e.key == "aten::_local_scalar_dense")


def test_reads_its_flag_once_and_again_after_a_load() -> None:
    norm = ActNorm(4).train()
    assert _flag_reads(norm, data(0)) == 1  # the first batch: is it initialised yet?
    assert _flag_reads(norm, data(1)) == 0  # every later step runs without a host sync
    fresh = ActNorm(4).state_dict()  # its flag is clear: loading it must initialise again
    norm.load_state_dict(fresh)
    norm(data(2) * 10)
    assert bool(norm.initialized)
    torch.testing.assert_close(norm(data(2) * 10)[0].mean(0), torch.zeros(4), atol=1e-4, rtol=0)
