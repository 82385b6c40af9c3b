"""``conv``: the built-in convolutional autoencoder ``E, D`` (``innx fit autoencoder``).

The encoder halves the image with strided convolutions down to 4×4 and maps it to the mean and
log-variance of a Gaussian posterior over ``zbar``; the decoder mirrors it with transposed
convolutions and ends in a sigmoid, so images stay in [0, 1]. Batch norm and SiLU come before
every convolution but the first (in eval mode batch norm uses its running statistics): without
the norm the code learns the background colour long before the shape.
:meth:`ConvAutoencoder.encode` gives the posterior mean (the code innx stores); training decodes
a sample ``zbar = mean + exp(logvar / 2) * eps``, which keeps the decoder smooth around codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from innx.errors import ConfigError, RunError, ShapeError, first_line
from innx.store.runs import RunFiles, build_from_config

IMAGE_SIZES = (32, 64, 128)
BOTTOM = 4  # the encoder's last feature map is BOTTOM × BOTTOM

#: Named sizes: ``demo`` trains on shapes in a few minutes on a laptop CPU; ``standard`` is wider
#: and deeper, for real images (and a GPU).
AUTOENCODER_PRESETS: dict[str, dict[str, int]] = {
    "demo": {"width": 16, "blocks": 1},
    "standard": {"width": 32, "blocks": 2},
}


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything needed to rebuild a :class:`ConvAutoencoder`; saved as ``config.json``.

    ``width`` is the channels at full resolution (doubled per halving, up to ``8 * width``);
    ``blocks`` the residual blocks at each lower resolution (none at full resolution, where they
    would cost the most).
    """

    image_size: int = 32
    channels: int = 3
    latent_dim: int = 64
    width: int = 16
    blocks: int = 1

    def __post_init__(self) -> None:
        if self.image_size not in IMAGE_SIZES:
            allowed = ", ".join(map(str, IMAGE_SIZES))
            raise ConfigError(
                f"the conv autoencoder takes images of {allowed} px, not {self.image_size}; "
                "pass --size with one of them"
            )
        if self.channels not in (1, 3):
            raise ConfigError(f"the conv autoencoder takes 1 or 3 channels, not {self.channels}")
        if self.latent_dim < 1 or self.width < 1 or self.blocks < 0:
            raise ConfigError(
                "the conv autoencoder needs latent_dim >= 1, width >= 1 and blocks >= 0, got "
                f"{self.latent_dim}, {self.width} and {self.blocks}"
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AutoencoderConfig:
        """A config from a named preset (``demo`` or ``standard``), with overrides."""
        if name not in AUTOENCODER_PRESETS:
            raise ConfigError(
                f"unknown preset {name!r}; choose one of: {', '.join(AUTOENCODER_PRESETS)}"
            )
        return cls(**{**AUTOENCODER_PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AutoencoderConfig:
        return cls(**data)

    @property
    def levels(self) -> list[int]:
        """Channels at each resolution, from the full image down to 4×4."""
        halvings = (self.image_size // BOTTOM).bit_length() - 1
        return [self.width * min(2**i, 8) for i in range(halvings + 1)]


def _act(channels: int) -> list[nn.Module]:
    """Batch norm then SiLU, before a convolution."""
    return [nn.BatchNorm2d(channels), nn.SiLU()]


class _Residual(nn.Sequential):
    """``x + conv(act(conv(act(x))))``, shape-preserving."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            *_act(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            *_act(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + super().forward(x)


class ConvAutoencoder(nn.Module):
    """``zbar = E(x)``: ``[B, C, S, S]`` in [0, 1] → ``[B, latent_dim]``; ``x = D(zbar)``.

    >>> import torch
    >>> ae = ConvAutoencoder(AutoencoderConfig.preset("demo", latent_dim=16)).eval()
    >>> zbar = ae.encode(torch.rand(2, 3, 32, 32))
    >>> zbar.shape, ae.decode(zbar).shape
    (torch.Size([2, 16]), torch.Size([2, 3, 32, 32]))
    """

    kind = "autoencoder"

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.image_size = config.image_size
        levels, blocks = config.levels, config.blocks
        flat = levels[-1] * BOTTOM * BOTTOM
        down: list[nn.Module] = [nn.Conv2d(config.channels, levels[0], 3, padding=1)]
        for c_in, c_out in pairwise(levels):
            down += [*_act(c_in), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
            down += [_Residual(c_out) for _ in range(blocks)]
        down += [*_act(levels[-1]), nn.Flatten(), nn.Linear(flat, 2 * config.latent_dim)]
        self.encoder = nn.Sequential(*down)
        up: list[nn.Module] = [
            nn.Linear(config.latent_dim, flat),
            nn.Unflatten(1, (levels[-1], BOTTOM, BOTTOM)),
        ]
        for c_in, c_out in pairwise(levels[::-1]):
            up += [_Residual(c_in) for _ in range(blocks)]
            up += [*_act(c_in), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        up += [*_act(levels[0]), nn.Conv2d(levels[0], config.channels, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*up)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(zbar | x)``, each ``[B, latent_dim]``."""
        expected = (self.config.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ShapeError(
                f"the autoencoder takes images [B, {', '.join(map(str, expected))}], got "
                f"{list(x.shape)}; resize them to {self.image_size} px"
            )
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: Tensor) -> Tensor:
        """``zbar`` ``[B, latent_dim]``: the posterior mean of images ``x`` ``[B, C, S, S]``."""
        return self.posterior(x)[0]

    def decode(self, zbar: Tensor) -> Tensor:
        """Images ``[B, C, S, S]`` in [0, 1] of codes ``zbar`` ``[B, latent_dim]``."""
        if zbar.dim() != 2 or zbar.shape[1] != self.latent_dim:
            raise ShapeError(
                f"the autoencoder decodes codes [B, {self.latent_dim}], got {list(zbar.shape)}"
            )
        return self.decoder(zbar)  # type: ignore[no-any-return]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction, posterior mean and log-variance: in training mode the reconstruction
        decodes a sample of the posterior, in eval mode its mean."""
        mean, logvar = self.posterior(x)
        zbar = mean
        if self.training:
            zbar = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.decode(zbar), mean, logvar


def load(run: RunFiles) -> ConvAutoencoder:
    """The ``innx.autoencoders`` entry point: the model of a run directory, in eval mode."""
    options = {k: v for k, v in run.config.items() if k != "plugin"}
    model = build_from_config(
        run, lambda: ConvAutoencoder(AutoencoderConfig.from_dict(options)), "conv autoencoder"
    )
    try:
        model.load_state_dict(run.tensors)
    except RuntimeError as err:
        raise RunError(
            f"the weights in {run.path} do not fit its config ({first_line(err)}); "
            "re-run innx fit autoencoder"
        ) from err
    return model.eval()
