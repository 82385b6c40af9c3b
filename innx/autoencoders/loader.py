"""The ``innx.autoencoders`` plugin hook: load a trained autoencoder from its run directory.

A run directory of an autoencoder has ``config.json`` ``{"kind": "autoencoder", "config":
{"plugin": NAME, ...}}``; ``NAME`` is an entry point in the ``innx.autoencoders`` group whose value
is a loader ``load(run: RunFiles) -> Autoencoder`` (the run's weights are already verified).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from innx.errors import ConfigError, PluginError
from innx.plugins import registry
from innx.store.runs import read_run

GROUP = "innx.autoencoders"
KIND = "autoencoder"
DEFAULT_PLUGIN = "conv"


@runtime_checkable
class Autoencoder(Protocol):
    """What innx needs of an autoencoder: codes of images and images of codes.

    ``encode``: ``float [B, C, S, S]`` in [0, 1], ``S = image_size`` → ``zbar`` ``[B, latent_dim]``
    (the posterior mean); ``decode``: the way back.
    """

    latent_dim: int
    image_size: int

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, zbar: torch.Tensor) -> torch.Tensor: ...

    def to(self, device: torch.device) -> Any: ...


def load_autoencoder(run_dir: str | Path) -> Autoencoder:
    """The autoencoder of run directory ``run_dir``, through its ``innx.autoencoders`` plugin."""
    run = read_run(run_dir)
    if run.kind != KIND:
        raise ConfigError(
            f"{run_dir} holds a run of kind {run.kind!r}, not an autoencoder; pass the -o "
            "directory of 'innx fit autoencoder'"
        )
    plugin = str(run.config.get("plugin", DEFAULT_PLUGIN))
    loader = registry().load(GROUP, plugin)
    model = loader(run)
    if not isinstance(model, Autoencoder):
        raise PluginError(
            f"autoencoder plugin {plugin!r} returned a {type(model).__name__} without "
            "encode/decode/latent_dim/image_size; fix the plugin"
        )
    return model
