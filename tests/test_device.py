"""``innx.device``: ``--device auto`` is CUDA when there is one, else the CPU; a GPU is always an
indexed device (``LOCAL_RANK``'s under ``torchrun``); a device this machine lacks is a one-line
error. The CUDA answers are checked with ``torch.cuda`` stood in for where no GPU is at hand,
and for real where one is."""

from __future__ import annotations

import pytest
import torch

from innx.device import AUTO, DEVICE_FORM, device_line, resolve_device
from innx.errors import ConfigError
from innx.train.distributed import local_device

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="the GPU half of auto: this machine has no CUDA device (torch.cuda.is_available())",
)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> list[torch.device]:
    """``torch.cuda`` as on a machine with two GPUs (nothing runs on them); the devices made
    current by ``torch.cuda.set_device``, in order."""
    current: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return current


def test_auto_is_the_cpu_without_cuda(no_cuda: None) -> None:
    assert resolve_device(AUTO) == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")  # auto is the default


def test_auto_is_what_this_machine_has() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@needs_cuda
def test_auto_is_an_indexed_gpu_where_there_is_one() -> None:
    index = torch.cuda.current_device()
    assert resolve_device("auto") == torch.device("cuda", index)
    assert resolve_device("cuda") == torch.device("cuda", index)
    assert str(resolve_device("auto")) == f"cuda:{index}"  # what a manifest records


def test_auto_and_cuda_are_an_indexed_gpu(two_gpus: list[torch.device]) -> None:
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")  # asked for, even with a GPU


def test_under_torchrun_each_process_takes_its_local_rank_gpu(
    two_gpus: list[torch.device], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert local_device("auto") == torch.device("cuda", 1)
    assert local_device("cuda") == torch.device("cuda", 1)
    assert two_gpus == [torch.device("cuda", 1)] * 2  # made the current device, as before
    assert local_device("cpu") == torch.device("cpu") and len(two_gpus) == 2


def test_a_gpu_past_the_last_one_is_refused(
    two_gpus: list[torch.device], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_device("cuda:2")
    assert str(caught.value) == (
        "--device cuda:2 is not a GPU here: torch sees 2 (cuda:0, cuda:1); choose one of them, "
        "or --device auto"
    )
    monkeypatch.setenv("LOCAL_RANK", "3")  # four processes on two GPUs
    with pytest.raises(ConfigError, match="--device cuda:3 is not a GPU here"):
        resolve_device("auto")


@pytest.mark.parametrize("asked", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_a_one_line_error(no_cuda: None, asked: str | torch.device) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_device(asked)
    message = str(caught.value)
    assert message.startswith(f"--device {asked} needs CUDA, but ") and "\n" not in message
    assert message.endswith("; use --device auto or cpu")


def test_a_cpu_only_torch_is_named(no_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ConfigError, match=r"this torch \(.*\) is a CPU-only build"):
        resolve_device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "", "auto:0", "AUTO", "cuda:x"])
def test_a_name_that_is_no_device_says_the_accepted_ones(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_device(bad)
    assert str(caught.value) == f"--device {bad!r} is not a torch device; use {DEVICE_FORM}"


def test_the_line_a_command_prints() -> None:
    assert device_line(torch.device("cpu")) == "innx: using device cpu"
    assert device_line(torch.device("cuda", 0)) == "innx: using device cuda:0"
