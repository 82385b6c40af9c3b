"""The list of every invertible block under test, and helpers to give them random weights.

Adding a block to innx means adding one line to ``BLOCKS``; every property test runs on it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from innx.flows import (
    ActNorm,
    AffineCoupling,
    Inverse,
    InvertibleModule,
    InvLeakyReLU,
    LULinear,
    Sequential,
    Shuffle,
    flow_block,
    flow_stack,
)

Builder = Callable[[int, int, int], InvertibleModule]  # (dim, cond_dim, seed) -> block

BLOCKS: dict[str, Builder] = {
    "actnorm": lambda dim, cond, seed: ActNorm(dim),
    "leaky_relu": lambda dim, cond, seed: InvLeakyReLU(dim, slope=0.7),
    "shuffle": lambda dim, cond, seed: Shuffle(dim, seed=seed),
    "lu_linear": lambda dim, cond, seed: LULinear(dim, seed=seed),
    "coupling_tanh": lambda dim, cond, seed: AffineCoupling(dim, cond, width=16, depth=2),
    "coupling_atan": lambda dim, cond, seed: AffineCoupling(
        dim, cond, width=16, depth=1, clamp="atan", scale_bound=2.0
    ),
    "coupling_inverse": lambda dim, cond, seed: Inverse(
        AffineCoupling(dim, cond, width=16, depth=2)
    ),
    "flow_block": lambda dim, cond, seed: flow_block(dim, cond, width=16, depth=2, seed=seed),
    "flow_stack": lambda dim, cond, seed: flow_stack(dim, 3, cond, width=12, depth=2, seed=seed),
    "mixed": lambda dim, cond, seed: Sequential(
        [LULinear(dim, seed=seed), AffineCoupling(dim, cond, width=8, depth=3), InvLeakyReLU(dim)]
    ),
}

#: Blocks whose output must change with the condition when they have one.
CONDITIONAL = {
    "coupling_tanh",
    "coupling_atan",
    "coupling_inverse",
    "flow_block",
    "flow_stack",
    "mixed",
}


@torch.no_grad()
def randomize(module: nn.Module, seed: int, scale: float = 0.4) -> nn.Module:
    """Random weights everywhere (identity-initialised blocks would pass every test trivially)."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in module.parameters():
        fan_in = parameter.shape[-1] if parameter.dim() > 1 else 1
        noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
        parameter.copy_(noise * scale / fan_in**0.5 if parameter.dim() > 1 else noise * scale)
    for sub in module.modules():
        if isinstance(sub, ActNorm):
            sub.initialized.fill_(True)
    return module


def build(name: str, dim: int, cond_dim: int, seed: int = 0) -> InvertibleModule:
    """A block from ``BLOCKS`` with random weights, in float64 and eval mode."""
    block = BLOCKS[name](dim, cond_dim, seed)
    return randomize(block, seed).double().eval()
