"""Condition embedders: turn a layer's representation ``z`` into the vector ``c`` every block sees.

A vector ``z`` (a fully connected layer) goes through an MLP whose widths step evenly from the
condition size to the embedding size; a feature map ``z`` (C×H×W) goes through strided
convolutions down to a vector. :func:`make_embedder` picks one from the condition's shape.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from innx.errors import ConfigError, ShapeError
from innx.flows.actnorm import ActNorm


class _ChannelActNorm(nn.Module):
    """ActNorm per channel of a (B, C, H, W) map, statistics over batch and space."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = ActNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(b * h * w, c)
        return self.norm(flat)[0].reshape(b, h, w, c).permute(0, 3, 1, 2)


class VectorEmbedder(nn.Module):
    """MLP from ``in_dim`` to ``out_dim`` through ``depth - 2`` evenly stepped hidden widths.

    Linear → ActNorm → LeakyReLU(0.2) between layers, a plain linear map at the end.

    >>> emb = VectorEmbedder(4096, 128, depth=4)
    >>> [layer.out_features for layer in emb.linears]
    [2773, 1451, 128]
    """

    def __init__(self, in_dim: int, out_dim: int, depth: int = 4) -> None:
        super().__init__()
        if depth < 2:
            raise ConfigError(f"an embedder needs depth >= 2 (input and output), got {depth}")
        widths = [round(in_dim + (out_dim - in_dim) * i / (depth - 1)) for i in range(depth)]
        self.in_dim, self.out_dim = in_dim, out_dim
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.norms = nn.ModuleList(ActNorm(w) for w in widths[1:-1])

    def forward(self, z: Tensor) -> Tensor:
        h = z.reshape(z.shape[0], -1)
        for linear, norm in zip(self.linears, self.norms, strict=False):
            h = F.leaky_relu(norm(linear(h))[0], 0.2)
        return self.linears[-1](h)


class SpatialEmbedder(nn.Module):
    """Strided 3×3 convolutions (each halves H and W) then one convolution over what is left.

    Channels start at ``base_channels`` and double per step up to ``max_channels``. ``n_down``
    defaults to as many halvings as the smaller side allows, at most 4.

    >>> import torch
    >>> emb = SpatialEmbedder((64, 16, 16), 128)
    >>> emb(torch.randn(2, 64, 16, 16)).shape
    torch.Size([2, 128])
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_dim: int,
        n_down: int | None = None,
        base_channels: int = 64,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        channels, height, width = in_shape
        side = min(height, width)
        if n_down is None:
            n_down = min(4, int(math.log2(side)))
        if side < 2**n_down:
            raise ShapeError(
                f"a spatial condition of {channels}×{height}×{width} is too small for a conv "
                f"embedder with n_down={n_down} stride-2 steps (needs at least "
                f"{2**n_down}×{2**n_down}); use n_down <= {int(math.log2(side))}"
            )
        layers: list[nn.Module] = []
        in_channels = channels
        for step in range(n_down):
            out_channels = min(base_channels * 2**step, max_channels)
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
                _ChannelActNorm(out_channels),
                nn.LeakyReLU(0.2),
            ]
            in_channels = out_channels
            height, width = (height + 1) // 2, (width + 1) // 2
        layers.append(nn.Conv2d(in_channels, out_dim, (height, width)))
        self.net = nn.Sequential(*layers)
        self.in_shape, self.out_dim = tuple(in_shape), out_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).flatten(1)


def make_embedder(cond_shape: Sequence[int], out_dim: int, depth: int = 4) -> nn.Module:
    """Embedder for a condition of per-sample shape ``cond_shape``: ``(C,)`` or ``(C, H, W)``.

    A ``(C, 1, 1)`` map (a pooled layer) counts as a vector.
    """
    shape = tuple(int(s) for s in cond_shape)
    if any(s < 1 for s in shape):
        raise ShapeError(f"condition shape must be positive, got {shape}")
    if len(shape) == 1:
        return VectorEmbedder(shape[0], out_dim, depth)
    if len(shape) == 3:
        if shape[1:] == (1, 1):
            return VectorEmbedder(shape[0], out_dim, depth)
        return SpatialEmbedder(shape, out_dim)
    raise ShapeError(
        f"a condition must be a vector (C,) or a feature map (C, H, W) per sample, got {shape}"
    )


def check_condition_shape(z: Tensor, cond_shape: Sequence[int], batch: int) -> None:
    """Raise a ``ShapeError`` unless ``z`` is ``(batch, *cond_shape)``."""
    expected = (batch, *cond_shape)
    if tuple(z.shape) != expected:
        raise ShapeError(
            f"condition z must have shape {expected} (batch, *layer shape), got {tuple(z.shape)}"
        )


__all__ = ["SpatialEmbedder", "VectorEmbedder", "check_condition_shape", "make_embedder"]
