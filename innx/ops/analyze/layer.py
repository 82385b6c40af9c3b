"""The measurements of ``innx analyze`` for one layer, through the fitted networks.

- :func:`sample_codes`: ``zbar = t⁻¹(v | z)`` for ``M`` draws of ``v`` per row;
- :func:`concept_blocks`: the blocks ``e_i`` of those codes (or the code itself without ``e``);
- :func:`read_decoded`: decode codes and read each image with Φ, the classifier and the judge;
- :func:`preservation`: whether invariance samples keep the layer's representation and the
  classifier's prediction, beside plain reconstructions;
- :func:`invariances`: how standard normal ``v = t(zbar | z)`` is, and how independent of ``z``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from innx.backbones import Backbone
from innx.errors import ConfigError, InnxError
from innx.flows import InvarianceFlow, SemanticFlow
from innx.flows.semantic import RESIDUAL
from innx.ops.analyze.stats import explained_share, independence, v_statistics
from innx.ops.fit.semantic.judge import AttributeJudge
from innx.ops.pipeline import Pipeline

CODE = "zbar"
"""The one block reported when no semantic run is given: the whole code."""

MIN_INDEPENDENCE_ROWS = 12


@dataclass(frozen=True)
class Networks:
    """What preservation needs: ``Φ`` (``backbone``) and a ``classifier`` (each ``None`` with a
    reason when unavailable), and the classifier's predictions ``reference`` on the rows'
    images (or on their reconstructions when the store has no images: ``reference_kind``)."""

    backbone: Backbone | None
    classifier: Backbone | None = None
    reference: Tensor | None = None
    reference_kind: str = "images"
    reason: str | None = None
    classifier_reason: str | None = None


@torch.no_grad()
def sample_codes(
    t: InvarianceFlow, z: Tensor, v: Tensor, *, batch: int, device: torch.device
) -> Tensor:
    """``t⁻¹(v | z)``: ``z`` ``[N, ...]`` and ``v`` ``[N, M, d]`` → codes ``[N, M, d]`` on the CPU.

    The condition is embedded once per row and shared by its ``M`` draws."""
    rows_per = max(1, batch // v.shape[1])
    out = []
    for start in range(0, len(z), rows_per):
        c = t.embed(z[start : start + rows_per].to(device))
        draws = v[start : start + rows_per].to(device)
        b, m, d = draws.shape
        codes = t.flow.inverse(draws.reshape(b * m, d), c.repeat_interleave(m, 0))[0]
        out.append(codes.reshape(b, m, d).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def concept_blocks(
    e: SemanticFlow | None,
    codes: Tensor,
    factors: list[str],
    *,
    batch: int,
    device: torch.device,
) -> dict[str, Tensor]:
    """The blocks ``e_i`` of ``codes`` ``[N, M, d]`` for ``factors`` and the residual (when not
    empty), each ``[N, M, D_i]``; without ``e`` the code itself, as block :data:`CODE`."""
    n, m, d = codes.shape
    if e is None:
        return {CODE: codes}
    flat = codes.reshape(n * m, d)
    zhat = torch.cat(
        [e(flat[i : i + batch].to(device))[0].float().cpu() for i in range(0, len(flat), batch)]
    )
    blocks = e.split(zhat)
    names = [*factors, RESIDUAL] if blocks[RESIDUAL].shape[1] else list(factors)
    return {name: blocks[name].reshape(n, m, -1) for name in names}


def shares(blocks: dict[str, Tensor]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per block: the share explained, and its variance decomposition (between, within, total)."""
    share, variance = {}, {}
    for name, block in blocks.items():
        result = explained_share(block)
        share[name] = result.share
        variance[name] = {
            "between": result.between,
            "within": result.within,
            "total": result.total,
        }
    return share, variance


@dataclass(frozen=True)
class Decoded:
    """What the networks read off decoded codes, ``[N, K]`` each (``K`` codes per row): the cosine
    similarity of their representation with the row's ``z`` and the classifier's prediction (each
    ``None`` without Φ or a classifier), and the judge's reading of each factor (``kept``)."""

    cosine: Tensor | None
    predictions: Tensor | None
    readings: dict[str, Tensor]


@torch.no_grad()
def preservation(
    z: Tensor, samples: Decoded, reconstructions: Decoded, nets: Networks
) -> dict[str, Any]:
    """Cosine similarity of ``Φ(D(t⁻¹(v | z)))`` with ``z`` and agreement of the classifier's
    prediction with its prediction on the original, for invariance samples (``*_samples``) and
    for the reconstructions ``D(zbar)`` (``*_reconstructions``), both read by :func:`read_decoded`;
    ``cosine_shuffled`` is the cosine similarity of ``z`` with another row's ``z``, the level of an
    unrelated image."""
    assert samples.cosine is not None and reconstructions.cosine is not None
    flat = z.reshape(len(z), -1)
    other = torch.roll(torch.arange(len(z)), 1)
    out: dict[str, Any] = {
        "cosine_samples": float(samples.cosine.mean()),
        "cosine_reconstructions": float(reconstructions.cosine.mean()),
        "cosine_shuffled": float(F.cosine_similarity(flat, flat[other], dim=1).mean()),
        "agreement_samples": None,
        "agreement_reconstructions": None,
    }
    found, recon = samples.predictions, reconstructions.predictions
    if found is not None and recon is not None and nets.reference is not None:
        ref = nets.reference[:, None]
        out["agreement_samples"] = float((found == ref).float().mean())
        if nets.reference_kind == "images":
            out["agreement_reconstructions"] = float((recon == ref).float().mean())
    return out


