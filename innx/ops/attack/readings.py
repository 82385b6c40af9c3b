"""What each layer sees of an attacked image: the attack itself, and per layer the invariance
samples ``D(t⁻¹(v | Φ_l(x')))`` of the three versions ``x'`` of every row (:data:`CONDITIONS`)
and what the classifier and the judge read off them, and how far ``Φ_l`` moved.

The same draws ``v`` serve every row, version and layer, so that a difference between the
samples of ``x`` and of ``x_adv`` comes from ``Φ_l`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from innx.backbones import Backbone
from innx.ops.analyze.layer import Networks, predict, read_decoded, sample_codes
from innx.ops.attack import methods
from innx.ops.fit.semantic.judge import AttributeJudge
from innx.ops.pipeline import InvarianceRun, Pipeline

CONDITIONS = ("x", "x_adv", "x_noise")
"""The versions of each row: the image, the attacked image and the noise control."""
PAIRS = 128
"""Pairs of different store rows behind the median distance that scales ``‖ΔΦ_l‖``."""
READ_ROWS = 64
"""Store rows read at once for that median."""


@dataclass(frozen=True)
class Attacked:
    """Per version (:data:`CONDITIONS`), the rows' images ``[B, C, S, S]`` in [0, 1] and the
    classifier's predictions on them ``[B]``."""

    images: dict[str, Tensor]
    predictions: dict[str, Tensor]

    @property
    def flipped(self) -> Tensor:
        """Whether the attack changed each row's prediction, bool ``[B]``."""
        return self.predictions["x_adv"] != self.predictions["x"]


@dataclass(frozen=True)
class AttackSpec:
    """How to attack: ``method`` (:data:`~innx.ops.attack.methods.METHODS`), the L∞ size
    ``eps``, PGD's ``steps`` and ``step_size``, and the ``target`` class (``None``: untargeted)."""

    method: str
    eps: float
    steps: int
    step_size: float
    target: int | None


def attack_rows(
    pipe: Pipeline, classifier: Backbone, images: Tensor, spec: AttackSpec, seed: int
) -> Attacked:
    """Attack ``images`` (``[B, C, S, S]`` in [0, 1]) on ``classifier`` through its
    preprocessing, ``pipe.batch_size`` rows at a time, beside the noise control drawn from
    ``seed``."""

    def model(x: Tensor) -> Tensor:
        return classifier(classifier.preprocessing(x))

    batch, device = pipe.batch_size, pipe.device
    original = predict(classifier, images, batch=batch, device=device)
    labels = original if spec.target is None else torch.full_like(original, spec.target)
    generator = torch.Generator().manual_seed(seed)
    adversarial, noisy = [], []
    for start in range(0, len(images), batch):
        x = images[start : start + batch].to(device)
        y = labels[start : start + batch].to(device)
        targeted = spec.target is not None
        if spec.method == "pgd":
            found = methods.pgd(
                model, x, y, spec.eps, steps=spec.steps, step_size=spec.step_size,
                targeted=targeted,
            )  # fmt: skip
        else:
            found = methods.fgsm(model, x, y, spec.eps, targeted=targeted)
        adversarial.append(found.cpu())
        noisy.append(methods.noise(x, spec.eps, generator).cpu())
    versions = {"x": images, "x_adv": torch.cat(adversarial), "x_noise": torch.cat(noisy)}
    predictions = {
        name: predict(classifier, value, batch=batch, device=device)
        for name, value in versions.items()
    }
    return Attacked(versions, predictions)


@dataclass(frozen=True)
class LayerReadings:
    """One layer's invariance samples of every version of the rows, as read: the classifier's
    predictions and the judge's categories ``[B, K]`` (``judged`` ``None`` without a judge), the
    cosine similarity of each sample's ``Φ_l`` with the ``Φ_l`` it was drawn for ``[B, K]``,
    and the first few samples themselves ``[B, F, C, S, S]`` for the figures."""

    run: InvarianceRun
    predictions: dict[str, Tensor]
    judged: dict[str, Tensor] | None
    cosine: dict[str, Tensor]
    shown: dict[str, Tensor]


@torch.no_grad()
def read_layer(
    pipe: Pipeline,
    run: InvarianceRun,
    z: dict[str, Tensor],
    v: Tensor,
    nets: Networks,
    judge: tuple[AttributeJudge, str] | None,
    shown: int,
) -> LayerReadings:
    """Draw the invariance samples ``t⁻¹(v | z)`` of each version's ``z`` (``[B, ...]``; ``v``
    ``[K, d]``, the same for every row) and read them with ``nets`` and the ``judge`` of one
    attribute (the judge and the attribute's name); keep the first ``shown`` as images."""
    predictions, cosine, kept = {}, {}, {}
    judged: dict[str, Tensor] | None = None if judge is None else {}
    for name in CONDITIONS:
        b, (k, d) = len(z[name]), v.shape
        codes = sample_codes(
            run.flow, z[name], v.expand(b, k, d), batch=pipe.batch_size, device=pipe.device
        )
        found = read_decoded(
            pipe, run.layer, codes, z[name], nets, None if judge is None else judge[0]
        )
        assert found.predictions is not None and found.cosine is not None
        predictions[name], cosine[name] = found.predictions, found.cosine
        if judged is not None and judge is not None:
            judged[name] = found.readings[judge[1]]
        first = codes[:, :shown]
        kept[name] = pipe.decode(first.reshape(-1, d)).unflatten(0, first.shape[:2])
    return LayerReadings(run, predictions, judged, cosine, kept)


def distances(z: dict[str, Tensor], scale: float) -> dict[str, Tensor]:
    """``‖Φ_l(x') − Φ_l(x)‖ / scale`` of each attacked and noisy version, ``[B]`` each."""
    base = z["x"].flatten(1)
    return {
        name: (z[name].flatten(1) - base).norm(dim=1).double() / scale for name in CONDITIONS[1:]
    }


def median_distance(pipe: Pipeline, layer: str, *, seed: int, pairs: int = PAIRS) -> float:
    """The median of ``‖Φ_l(x_i) − Φ_l(x_j)‖`` over up to ``pairs`` seeded pairs of different
    store rows (read from the store :data:`READ_ROWS` at a time): how far apart two images are at
    ``layer``. NaN when the store holds fewer than two rows."""
    valid = np.flatnonzero(pipe.store.index != -1)
    if len(valid) < 2:
        return float("nan")
    rng = np.random.default_rng([seed, 17])
    first, second = rng.choice(valid, pairs), rng.choice(valid, pairs)
    different = first != second
    first, second = first[different], second[different]
    dataset = pipe.store.layer(layer)
    found = []
    for start in range(0, len(first), READ_ROWS):
        a = torch.from_numpy(_take(dataset, first[start : start + READ_ROWS])).flatten(1).double()
        b = torch.from_numpy(_take(dataset, second[start : start + READ_ROWS])).flatten(1).double()
        found.append((a - b).norm(dim=1))
    return float(torch.cat(found).median()) if found else float("nan")


def _take(dataset: object, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (any order, repeats allowed) of an HDF5 dataset."""
    unique, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(dataset[unique])[inverse]  # type: ignore[index]
