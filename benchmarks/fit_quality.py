"""The quality part of ``benchmarks/fit.py``: the method end to end on shapes, through the ops.

Stages, each timed, all in one temporary folder: ``fit_classifier`` (smallcnn), ``fit_autoencoder``
(the conv autoencoder, its defaults), ``extract`` (``logits`` and ``pool``, with the autoencoder's
codes and the images), ``fit_invariance`` (small preset) on ``logits``, ``fit_semantic`` (small preset, its defaults) on
shape, foreground and background colour. Then:

- on the images held out of the classifier and the autoencoder (both split the dataset with
  ``split_rows(n, 0.1, seed)``, so they hold out the same ones): the PSNR of D(E(x)) (per image,
  averaged, as the autoencoder's manifest reports it) and the share of images whose predicted
  class is kept on D(E(x)) (target >= 0.97);
- the statistics of held-out ``v`` from ``fit_invariance``: max |mean_d| <= 0.1 and every std_d in
  [0.85, 1.15];
- on the rows held out of ``t`` (``split_store_rows`` with the fit's seed): the share of
  invariance samples D(t⁻¹(v|z)), v ~ N(0, I), classified as the class predicted on ``x``, over
  the same share for D(E(x)) of the same rows (target >= 0.95);
- from ``fit_semantic``'s manifest, per factor: the linear probe on its block (target >= 0.9), the
  probe on all other blocks (leakage, target <= chance + 0.15) and the factor swaps read right by
  a classifier of the thumbnails (target >= 0.8).

Images go to the classifier as a saved image would: decoded floats in [0, 1] rounded to ``uint8``,
then the backbone's own ``preprocessing.normalize``, as ``fit_classifier`` feeds its images.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from innx.autoencoders.loader import Autoencoder, load_autoencoder
from innx.backbones import Preprocessing, load_backbone
from innx.flows import InvarianceFlow
from innx.ops.extract.extraction import ExtractOptions, extract
from innx.ops.fit.autoencoder import AutoencoderFit, fit_autoencoder, psnr
from innx.ops.fit.classifier import ClassifierFit, fit_classifier
from innx.ops.fit.invariance import InvarianceFit, fit_invariance
from innx.ops.fit.models import load_model
from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic
from innx.store import ActivationStore
from innx.train.batches import StoreBatches
from innx.train.split import split_rows, split_store_rows

LAYER = "logits"
FACTORS = ("shape", "fg_color", "bg_color")
SEED = 0
EVAL_BATCH = 256
T = TypeVar("T")


@dataclass(frozen=True)
class QualitySizes:
    """How big the run is; ``None`` steps keep a fit's defaults."""

    n: int
    classifier_steps: int | None = None
    autoencoder_steps: int | None = None
    invariance_steps: int | None = None
    semantic_steps: int | None = None
    samples: int = 4  # invariance samples per held-out image
    max_rows: int = 2000  # held-out rows evaluated (at most)
    swaps: bool = True  # measure factor swaps (fit semantic trains a judge CNN for them)


def run_quality(sizes: QualitySizes, tmp: Path) -> None:
    data = f"shapes:n={sizes.n},size=32,seed={SEED}"
    seconds: dict[str, float] = {}

    def timed(stage: str, work: Callable[[], T]) -> T:
        start = time.perf_counter()
        result = work()
        seconds[stage] = time.perf_counter() - start
        return result

    clf_fit = ClassifierFit(data, steps=sizes.classifier_steps, seed=SEED)
    clf = timed("fit classifier", lambda: fit_classifier(clf_fit, tmp / "clf"))
    ae_fit = AutoencoderFit(data=data, steps=sizes.autoencoder_steps, seed=SEED)
    ae = timed("fit autoencoder", lambda: fit_autoencoder(ae_fit, tmp / "ae"))
    options = ExtractOptions(
        data,
        "smallcnn",
        (LAYER, "pool"),
        weights=str(clf.run_dir),
        autoencoder=str(ae.run_dir),
        store_images=True,
    )
    store = tmp / "acts.h5"
    timed("extract", lambda: extract(options, store))
    inv_fit = InvarianceFit(str(store), LAYER, "small", steps=sizes.invariance_steps, seed=SEED)
    inv = timed(f"fit invariance {LAYER}", lambda: fit_invariance(inv_fit, tmp / "inv"))
    sem_fit = SemanticFit(
        str(store), FACTORS, steps=sizes.semantic_steps, seed=SEED, swaps=sizes.swaps
    )
    sem = timed("fit semantic", lambda: fit_semantic(sem_fit, tmp / "sem"))
    found = timed("evaluate", lambda: evaluate(store, clf.run_dir, ae.run_dir, inv.run_dir, sizes))

    v = inv.metrics
    ratio = found["kept_samples"] / found["kept_recon"]
    rows: list[tuple[str, str, str, bool | None]] = [
        ("classifier val accuracy", f"{clf.metrics['val_accuracy']:.4f}", "", None),
        ("autoencoder val PSNR (its manifest)", f"{ae.metrics['val_psnr']:.2f} dB", "", None),
        ("PSNR of D(E(x)), unseen images", f"{found['psnr']:.2f} dB", "", None),
        ("class kept on D(E(x)), unseen images", f"{found['kept_unseen']:.4f}", ">= 0.97",
         found["kept_unseen"] >= 0.97),
        (f"{LAYER}: v max |mean_d|", f"{v['val_v_mean_abs_max']:.3f}", "<= 0.1",
         v["val_v_mean_abs_max"] <= 0.1),
        (f"{LAYER}: v std_d min / max", f"{v['val_v_std_min']:.2f} / {v['val_v_std_max']:.2f}",
         "in [0.85, 1.15]", v["val_v_std_min"] >= 0.85 and v["val_v_std_max"] <= 1.15),
        ("class kept on D(E(x)), rows held out of t", f"{found['kept_recon']:.4f}", "", None),
        (f"{LAYER}: class kept on D(t⁻¹(v|z))", f"{found['kept_samples']:.4f}", "", None),
        (f"{LAYER}: kept samples / kept D(E(x))", f"{ratio:.3f}", ">= 0.95", ratio >= 0.95),
    ]  # fmt: skip
    rows += semantic_rows(sem.metrics, sem.sizes)
    print(
        f"quality: {data}, smallcnn, conv autoencoder (zbar {found['zbar_dim']:.0f}), t small on "
        f"{LAYER}; {found['unseen']:.0f} images unseen by the classifier and the autoencoder, "
        f"{found['rows']:.0f} rows held out of t, {sizes.samples} samples each"
    )
    print()
    print(f"{'measure':<40}{'value':>14}  {'target':<16}verdict")
    print("-" * 80)
    for measure, value, target, met in rows:
        verdict = "" if met is None else ("met" if met else "not met")
        print(f"{measure:<40}{value:>14}  {target or '-':<16}{verdict}".rstrip())
    print()
    print(f"{'stage':<40}{'seconds':>14}")
    print("-" * 54)
    for stage, spent in seconds.items():
        print(f"{stage:<40}{spent:>14.1f}")


