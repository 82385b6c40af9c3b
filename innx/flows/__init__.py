"""Invertible building blocks and the two models of the method, in pure torch (no I/O).

Every block follows one contract (see :mod:`innx.flows.base`):
``y, logdet = block(x, c)`` and ``x, logdet_inv = block.inverse(y, c)`` with
``logdet_inv == -logdet``.
"""

from innx.flows.activation import InvLeakyReLU
from innx.flows.actnorm import ActNorm
from innx.flows.base import InvertibleModule, use_kernels
from innx.flows.coupling import AffineCoupling
from innx.flows.embedders import SpatialEmbedder, VectorEmbedder, make_embedder
from innx.flows.invariance import INVARIANCE_PRESETS, InvarianceConfig, InvarianceFlow
from innx.flows.linear import LULinear
from innx.flows.losses import (
    bits_per_dim,
    estimate_factor_sizes,
    invariance_nll,
    semantic_pair_nll,
    standard_normal_nll,
)
from innx.flows.mlp import MLP
from innx.flows.semantic import RESIDUAL, SEMANTIC_PRESETS, SemanticConfig, SemanticFlow
from innx.flows.sequential import Inverse, Sequential
from innx.flows.shuffle import Shuffle
from innx.flows.stack import flow_block, flow_stack

#: The models a run directory can hold, by their ``kind``.
MODELS = {InvarianceFlow.kind: InvarianceFlow, SemanticFlow.kind: SemanticFlow}
CONFIGS: dict[str, type[InvarianceConfig] | type[SemanticConfig]] = {
    InvarianceFlow.kind: InvarianceConfig,
    SemanticFlow.kind: SemanticConfig,
}

__all__ = [
    "CONFIGS",
    "INVARIANCE_PRESETS",
    "MLP",
    "MODELS",
    "RESIDUAL",
    "SEMANTIC_PRESETS",
    "ActNorm",
    "AffineCoupling",
    "InvLeakyReLU",
    "InvarianceConfig",
    "InvarianceFlow",
    "Inverse",
    "InvertibleModule",
    "LULinear",
    "SemanticConfig",
    "SemanticFlow",
    "Sequential",
    "Shuffle",
    "SpatialEmbedder",
    "VectorEmbedder",
    "bits_per_dim",
    "estimate_factor_sizes",
    "flow_block",
    "flow_stack",
    "invariance_nll",
    "make_embedder",
    "semantic_pair_nll",
    "standard_normal_nll",
    "use_kernels",
]
