"""The paper's flow block and the stack of them that both t and e are made of."""

from __future__ import annotations

from innx.errors import ConfigError
from innx.flows.activation import InvLeakyReLU
from innx.flows.actnorm import ActNorm
from innx.flows.base import InvertibleModule
from innx.flows.coupling import AffineCoupling, Clamp
from innx.flows.sequential import Sequential
from innx.flows.shuffle import Shuffle


def flow_block(
    dim: int,
    cond_dim: int = 0,
    width: int = 1024,
    depth: int = 2,
    activation: bool = True,
    clamp: Clamp = "tanh",
    seed: int = 0,
) -> Sequential:
    """ActNorm → (invertible leaky ReLU) → double affine coupling → fixed random shuffle."""
    parts: list[InvertibleModule] = [ActNorm(dim)]
    if activation:
        parts.append(InvLeakyReLU(dim))
    parts.append(AffineCoupling(dim, cond_dim, width=width, depth=depth, clamp=clamp))
    parts.append(Shuffle(dim, seed=seed))
    return Sequential(parts)


def flow_stack(
    dim: int,
    n_blocks: int,
    cond_dim: int = 0,
    width: int = 1024,
    depth: int = 2,
    activation: bool = True,
    clamp: Clamp = "tanh",
    seed: int = 0,
) -> Sequential:
    """``n_blocks`` flow blocks; block ``i`` shuffles with seed ``seed + i``."""
    if n_blocks < 1:
        raise ConfigError(f"a flow needs at least one block, got n_blocks={n_blocks}")
    return Sequential(
        flow_block(dim, cond_dim, width, depth, activation, clamp, seed=seed + i)
        for i in range(n_blocks)
    )
