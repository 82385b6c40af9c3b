"""The parts of a fitted pipeline, loaded from an activation store and its runs, each checked
against the store: the backbone Φ that made it, the autoencoder (E, D) of its latents, invariance
runs t (per layer) and a semantic run e. ``innx render`` and ``innx analyze`` start here.

Inputs are chosen by store rows or by image files; files are encoded on the fly through the same
backbone and autoencoder, so that both kinds give the same :class:`Inputs`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from innx.autoencoders.loader import Autoencoder, load_autoencoder
from innx.backbones import Backbone
from innx.backbones.registry import load_backbone
from innx.device import AUTO, resolve_device
from innx.errors import ConfigError, RunError, StoreError
from innx.flows import InvarianceFlow, SemanticFlow
from innx.kernels.dispatch import check_kernels
from innx.ops.fit.models import model_of_run
from innx.store import ActivationStore
from innx.store.runs import RunFiles, RunInputs, StoreInput, read_run

BATCH = 256
"""Default rows per forward pass of the backbone, autoencoder and flows (``--internal-batch-size``)."""


@dataclass(frozen=True)
class Inputs:
    """A few inputs, row-aligned: ``images`` float ``[B, C, S, S]`` in [0, 1] at the autoencoder's
    size (``None`` when a store has no thumbnails), codes ``zbar`` ``[B, d]``, the activations of
    the layers asked for (float32), and a short caption per input (``row 5``, ``cat.png``)."""

    images: torch.Tensor | None
    zbar: torch.Tensor
    layers: dict[str, torch.Tensor]
    captions: list[str]

    def __len__(self) -> int:
        return int(self.zbar.shape[0])


@dataclass(frozen=True)
class InvarianceRun:
    """A loaded ``t``, the layer it was fitted on, and what its manifest records: the fit's
    ``inputs`` and final ``metrics``."""

    path: Path
    flow: InvarianceFlow
    layer: str
    inputs: RunInputs
    metrics: dict[str, Any]


@dataclass(frozen=True)
class SemanticRun:
    """A loaded ``e`` and what its manifest records: the fit's ``inputs`` and final ``metrics``
    (the probes, leakage and swaps of its factors)."""

    path: Path
    flow: SemanticFlow
    inputs: RunInputs
    metrics: dict[str, Any]


class Pipeline:
    """An activation store and the parts fitted on it, loaded on first use.

    ``autoencoder`` overrides the run named by the store's latents; ``device`` is where the parts
    run (``auto``: CUDA when there is one, :func:`innx.device.resolve_device`; ``self.device``
    is the resolved one); ``batch_size`` bounds the rows of every forward pass; ``kernels``
    (``auto``, ``torch``, ``triton``) overrides the kernels each ``t`` and ``e`` recorded in its
    config (``None``: as recorded).
    """

    def __init__(
        self,
        store: str | Path,
        *,
        autoencoder: str | Path | None = None,
        device: str | torch.device = AUTO,
        batch_size: int = BATCH,
        kernels: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"--internal-batch-size must be at least 1, got {batch_size}")
        self.kernels = None if kernels is None else check_kernels(kernels)
        self.device = resolve_device(device)
        self.store = ActivationStore(store)
        self.batch_size = batch_size
        self._autoencoder_run = autoencoder
        if self.store.latents is None:
            self.store.close()
            raise StoreError(f"{store} has no latents; extract it again with --autoencoder RUN")

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs, checked against the store ----------------------------------------------------------

    @cached_property
    def fingerprint(self) -> str:
        return self.store.fingerprint()

    def _check_store(self, run: RunFiles, latents_do: bool = False) -> StoreInput:
        """The store ``run`` was fitted on, which must be this one (or, with ``latents_do``, one
        with the same latents: an ``e`` reads nothing else)."""
        recorded = run.inputs.store
        same_latents = (
            latents_do
            and recorded is not None
            and recorded.latents is not None
            and recorded.latents == self.store.latents_fingerprint()
        )
        if recorded is None or (recorded.fingerprint != self.fingerprint and not same_latents):
            where = "an unrecorded store" if recorded is None else recorded.path
            raise RunError(
                f"{run.path} was fitted on another store ({where}), not {self.store.path}"
                + ("" if not latents_do else " (nor on one with the same dataset and autoencoder)")
                + "; pass the store it was fitted on, or fit it on this one"
            )
        return recorded

    def invariance(self, run_dir: str | Path, layer: str | None = None) -> InvarianceRun:
        """The ``t`` of ``run_dir``; refuses a run fitted on another store, or on another layer
        than ``layer`` when one is given."""
        path = Path(run_dir)
        run = read_run(path)
        flow = model_of_run(run, "invariance", kernels=self.kernels)
        fitted = str(self._check_store(run).layer)
        if layer is not None and fitted != layer:
            raise RunError(
                f"{path} was fitted on layer {fitted}, not {layer}; pass the run of layer {layer}"
            )
        if fitted not in self.store.layer_names:
            raise RunError(
                f"{path} was fitted on layer {fitted}, which {self.store.path} lacks "
                f"(its layers: {', '.join(self.store.layer_names)})"
            )
        assert isinstance(flow, InvarianceFlow)
        return InvarianceRun(path, flow.to(self.device), fitted, run.inputs, run.metrics)

    def semantic(self, run_dir: str | Path, factors: Sequence[str] = ()) -> SemanticFlow:
        """The ``e`` of ``run_dir``, fitted on this store's latents and holding ``factors``."""
        return self.semantic_run(run_dir, factors).flow

    def semantic_run(self, run_dir: str | Path, factors: Sequence[str] = ()) -> SemanticRun:
        """:meth:`semantic`, with what the run's manifest records."""
        path = Path(run_dir)
        run = read_run(path)
        flow = model_of_run(run, "semantic", kernels=self.kernels)
        on = self._check_store(run, latents_do=True).on or "latents"
        if on != "latents":
            raise RunError(
                f"{path} was fitted on {on}, not on the autoencoder code; "
                "fit e with --on latents to render or analyze with it"
            )
        assert isinstance(flow, SemanticFlow)
        for name in factors:
            if name not in flow.factor_names:
                raise RunError(
                    f"{path} has no factor {name!r}; its factors: {', '.join(flow.factor_names)}"
                )
        return SemanticRun(path, flow.to(self.device), run.inputs, run.metrics)

    @cached_property
    def autoencoder(self) -> Autoencoder:
        """The autoencoder of the store's latents (or the one given), moved to the device."""
        run = self._autoencoder_run
        if run is None:
            named = self.store.file["latents"].attrs.get("autoencoder") or None
            if not named:
                raise StoreError(
                    f"{self.store.path} does not name the autoencoder of its latents; "
                    "pass --autoencoder RUN"
                )
            candidates = [Path(named), self.store.path.parent / named]
            found = next((c for c in candidates if c.is_dir()), None)
            if found is None:
                raise StoreError(
                    f"the autoencoder run {named} of {self.store.path} was not found; "
                    "pass --autoencoder RUN"
                )
            run = found
        autoencoder = load_autoencoder(run)
        autoencoder.to(self.device)
        if autoencoder.latent_dim != self.store.latents.shape[1]:  # type: ignore[union-attr]
            raise RunError(
                f"the autoencoder {run} has {autoencoder.latent_dim}-d codes, but the latents of "
                f"{self.store.path} are {self.store.latents.shape[1]}-d; "  # type: ignore[union-attr]
                "pass the autoencoder the store was extracted with"
            )
        return autoencoder

    @cached_property
    def backbone(self) -> Backbone:
        """The backbone Φ that made the store, with the weights it recorded."""
        return self.load_backbone(None)

    @cached_property
    def backbone_info(self) -> dict[str, Any]:
        """What the store records of its backbone: ``name``, ``options``, ``weights`` (a path or
        ``None`` for random weights) and more; empty when it records nothing."""
        info = self.store.metadata.get("backbone")
        if isinstance(info, str):
            info = json.loads(info)
        return info if isinstance(info, dict) else {}

    def load_backbone(self, weights: str | Path | None) -> Backbone:
        """The store's backbone with ``weights`` (``None``: the weights the store records)."""
        info = self.backbone_info
        if not info.get("name"):
            raise StoreError(f"{self.store.path} does not record its backbone; extract it again")
        recorded = info.get("weights")
        if weights is None and recorded and not Path(recorded).exists():
            raise StoreError(
                f"the backbone weights {recorded} recorded in {self.store.path} are missing; "
                "restore them, or run from the folder the store was extracted in"
            )
        backbone, _ = load_backbone(
            str(info["name"]),
            weights if weights is not None else recorded,
            options=dict(info.get("options") or {}),
            warn_random=False,
        )
        backbone.model.to(self.device).eval()
        return backbone

    # -- inputs -----------------------------------------------------------------------------------

    def check_rows(self, rows: Sequence[int]) -> np.ndarray:
        """``rows`` as an index array; refuses rows out of range and rows whose image was bad."""
        if len(rows) == 0:
            raise ConfigError("no rows given; pass --rows 0,5,9 or image paths")
        index = np.asarray(list(rows), dtype=np.int64)
        out = index[(index < 0) | (index >= self.store.n)]
        if out.size:
            raise ConfigError(
                f"row {int(out[0])} is out of range: {self.store.path} has rows 0 to {self.store.n - 1}"
            )
        skipped = index[self.store.index[index] < 0]
        if skipped.size:
            raise ConfigError(
                f"row {int(skipped[0])} of {self.store.path} holds no sample (its image was "
                "unreadable at extraction); choose another row"
            )
        return index

    def rows(self, rows: Sequence[int], layers: Sequence[str] = ()) -> Inputs:
        """The inputs at store ``rows`` (checked), with the activations of ``layers``."""
        index = self.check_rows(rows)
        for layer in layers:
            self.store.layer(layer)  # raises, listing the layers, for a missing one
        zbar = torch.from_numpy(_take(self.store.latents, index)).float()
        acts = {
            layer: torch.from_numpy(_take(self.store.layer(layer), index)).float()
            for layer in layers
        }
        images = None
        if self.store.images is not None:
            thumbs = torch.from_numpy(_take(self.store.images, index))
            images = self._image_size(thumbs.permute(0, 3, 1, 2).float() / 255.0)
        return Inputs(images, zbar, acts, [f"row {int(i)}" for i in index])

    def files(self, paths: Sequence[str | Path], layers: Sequence[str] = ()) -> Inputs:
        """The inputs of image files, encoded now through the backbone and the autoencoder."""
        from innx.data.files import read_image

        channels = self.backbone.preprocessing.channels
        mode = "L" if channels == 1 else "RGB"
        raw = [read_image(p, mode) for p in paths]
        images = torch.cat([self._image_size(x.unsqueeze(0).float() / 255.0) for x in raw])
        zbar = self.encode(images)
        acts = self.represent(images, layers) if layers else {}
        return Inputs(images, zbar, acts, [Path(p).name for p in paths])

    def inputs(
        self, rows: Sequence[int], paths: Sequence[str | Path], layers: Sequence[str]
    ) -> Inputs:
        """Rows or files, whichever is given (one of them must be)."""
        if rows and paths:
            raise ConfigError("give store rows (--rows) or image paths, not both")
        return self.files(paths, layers) if paths else self.rows(rows, layers)

    def _image_size(self, images: torch.Tensor) -> torch.Tensor:
        size = self.autoencoder.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        return images.clamp(0, 1)

    # -- the networks, in bounded batches ---------------------------------------------------------

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``E(images)``: codes ``[B, d]`` on the CPU."""
        return self._batched(lambda x: self.autoencoder.encode(x), images)

    @torch.no_grad()
    def decode(self, zbar: torch.Tensor) -> torch.Tensor:
        """``D(zbar)``: images in [0, 1] on the CPU."""
        return self._batched(lambda z: self.autoencoder.decode(z).clamp(0, 1), zbar)

    @torch.no_grad()
    def represent(
        self, images: torch.Tensor, layers: Sequence[str], backbone: Backbone | None = None
    ) -> dict[str, torch.Tensor]:
        """``Φ(images)`` at ``layers``: images in [0, 1] go through the backbone's preprocessing."""
        net = self.backbone if backbone is None else backbone
        parts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
        for start in range(0, len(images), self.batch_size):
            x = net.preprocessing(images[start : start + self.batch_size].to(self.device))
            for layer, value in net.capture(x, list(layers)).items():
                parts[layer].append(value.float().cpu())
        return {layer: torch.cat(values) for layer, values in parts.items()}

    def _batched(self, fn: Any, x: torch.Tensor) -> torch.Tensor:
        outs = [
            fn(x[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(outs)


def _take(dataset: Any, index: np.ndarray) -> np.ndarray:
    """Rows ``index`` (any order, repeats allowed) of an HDF5 dataset."""
    unique, inverse = np.unique(index, return_inverse=True)
    return np.asarray(dataset[unique])[inverse]
