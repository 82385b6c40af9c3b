"""``fit_semantic``: train the semantic INN ``e`` from attribute pairs of an activation store.

``zhat = e(zbar)`` is split into one block per named factor and the residual last; pairs that
share factor ``F`` are modelled with block ``F`` correlated by ``ρ`` and every other block
independent (:func:`innx.flows.semantic_pair_nll`). ``e`` is fitted to the autoencoder code
(``--on latents``, the ECCV setting) or to a layer's representation (``--on layer:L``, the CVPR
IIN setting). Pairs are sampled from the store's attributes (:class:`~innx.data.pairs.PairSampler`)
or read from a CSV. A factor is categorical or continuous as its attribute was recorded, or as its
spec states (``digit:categorical``, :func:`~innx.ops.fit.semantic.inputs.factor_attributes`); the
manifest's ``kinds`` records how each was treated. Block sizes are given or estimated from pairs
(:func:`innx.flows.estimate_factor_sizes`). Training runs through the shared loop
(:mod:`innx.train.loop`); afterwards :mod:`innx.ops.fit.semantic.evaluate` measures the linear probes,
leakage and factor swaps, which go into the manifest's metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from innx.device import device_line, to_device
from innx.flows import (
    SemanticConfig,
    SemanticFlow,
    bits_per_dim,
    semantic_pair_nll,
)
from innx.flows.losses import check_factor_labels
from innx.ops.fit.flow_training import RESUMABLE_CHANGES, flow_loop, total_steps
from innx.ops.fit.semantic.evaluate import evaluate_semantic
from innx.ops.fit.semantic.inputs import (
    PairBatches,
    block_sizes,
    estimate_sizes,
    read_inputs,
)
from innx.ops.fit.semantic.options import (
    DEFAULT_EPOCHS,
    EVAL_BATCH,
    MAX_DEFAULT_STEPS,
    NOISE_ROWS,
    SemanticFit,
)
from innx.store.runs import RunInputs, StoreInput
from innx.train.distributed import current_part, local_device
from innx.train.loop import Progress, train
from innx.train.run_dir import open_run_dir


@dataclass(frozen=True)
class SemanticResult:
    """Where the run was written, its block sizes and its final metrics."""

    run_dir: Path
    sizes: dict[str, int]
    metrics: dict[str, float]


def estimate_dims(fit: SemanticFit) -> dict[str, int]:
    """Block sizes (factors in order, residual last) estimated from the fit's training pairs."""
    inputs = read_inputs(fit)
    try:
        return estimate_sizes(fit, inputs)
    finally:
        inputs.close()