def semantic_rows(
    m: dict[str, float], sizes: dict[str, int]
) -> list[tuple[str, str, str, bool | None]]:
    rows: list[tuple[str, str, str, bool | None]] = []
    rows.append(("e: block sizes", ",".join(map(str, sizes.values())), "", None))
    for name in FACTORS:
        limit = m[f"chance_{name}"] + 0.15
        rows += [
            (f"e: {name} probe", f"{m[f'probe_{name}']:.3f}", ">= 0.9", m[f"probe_{name}"] >= 0.9),
            (f"e: {name} leak (chance {m[f'chance_{name}']:.2f})", f"{m[f'leak_{name}']:.3f}",
             f"<= {limit:.3f}", m[f"leak_{name}"] <= limit),
        ]  # fmt: skip
        swap = m.get(f"swap_{name}")  # absent when the run skipped swaps
        rows.append((f"e: {name} swap", "-" if swap is None else f"{swap:.3f}", ">= 0.8",
                     None if swap is None else swap >= 0.8))  # fmt: skip
    return rows


def evaluate(
    store: Path, clf_run: Path, ae_run: Path, inv_run: Path, sizes: QualitySizes
) -> dict[str, float]:
    """PSNR of D(E(x)) and the shares of predicted classes kept (see the module docstring)."""
    backbone, _ = load_backbone("smallcnn", clf_run)
    model, pre = backbone.model.eval(), backbone.preprocessing
    autoencoder = load_autoencoder(ae_run)
    flow = load_model(inv_run, "invariance")
    assert isinstance(flow, InvarianceFlow)
    with ActivationStore(store) as view:
        _, images_out = split_rows(len(view.index), 0.1, SEED)  # of the classifier and the AE
        unseen = np.flatnonzero(np.isin(view.index, images_out.numpy()))
        _, rows_out = split_store_rows(view.index, 0.1, SEED)  # of t
    fields = ["images", "latents", LAYER]
    found: dict[str, float] = {}
    with torch.no_grad():
        images, zbar, _ = StoreBatches(store, fields, unseen, 1, SEED).all(sizes.max_rows)
        x = images.permute(0, 3, 1, 2).contiguous()  # uint8 [B, C, H, W]
        recon = decode(autoencoder, zbar)
        found["unseen"] = len(x)
        found["psnr"] = float(psnr(recon, x.float() / 255).mean())
        found["kept_unseen"] = kept(model, pre, recon, classify(model, pre, x))

        images, zbar, z = StoreBatches(store, fields, rows_out, 1, SEED).all(sizes.max_rows)
        x = images.permute(0, 3, 1, 2).contiguous()
        predicted = classify(model, pre, x)
        found["rows"] = len(x)
        found["kept_recon"] = kept(model, pre, decode(autoencoder, zbar), predicted)
        generator = torch.Generator().manual_seed(SEED)
        shares = []
        for _ in range(sizes.samples):
            codes = torch.cat([flow.sample(c, generator=generator) for c in z.split(EVAL_BATCH)])
            shares.append(kept(model, pre, decode(autoencoder, codes), predicted))
        found["kept_samples"] = sum(shares) / len(shares)
    found["zbar_dim"] = zbar.shape[1]
    return found


def kept(model: nn.Module, pre: Preprocessing, decoded: Tensor, predicted: Tensor) -> float:
    """The share of decoded images whose predicted class is ``predicted``."""
    return float((classify(model, pre, to_uint8(decoded)) == predicted).float().mean())


def classify(model: nn.Module, pre: Preprocessing, images: Tensor) -> Tensor:
    """Predicted classes of ``uint8 [B, C, H, W]`` images, fed as ``fit_classifier`` feeds them."""
    out = []
    for chunk in images.split(EVAL_BATCH):
        x = pre.normalize(chunk).contiguous(memory_format=torch.channels_last)
        out.append(model(x).argmax(1))
    return torch.cat(out)


def decode(autoencoder: Autoencoder, zbar: Tensor) -> Tensor:
    """Images in [0, 1], ``[B, C, S, S]``, of codes ``zbar``."""
    return torch.cat([autoencoder.decode(c) for c in zbar.split(EVAL_BATCH)]).clamp(0.0, 1.0)


def to_uint8(x: Tensor) -> Tensor:
    return x.mul(255).round().clamp(0, 255).to(torch.uint8)