@torch.no_grad()
def predict(classifier: Backbone, images: Tensor, *, batch: int, device: torch.device) -> Tensor:
    """The classifier's predicted class for each of ``images`` (in [0, 1]), on the CPU."""
    out = []
    for start in range(0, len(images), batch):
        x = classifier.preprocessing(images[start : start + batch].to(device))
        out.append(classifier(x).flatten(1).argmax(1).cpu())
    return torch.cat(out)


@torch.no_grad()
def read_decoded(
    pipe: Pipeline,
    layer: str | None,
    codes: Tensor,
    z: Tensor | None,
    nets: Networks,
    judge: AttributeJudge | None = None,
) -> Decoded:
    """Decode ``codes`` ``[N, K, d]`` in bounded batches and read each image: the cosine
    similarity of its representation at ``layer`` with its row's ``z`` (when Φ is available and
    ``layer`` given), the classifier's prediction, and the ``judge``'s readings."""
    n, k, d = codes.shape
    rows_per = max(1, pipe.batch_size // k)
    cosines, predictions = [], []
    readings: dict[str, list[Tensor]] = {}
    for start in range(0, n, rows_per):
        chunk = codes[start : start + rows_per]
        b = len(chunk)
        images = pipe.decode(chunk.reshape(b * k, d))
        if nets.backbone is not None and layer is not None and z is not None:
            rep = pipe.represent(images, [layer], nets.backbone)[layer].reshape(b * k, -1)
            ref = z[start : start + rows_per].reshape(b, -1).repeat_interleave(k, 0)
            cosines.append(F.cosine_similarity(rep, ref, dim=1).reshape(b, k))
        if nets.classifier is not None:
            found = predict(nets.classifier, images, batch=pipe.batch_size, device=pipe.device)
            predictions.append(found.reshape(b, k))
        if judge is not None:
            for name, value in judge.predict(images, batch=pipe.batch_size).items():
                readings.setdefault(name, []).append(value.reshape(b, k))
    return Decoded(
        torch.cat(cosines) if cosines else None,
        torch.cat(predictions) if predictions else None,
        {name: torch.cat(parts) for name, parts in readings.items()},
    )


@torch.no_grad()
def invariances(
    t: InvarianceFlow,
    z: Tensor,
    zbar: Tensor,
    *,
    seed: int,
    batch: int,
    device: torch.device,
) -> dict[str, Any]:
    """The statistics of ``v = t(zbar | z)`` on the rows (:func:`~innx.ops.analyze.stats.
    v_statistics`) and its dependence on ``z`` (:func:`~innx.ops.analyze.stats.independence`),
    with ``reason`` set when there are too few rows for the latter."""
    v = torch.cat(
        [
            t(zbar[i : i + batch].to(device), z[i : i + batch].to(device))[0].float().cpu()
            for i in range(0, len(z), batch)
        ]
    )
    out: dict[str, Any] = dict(v_statistics(v)) if len(v) >= 4 else {}
    if len(v) >= MIN_INDEPENDENCE_ROWS:
        found = independence(v, z, seed=seed)
        out["r2_from_z"], out["r2_from_shuffled_z"] = found["r2"], found["r2_shuffled"]
    else:
        out["r2_from_z"] = out["r2_from_shuffled_z"] = None
        out["reason"] = f"{len(v)} rows are too few to test independence (at least 12)"
    return out


def networks(
    pipe: Pipeline,
    classifier_run: str | None,
    autoencoder_given: bool,
    say: Callable[[str], None],
) -> Networks:
    """Φ and the classifier for preservation, or the reason it is skipped. A classifier run or
    an autoencoder given explicitly that does not load is an error, not a skip."""
    classifier = None
    if classifier_run is not None:
        classifier = pipe.load_backbone(classifier_run)
        if classifier.logits is None:
            raise ConfigError(
                f"the backbone {classifier.label} has no classifier head; --classifier needs a "
                "run of innx fit classifier"
            )
    try:
        _ = pipe.autoencoder
    except InnxError as err:
        if autoencoder_given:
            raise
        return _skip(f"the autoencoder is unavailable: {err}", say)
    info = pipe.backbone_info
    if info.get("name") and not info.get("weights"):
        return _skip("the store's backbone was randomly initialised (it records no weights)", say)
    try:
        backbone = pipe.backbone
    except InnxError as err:
        return _skip(f"the backbone is unavailable: {err}", say)
    if classifier is None and backbone.logits is not None:
        classifier = backbone
    if classifier is None:
        reason = "the store's backbone has no classifier head; pass --classifier RUN"
        return Networks(backbone, classifier_reason=reason)
    return Networks(backbone, classifier)


def _skip(reason: str, say: Callable[[str], None]) -> Networks:
    say(f"skipping preservation: {reason}")
    return Networks(None, reason=reason)


def with_reference(pipe: Pipeline, nets: Networks, images: Tensor | None, zbar: Tensor) -> Networks:
    """``nets`` with the classifier's predictions on the rows' images (on their reconstructions
    when the store has no images)."""
    assert nets.classifier is not None
    kind = "images"
    if images is None:
        images, kind = pipe.decode(zbar), "reconstructions"
    found = predict(nets.classifier, images, batch=pipe.batch_size, device=pipe.device)
    return replace(nets, reference=found, reference_kind=kind)