def fit_semantic(
    fit: SemanticFit,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> SemanticResult:
    """Train ``e`` on ``fit.store`` into run directory ``out``; see the module docstring."""
    say = log or (lambda _message: None)
    out = Path(out)
    started = time.perf_counter()
    part = current_part(fit.device)
    inputs = read_inputs(fit)
    try:
        sizes = block_sizes(fit, inputs, say)
        with open_run_dir(
            out, fit={**fit.to_dict(), "sizes": sizes}, part=part, resume=resume,
            overwrite=overwrite, ignore=(*RESUMABLE_CHANGES, "autoencoder", "swaps"),
            store_fingerprint=inputs.fingerprint,
        ) as run:  # fmt: skip
            device = local_device(fit.device)
            data = PairBatches(inputs.table, inputs.train, fit.batch_size, fit.seed, part=part)
            val = PairBatches(inputs.table, inputs.val, len(inputs.val), fit.seed).global_batch(0)
            say(device_line(device))
            say(
                f"{len(inputs.train_rows)} training and {len(inputs.val_rows)} validation rows, "
                f"{inputs.table.dim}-d input ({fit.on}), blocks {sizes}"
            )
            torch.manual_seed(fit.seed)
            factors = {name: sizes[name] for name in fit.names}
            model = SemanticFlow(
                SemanticConfig.preset(
                    fit.preset, inputs.table.dim, factors, seed=fit.seed, kernels=fit.kernels
                )
            )
            model = model.to(device)
            steps = total_steps(fit, data.steps_per_epoch, DEFAULT_EPOCHS, MAX_DEFAULT_STEPS)
            std = inputs.table.take(inputs.train_rows[:NOISE_ROWS]).std(0)
            noise = CodeNoise(std, fit.noise, fit.noise_final, steps, fit.seed)
            task = SemanticTask(model, data, val, fit.rho, device, noise=noise)
            loop = flow_loop(fit, steps)
            result = train(task, loop, out, resume=run.resuming, progress=progress)
            metrics = {
                **result.metrics,
                "steps": float(steps),
                "epochs": steps / data.steps_per_epoch,
            }
            if part.is_main:
                say("measuring probes, leakage and factor swaps on the validation rows")
                metrics.update(
                    evaluate_semantic(
                        model.eval(), fit, inputs.table, inputs.train_rows, inputs.val_rows,
                        inputs.attributes, device=device, log=say,
                    )
                )  # fmt: skip
            metrics["seconds"] = time.perf_counter() - started
            kinds = {name: kind for name, (kind, _) in inputs.attributes.items()}
            store = StoreInput(
                str(Path(fit.store).resolve()), inputs.fingerprint, on=fit.on,
                train=len(inputs.train_rows), validation=len(inputs.val_rows),
                latents=inputs.latents_fingerprint,
            )  # fmt: skip
            run.write(
                model.state_dict(), model.kind, model.config.to_dict(),
                inputs=RunInputs(store=store, fit=fit.to_dict()), seed=fit.seed, metrics=metrics,
                extra={"factors": [str(spec) for spec in fit.specs], "kinds": kinds,
                       "sizes": sizes},
                device=device,
            )  # fmt: skip
    finally:
        inputs.close()
    return SemanticResult(out, sizes, metrics)


@dataclass(frozen=True)
class CodeNoise:
    """Gaussian noise on both codes of every training pair: ``std[d] · level(step)`` in dimension
    ``d``, the level falling from ``start`` to ``end`` along a half cosine over ``steps``.

    Why: an autoencoder's codes lie near a thin manifold, and on clean codes ``e`` spends itself
    sharpening that density instead of learning the pairs (on shapes the shared blocks' pair
    correlation stalled at 0.04–0.3). Noisy codes first let the blocks form; less noise at the end
    fits them to the codes. Some noise stays (0.1 standard deviations by default): ``e`` also
    reads invariance samples ``t⁻¹(v | z)``, which lie near the codes but not on them, and an
    ``e`` sharpened on clean codes reads them wildly (on shapes, with 0.02 at the end, the shape
    block of the logits' samples varied 8 times as much within a row as the codes of one shape
    do). More noise smooths ``e`` further but lets factors leak into other blocks; on the demo's
    store, ending at 0.02 / 0.1 / 0.2: the logits explain 0.76 / 0.92 / 0.98 of shape's ceiling,
    and a probe of shape on the other blocks reads it 0.32 / 0.37 / 0.46 of the time (chance
    0.26). Draws depend on (seed, step, rank) only.
    """

    std: torch.Tensor
    start: float
    end: float
    steps: int
    seed: int

    def level(self, step: int) -> float:
        done = min(step / max(self.steps, 1), 1.0)
        return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * done))

    def apply(
        self, step: int, rank: int, za: torch.Tensor, zb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        entropy = np.random.SeedSequence([self.seed, step, rank]).generate_state(1)
        generator = torch.Generator().manual_seed(int(entropy[0]))
        both = torch.randn((2, *za.shape), generator=generator) * (self.std * self.level(step))
        return za + both[0], zb + both[1]


class SemanticTask:
    """The pair likelihood of ``e`` (see :class:`~innx.train.loop.Task`)."""

    def __init__(
        self,
        model: SemanticFlow,
        data: PairBatches,
        val: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        rho: float,
        device: torch.device,
        *,
        noise: CodeNoise | None = None,
    ) -> None:
        self.model: nn.Module = model
        self.flow = model
        self.data, self.val, self.rho, self.device = data, val, rho, device
        self.noise = noise
        self.sizes = list(model.config.block_sizes.values())
        model.check_finite = False  # the loop's NaN guard watches the loss instead

    def batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, ...]]:
        for step, (za, zb, factor) in enumerate(self.data.batches(start, stop), start=start):
            if self.noise is not None:
                za, zb = self.noise.apply(step, self.data.part.rank, za, zb)
            check_factor_labels(factor, len(self.sizes) - 1)  # here on the CPU: no sync
            yield (
                to_device(za, self.device),
                to_device(zb, self.device),
                to_device(factor, self.device),
            )

    def warm_start(self) -> None:
        """Initialise ActNorm from both images of the whole first global batch."""
        za, zb, _ = self.data.global_batch(0)
        with torch.no_grad():
            self.model(torch.cat([za, zb]).to(self.device))

    def loss(
        self, model: nn.Module, batch: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        za, zb, factor = batch
        zhat, logdet = model(torch.cat([za, zb]))
        nll = self._nll(zhat.float(), logdet.float(), factor)
        return nll, {"bits_per_dim": bits_per_dim(nll.detach(), 2 * za.shape[1])}

    def _nll(self, zhat: torch.Tensor, logdet: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        n = len(factor)
        return semantic_pair_nll(
            zhat[:n], logdet[:n], zhat[n:], logdet[n:], factor, self.sizes, self.rho
        )

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out pair NLL and, per factor block, the mean correlation of its dimensions over
        the pairs that share it (``corr_<name>``, approaching ρ) and over the other positive pairs
        (``corr_<name>_unshared``, near 0)."""
        za, zb, factor = self.val
        zhats, total = [], 0.0
        for i in range(0, len(factor), EVAL_BATCH):
            both = torch.cat([za[i : i + EVAL_BATCH], zb[i : i + EVAL_BATCH]]).to(self.device)
            zhat, logdet = self.flow(both)
            total += float(self._nll(zhat, logdet, factor[i : i + EVAL_BATCH].to(self.device))) * (
                len(both) // 2
            )
            n = len(both) // 2
            zhats.append((zhat[:n].cpu(), zhat[n:].cpu()))
        ha = torch.cat([a for a, _ in zhats])
        hb = torch.cat([b for _, b in zhats])
        nll = total / len(factor)
        metrics = {"nll": nll, "bits_per_dim": bits_per_dim(nll, 2 * za.shape[1])}
        blocks_a = self.flow.split(ha)
        blocks_b = self.flow.split(hb)
        for k, name in enumerate(self.flow.factor_names, start=1):
            shared, unshared = factor == k, (factor > 0) & (factor != k)
            for key, chosen in ((f"corr_{name}", shared), (f"corr_{name}_unshared", unshared)):
                if int(chosen.sum()) >= 2:
                    metrics[key] = block_correlation(blocks_a[name][chosen], blocks_b[name][chosen])
        return metrics


def block_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over dimensions of the Pearson correlation of ``a[:, d]`` and ``b[:, d]``."""
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    denominator = (a.pow(2).sum(0) * b.pow(2).sum(0)).sqrt().clamp_min(1e-12)
    return float(((a * b).sum(0) / denominator).mean())
