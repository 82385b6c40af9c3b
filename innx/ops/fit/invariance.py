"""``fit_invariance``: train the invariance cINN ``t`` on (latents, one layer) of an activation store.

``v = t(zbar | z)`` is fitted by maximum likelihood under ``v ~ N(0, I)`` (Adam with β = (0.5,
0.9) as in the paper, warm-up then cosine decay, optional gradient clipping) through the shared
loop (:mod:`innx.train.loop`). The layer's values get Gaussian noise in training (``noise``,
0.3 of their standard deviation by default): without it ``t`` memorises the training rows'
conditions (on the demo's pool layer the training NLL ran 14 nats below the held-out one and
held-out ``v`` reached standard deviations of 1.4); with it the default learning rate (2e-3)
trains twice as fast without overfitting (held-out NLL −40.8 instead of −28.8 nats at the same
steps, and samples that keep the layer's representation). Store rows are split once from the seed into training and
validation blocks (:func:`~innx.train.batches.split_store_rows`); the validation NLL is
reported in bits per dimension, with the statistics of the held-out ``v`` (a trained ``t`` makes
them standard normal). The run records the store's fingerprint, the layer and the final metrics;
resuming against another store is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from innx.device import device_line, to_device
from innx.errors import ConfigError
from innx.flows import InvarianceConfig, InvarianceFlow, bits_per_dim, invariance_nll
from innx.ops.fit.flow_training import RESUMABLE_CHANGES, FlowTraining, flow_loop, total_steps
from innx.store.runs import RunInputs, StoreInput
from innx.store.view import ActivationStore
from innx.train.batches import StoreBatches
from innx.train.distributed import current_part, local_device
from innx.train.loop import Progress, train
from innx.train.run_dir import open_run_dir
from innx.train.split import split_store_rows

PRESETS = ("paper", "small")
VALIDATION_ROWS = 4096
"""At most this many held-out rows are evaluated (read once, kept in memory)."""
EVAL_BATCH = 1024
NOISE_ROWS = 10_000
"""Training rows whose per-element standard deviation scales the condition noise."""
DEFAULT_EPOCHS = 30.0
MAX_DEFAULT_STEPS = 20_000
"""The default length never exceeds this many steps, however large the store."""


@dataclass(frozen=True)
class InvarianceFit(FlowTraining):
    """The arguments of ``innx fit invariance`` (everything that determines the result)."""

    store: str
    layer: str
    preset: str = "small"
    lr: float = field(default=2e-3, kw_only=True)  # t trains faster; its noise keeps it honest
    noise: float = field(default=0.3, kw_only=True)  # on the layer's values, in their stds
    code_noise: float = field(default=0.0, kw_only=True)  # on zbar, in its stds

    def __post_init__(self) -> None:
        if not self.noise >= 0:
            raise ConfigError(f"--noise must be zero or positive, got {self.noise}")
        if self.preset not in PRESETS:
            raise ConfigError(
                f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}"
            )
        super().__post_init__()


@dataclass(frozen=True)
class InvarianceResult:
    """Where the run was written and its final metrics."""

    run_dir: Path
    metrics: dict[str, float]


def fit_invariance(
    fit: InvarianceFit,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> InvarianceResult:
    """Train ``t`` for ``fit.layer`` of ``fit.store`` into run directory ``out``; see the module
    docstring."""
    say = log or (lambda _message: None)
    out = Path(out)
    started = time.perf_counter()
    with ActivationStore(fit.store) as store:
        cond_shape = _check_store(store, fit.layer)
        fingerprint = store.fingerprint()
        index = store.index
        zbar_dim = int(store.latents.shape[1])  # type: ignore[union-attr]
    part = current_part(fit.device)
    with open_run_dir(
        out, fit=fit.to_dict(), part=part, resume=resume, overwrite=overwrite,
        ignore=RESUMABLE_CHANGES, store_fingerprint=fingerprint,
    ) as run:  # fmt: skip
        device = local_device(fit.device)
        train_rows, val_rows = split_store_rows(index, fit.val_fraction, fit.seed)
        fields = ["latents", fit.layer]
        data = StoreBatches(
            Path(fit.store), fields, train_rows, fit.batch_size, fit.seed, part=part,
            in_memory=fit.in_memory,
        )  # fmt: skip
        val = StoreBatches(Path(fit.store), fields, val_rows, 1, fit.seed).all(VALIDATION_ROWS)
        mode = "in memory" if data.in_memory else "streamed from the store"
        say(device_line(device))
        say(
            f"{len(train_rows)} training and {len(val_rows)} validation rows of layer "
            f"{fit.layer} {list(cond_shape)}, zbar {zbar_dim}-d, {mode}"
        )
        torch.manual_seed(fit.seed)
        config = InvarianceConfig.preset(
            fit.preset, zbar_dim, cond_shape, seed=fit.seed, kernels=fit.kernels
        )
        model = InvarianceFlow(config).to(device)
        noise = None
        if fit.noise > 0 or fit.code_noise > 0:
            codes, sample = data.all(NOISE_ROWS)  # the values over (up to) NOISE_ROWS rows
            noise = ConditionNoise(
                sample.std(0) * fit.noise, fit.seed, codes.std(0) * fit.code_noise
            )
        task = InvarianceTask(model, data, val, device, noise=noise)
        steps = total_steps(fit, data.steps_per_epoch, DEFAULT_EPOCHS, MAX_DEFAULT_STEPS)
        loop = flow_loop(fit, steps)
        try:
            result = train(task, loop, out, resume=run.resuming, progress=progress)
        finally:
            data.close()
        metrics = {
            **result.metrics,
            "steps": float(steps),
            "epochs": steps / data.steps_per_epoch,
            "seconds": time.perf_counter() - started,
        }
        inputs = StoreInput(
            str(Path(fit.store).resolve()), fingerprint, layer=fit.layer, cond_shape=cond_shape,
            train=len(train_rows), validation=len(val_rows),
        )  # fmt: skip
        run.write(
            model.state_dict(), model.kind, model.config.to_dict(),
            inputs=RunInputs(store=inputs, fit=fit.to_dict()), seed=fit.seed, metrics=metrics,
            device=device,
        )  # fmt: skip
    return InvarianceResult(out, metrics)


@dataclass(frozen=True)
class ConditionNoise:
    """Gaussian noise of standard deviation ``std`` (per element of the layer) on the condition
    of every training batch; draws depend on (seed, step, rank) only, so a resume is exact."""

    std: torch.Tensor
    seed: int
    code_std: torch.Tensor | None = None

    def apply(
        self, step: int, rank: int, z: torch.Tensor, zbar: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        entropy = np.random.SeedSequence([self.seed, step, rank, 5]).generate_state(1)
        generator = torch.Generator().manual_seed(int(entropy[0]))
        z = z + torch.randn(z.shape, generator=generator) * self.std
        if self.code_std is not None:
            zbar = zbar + torch.randn(zbar.shape, generator=generator) * self.code_std
        return z, zbar


class InvarianceTask:
    """Maximum likelihood of ``zbar`` given the layer (see :class:`~innx.train.loop.Task`)."""

    def __init__(
        self,
        model: InvarianceFlow,
        data: StoreBatches,
        val: tuple[torch.Tensor, ...],
        device: torch.device,
        *,
        noise: ConditionNoise | None = None,
    ) -> None:
        self.model: nn.Module = model
        self.flow = model
        self.data = data
        self.val = val
        self.device = device
        self.noise = noise
        model.check_finite = False  # the loop's NaN guard watches the loss instead

    def batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, ...]]:
        for step, (zbar, z) in enumerate(self.data.batches(start, stop), start=start):
            if self.noise is not None:
                z, zbar = self.noise.apply(step, self.data.part.rank, z, zbar)
            yield to_device(zbar, self.device), to_device(z, self.device)

    def warm_start(self) -> None:
        """Initialise ActNorm from the whole first global batch, the same on every process."""
        zbar, z = self.data.global_batch(0)
        with torch.no_grad():
            self.model(zbar.to(self.device), z.to(self.device))

    def loss(
        self, model: nn.Module, batch: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        zbar, z = batch
        v, logdet = model(zbar, z)
        nll = invariance_nll(v.float(), logdet.float())
        return nll, {"bits_per_dim": bits_per_dim(nll.detach(), zbar.shape[1])}

    def evaluate(self) -> dict[str, float]:
        zbar_all, z_all = self.val
        vs, total = [], 0.0
        for i in range(0, len(zbar_all), EVAL_BATCH):
            zbar = zbar_all[i : i + EVAL_BATCH].to(self.device)
            v, logdet = self.flow(zbar, z_all[i : i + EVAL_BATCH].to(self.device))
            total += float(invariance_nll(v, logdet)) * len(zbar)
            vs.append(v.cpu())
        v = torch.cat(vs)
        nll = total / len(v)
        mean, std = v.mean(0), v.std(0)
        return {
            "nll": nll,
            "bits_per_dim": bits_per_dim(nll, v.shape[1]),
            "v_mean_abs_max": float(mean.abs().max()),
            "v_std_min": float(std.min()),
            "v_std_max": float(std.max()),
        }


def _check_store(store: ActivationStore, layer: str) -> tuple[int, ...]:
    """The layer's per-sample shape, after checking that the store can train ``t``."""
    if store.latents is None:
        raise ConfigError(
            f"{store.path} has no latents (autoencoder codes); run innx extract again with "
            "--autoencoder RUN (a run of innx fit autoencoder)"
        )
    return tuple(int(s) for s in store.layer(layer).shape[1:])
