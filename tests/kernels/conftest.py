"""The kernels' tests run Triton in its CPU interpreter by default: set before the kernels are
first imported (Triton chooses compile or interpret when a kernel is decorated). On a GPU,
``TRITON_INTERPRET=0 python -m pytest tests/kernels`` runs them compiled on CUDA instead."""

import os

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def device() -> torch.device:
    """Where the kernels run: the CPU (interpreted), or CUDA when the interpreter is off."""
    if os.environ["TRITON_INTERPRET"] not in ("", "0"):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("TRITON_INTERPRET=0 needs a CUDA device to run the kernels compiled")
    return torch.device("cuda")
