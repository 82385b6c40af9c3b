"""Preprocessing as data: what a backbone expects as input, recorded so it can be checked and undone."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from innx.errors import ConfigError, ShapeError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocessing:
    """How to turn ``uint8`` images into a backbone's input, as data (cf. timm's ``pretrained_cfg``).

    Images are resized so that their shorter side is ``resize`` (when set; then centre-cropped to
    ``size``) or straight to ``size``, scaled to [0, 1], converted to ``channels`` (grey is
    repeated, RGB is averaged to grey), and normalised with ``mean`` and ``std`` per channel.

    Example::

        >>> import torch
        >>> pre = Preprocessing(size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> x = pre(torch.full((2, 3, 64, 64), 255, dtype=torch.uint8))
        >>> x.shape, x.max().item()
        (torch.Size([2, 3, 32, 32]), 1.0)
        >>> pre.undo(x).max().item()
        1.0
    """

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    resize: int | None = None
    channels: int = 3

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise ConfigError(f"preprocessing size must be (height, width), got {self.size}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
            )
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(
                f"preprocessing needs one mean and std per channel ({self.channels}), "
                f"got {len(self.mean)} and {len(self.std)}"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the backbone's input."""
        return (self.channels, *self.size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``uint8 [B, C, H, W]`` (or ``[C, H, W]``) → normalised ``float32`` of :attr:`input_shape`."""
        single = x.dim() == 3
        if single:
            x = x.unsqueeze(0)
        if x.dim() != 4:
            raise ShapeError(f"images must be [B, C, H, W] or [C, H, W], got {tuple(x.shape)}")
        x = self._channels(x.float().div_(255.0) if x.dtype == torch.uint8 else x.float())
        x = self._resize(x)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x[0] if single else x

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """``uint8 [B, C, H, W]`` or ``[C, H, W]`` → ``uint8`` of :attr:`input_shape`: the resize,
        crop and channel conversion without the normalisation (to keep images small in memory)."""
        if tuple(x.shape[-3:]) == self.input_shape:
            return x
        single = x.dim() == 3
        batch = x.unsqueeze(0) if single else x
        y = self._resize(self._channels(batch.float().div_(255.0)))
        y = y.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
        return y[0] if single else y

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``uint8`` images already of :attr:`input_shape` → the normalised ``float32`` input."""
        return self(x)

    def undo(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone input → images in [0, 1] (for display); the resize cannot be undone."""
        shape = (-1, 1, 1) if x.dim() == 3 else (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return (x * std + mean).clamp(0.0, 1.0)

    def _channels(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.channels:
            return x
        if c == 1:
            return x.expand(-1, self.channels, -1, -1)
        if c == 3 and self.channels == 1:
            return x.mean(dim=1, keepdim=True)
        raise ShapeError(f"cannot turn {c}-channel images into the {self.channels} channels needed")

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.resize is None:
            if (h, w) == self.size:
                return x
            return self._interpolate(x, self.size)
        scale = self.resize / min(h, w)
        target = (max(round(h * scale), self.size[0]), max(round(w * scale), self.size[1]))
        if target != (h, w):
            x = self._interpolate(x, target)
        top = (x.shape[-2] - self.size[0]) // 2
        left = (x.shape[-1] - self.size[1]) // 2
        return x[..., top : top + self.size[0], left : left + self.size[1]]

    def _interpolate(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.interpolation == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(
            x, size=size, mode=self.interpolation, align_corners=False, antialias=True
        ).clamp_(0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            size=tuple(data["size"]),  # type: ignore[arg-type]
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            interpolation=data.get("interpolation", "bilinear"),
            resize=data.get("resize"),
            channels=int(data.get("channels", 3)),
        )


IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
"""The ImageNet normalisation torchvision's classifiers were trained with."""
