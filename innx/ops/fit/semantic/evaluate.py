"""How well a fitted semantic INN ``e`` separates its factors, measured on held-out rows.

- **Probe** ``probe_<F>``: a linear probe on block ``F`` of ``e(zbar)``, fitted on training rows,
  predicts attribute ``F`` on validation rows: accuracy for a categorical attribute (beside
  ``chance_<F>``, the share of its most frequent value), R² for a continuous one.
- **Leakage** ``leak_<F>``: the same probe on every other block (the other factors and the
  residual together); a disentangled ``e`` leaves it near chance.
- **Swap** ``swap_<F>``: for validation pairs ``(i, j)`` that differ in ``F``, block ``F`` of ``i``
  is replaced by ``j``'s, mapped back with ``e⁻¹`` and decoded; an :class:`~innx.ops.
  attribute_judge.AttributeJudge` trained on the store's real thumbnails must then see ``j``'s
  value of ``F`` and ``i``'s value of every other named categorical factor. ``swap_<F>_moved`` and
  ``swap_<F>_kept`` give the two halves; ``judge_<F>`` is the judge's accuracy on real validation
  images and ``judge_recon_<F>`` on their plain reconstructions (the ceiling of a swap).

Swaps need the autoencoder's decoder and the store's thumbnails (``innx extract --store-images``);
when either is missing they are skipped with a message, and so are factors that are not
categorical.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from innx.autoencoders.loader import Autoencoder, load_autoencoder
from innx.errors import InnxError
from innx.flows import SemanticFlow
from innx.ops.fit.semantic.inputs import InputTable
from innx.ops.fit.semantic.judge import AttributeJudge, as_images, train_judge
from innx.store.view import ActivationStore

if TYPE_CHECKING:
    from innx.ops.fit.semantic.options import SemanticFit

PROBE_ROWS = 10_000
SWAP_PAIRS = 500
JUDGE_ROWS = 10_000
BATCH = 1024

Attributes = dict[str, tuple[str, np.ndarray]]


def evaluate_semantic(
    flow: SemanticFlow,
    fit: SemanticFit,
    table: InputTable,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    attributes: Attributes,
    *,
    device: torch.device,
    log: Callable[[str], None],
) -> dict[str, float]:
    """Probe, leakage and swap figures of ``flow`` (see the module docstring)."""
    flow = flow.eval()
    train_rows = _spread(train_rows, PROBE_ROWS)
    val_rows = _spread(val_rows, PROBE_ROWS)
    metrics = probe_scores(flow, table, train_rows, val_rows, attributes, device)
    categorical = [
        n for n in flow.factor_names if n in attributes and attributes[n][0] == "categorical"
    ]
    if not categorical:
        return metrics
    if not fit.swaps:
        log("factor swaps skipped (--no-swaps)")
        return metrics
    if fit.on != "latents":
        log("factor swaps are measured only for --on latents (they need the decoder)")
        return metrics
    autoencoder, why = _decoder(fit)
    if autoencoder is None:
        log(f"factor swaps skipped: {why}")
        return metrics
    autoencoder.to(device)
    with ActivationStore(fit.store) as store:
        if store.images is None:
            log("factor swaps skipped: the store has no images; extract with --store-images")
            return metrics
        judged_rows = _spread(train_rows, JUDGE_ROWS)
        train_images = as_images(store.images[judged_rows])
        val_images = as_images(store.images[val_rows])
    labels = {n: attributes[n][1][judged_rows].astype(np.int64) for n in categorical}
    judge = train_judge(train_images, labels, seed=fit.seed, device=device)
    truth = {n: attributes[n][1][val_rows].astype(np.int64) for n in categorical}
    zbar = table.take(val_rows)
    recon = _decode(autoencoder, zbar, device)
    for name, predicted in judge.predict(val_images).items():
        metrics[f"judge_{name}"] = float((predicted.numpy() == truth[name]).mean())
    for name, predicted in judge.predict(recon).items():
        metrics[f"judge_recon_{name}"] = float((predicted.numpy() == truth[name]).mean())
    metrics.update(swap_rates(flow, autoencoder, judge, zbar, truth, seed=fit.seed, device=device))
    return metrics


@torch.no_grad()
def encode_blocks(
    flow: SemanticFlow, zbar: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """``e.split(e(zbar))`` in batches, on the CPU."""
    parts = [flow(zbar[i : i + BATCH].to(device))[0].cpu() for i in range(0, len(zbar), BATCH)]
    return flow.split(torch.cat(parts))


def probe_scores(
    flow: SemanticFlow,
    table: InputTable,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    attributes: Attributes,
    device: torch.device,
) -> dict[str, float]:
    """``probe_<F>``, ``leak_<F>`` (and ``chance_<F>``) for every factor the store has values of."""
    fitted = encode_blocks(flow, table.take(train_rows), device)
    held = encode_blocks(flow, table.take(val_rows), device)
    metrics: dict[str, float] = {}
    for name in flow.factor_names:
        if name not in attributes:
            continue
        kind, values = attributes[name]
        others = [b for b in fitted if b != name and fitted[b].shape[1]]
        for key, blocks in ((f"probe_{name}", [name]), (f"leak_{name}", others)):
            x_fit = torch.cat([fitted[b] for b in blocks], 1)
            x_held = torch.cat([held[b] for b in blocks], 1)
            if kind == "categorical":
                metrics[key] = logistic_probe(x_fit, values[train_rows], x_held, values[val_rows])
            else:
                metrics[key] = ridge_probe(x_fit, values[train_rows], x_held, values[val_rows])
        if kind == "categorical":
            counts = np.unique(values[val_rows], return_counts=True)[1]
            metrics[f"chance_{name}"] = float(counts.max() / counts.sum())
    return metrics


def logistic_probe(
    x_fit: torch.Tensor, y_fit: np.ndarray, x_held: torch.Tensor, y_held: np.ndarray
) -> float:
    """Held-out accuracy of multinomial logistic regression (L-BFGS, light L2) on ``x_fit``."""
    x_fit, x_held = _standardise(x_fit, x_held)
    targets = torch.from_numpy(y_fit.astype(np.int64))
    classes = int(max(y_fit.max(), y_held.max())) + 1
    weight = torch.zeros(x_fit.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x_fit @ weight + bias, targets)
        loss = loss + 1e-4 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (x_held @ weight + bias).argmax(1).numpy()
    return float((predicted == y_held.astype(np.int64)).mean())


def ridge_probe(
    x_fit: torch.Tensor, y_fit: np.ndarray, x_held: torch.Tensor, y_held: np.ndarray
) -> float:
    """Held-out R² of ridge regression on ``x_fit`` (1 is perfect, 0 no better than the mean)."""
    x_fit, x_held = _standardise(x_fit, x_held)
    ones = torch.ones(len(x_fit), 1, dtype=torch.float64)
    design = torch.cat([x_fit, ones], 1)
    target = torch.from_numpy(y_fit.astype(np.float64))
    gram = design.T @ design + 1e-3 * torch.eye(design.shape[1], dtype=torch.float64)
    coef = torch.linalg.solve(gram, design.T @ target)
    predicted = torch.cat([x_held, torch.ones(len(x_held), 1, dtype=torch.float64)], 1) @ coef
    truth = torch.from_numpy(y_held.astype(np.float64))
    residual = (truth - predicted).pow(2).sum()
    total = (truth - truth.mean()).pow(2).sum().clamp_min(1e-12)
    return float(1 - residual / total)


@torch.no_grad()
def swap_rates(
    flow: SemanticFlow,
    autoencoder: Autoencoder,
    judge: AttributeJudge,
    zbar: torch.Tensor,
    truth: dict[str, np.ndarray],
    *,
    seed: int,
    device: torch.device,
) -> dict[str, float]:
    """``swap_<F>``, ``swap_<F>_moved``, ``swap_<F>_kept`` over up to :data:`SWAP_PAIRS` pairs
    of rows of ``zbar`` that differ in ``F`` (see the module docstring)."""
    blocks = encode_blocks(flow, zbar, device)
    rng = np.random.default_rng([seed, 7])
    metrics: dict[str, float] = {}
    for name in truth:
        i = rng.integers(0, len(zbar), 4 * SWAP_PAIRS)
        j = rng.integers(0, len(zbar), 4 * SWAP_PAIRS)
        keep = np.flatnonzero(truth[name][i] != truth[name][j])[:SWAP_PAIRS]
        i, j = i[keep], j[keep]
        swapped = {b: v[i].clone() for b, v in blocks.items()}
        swapped[name] = blocks[name][j]
        zhat = flow.merge(swapped)
        back = torch.cat(
            [flow.inverse(zhat[k : k + BATCH].to(device)).cpu() for k in range(0, len(zhat), BATCH)]
        )
        predicted = judge.predict(_decode(autoencoder, back, device))
        moved = predicted[name].numpy() == truth[name][j]
        kept = np.ones(len(i), bool)
        for other in truth:
            if other != name:
                kept &= predicted[other].numpy() == truth[other][i]
        metrics[f"swap_{name}"] = float((moved & kept).mean())
        metrics[f"swap_{name}_moved"] = float(moved.mean())
        metrics[f"swap_{name}_kept"] = float(kept.mean())
    return metrics


@torch.no_grad()
def _decode(autoencoder: Autoencoder, zbar: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.cat(
        [
            autoencoder.decode(zbar[i : i + BATCH].to(device)).cpu()
            for i in range(0, len(zbar), BATCH)
        ]
    )


def _decoder(fit: SemanticFit) -> tuple[Any, str]:
    """The autoencoder that made the store's latents (or ``fit.autoencoder``), or why not."""
    run = fit.autoencoder
    if run is None:
        with ActivationStore(fit.store) as store:
            run = store.file["latents"].attrs.get("autoencoder") or None
    if not run:
        return (
            None,
            "the store does not name the autoencoder of its latents; pass --autoencoder RUN",
        )
    candidates = [Path(run), Path(fit.store).parent / run]
    path = next((c for c in candidates if c.is_dir()), None)
    if path is None:
        return None, f"the autoencoder run {run} was not found; pass --autoencoder RUN"
    try:
        autoencoder = load_autoencoder(path)
    except InnxError as err:
        return None, f"cannot load the autoencoder {path}: {err}"
    if hasattr(autoencoder, "eval"):
        autoencoder.eval()
    return autoencoder, ""


def _standardise(x_fit: torch.Tensor, x_held: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = x_fit.double().mean(0), x_fit.double().std(0).clamp_min(1e-8)
    return (x_fit.double() - mean) / std, (x_held.double() - mean) / std


def _spread(rows: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` of ``rows``, evenly spread (deterministic)."""
    if len(rows) <= count:
        return rows
    return rows[np.linspace(0, len(rows) - 1, count).astype(np.int64)]
