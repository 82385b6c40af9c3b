"""The checks that decide whether the figures of ``innx analyze`` can be interpreted.

A share explained or a *kept* figure rests on three fits and a judge; each can fail without an
error (an autoencoder that loses the digit, a ``t`` whose samples do not keep ``z``, an ``e`` that
never learned a factor), and the figure then reads like a finding. Every check below is a number
from the fits' manifests or from the analysis itself, scaled so that 1 is what a sound fit shows,
with two thresholds: at or above ``sound_at`` it is *sound*, at or above ``doubtful_at``
*doubtful*, below that *not interpretable*.

=======================  =========================================================  =====  =====
check                    value                                                      sound  doubt
=======================  =========================================================  =====  =====
autoencoder keeps the    the classifier's agreement on reconstructions with its     0.95   0.85
classifier               prediction on the images
autoencoder keeps F      the judge's score on reconstructions over its score on     0.90   0.75
                         real images, both above chance
judge reads F            the judge's score on real held-out images, above chance    0.80   0.50
t keeps z (layer)        cosine of samples' Φ with z, from an unrelated row's       0.80   0.50
                         level (0) to the reconstructions' (1)
t keeps the prediction   the classifier's agreement on samples, from chance (0) to  0.80   0.50
(layer)                  its agreement on reconstructions (1)
v is standard normal     1 − the largest deviation of v's per-dimension means and   0.70   0.00
(layer)                  standard deviations from 0 and 1
e's block predicts F     the held-out probe of F on e's block, from chance (0) to   0.70   0.40
                         perfect (1)
=======================  =========================================================  =====  =====

``v is standard normal`` alone makes a figure doubtful, not uninterpretable, unless v is far off
(a deviation over 1): for a layer that nearly determines the code ``t`` is nearly a delta, and a
small error in its mean shows as a large deviation of held-out ``v`` while the samples are right
(the other two checks of ``t`` read the samples themselves).

A figure's verdict is the worst verdict of the checks it rests on: a share on the autoencoder's,
``t``'s and ``e``'s checks of its layer and concept; *kept* on the autoencoder's, the judge's and
``t``'s. Each failed check names its fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

SOUND, DOUBTFUL, BROKEN = "sound", "doubtful", "not interpretable"
UNCHECKED = "unchecked"
ORDER = (SOUND, DOUBTFUL, BROKEN)


@dataclass(frozen=True)
class Check:
    """One check: ``value`` (1 is what a sound fit shows) against its two thresholds, the part it
    checks (``autoencoder``, ``judge``, ``t``, ``e``), its ``layer`` or ``factor`` (``None``: all)."""

    name: str
    part: str
    layer: str | None
    factor: str | None
    value: float
    sound_at: float
    doubtful_at: float
    fix: str

    @property
    def verdict(self) -> str:
        if math.isnan(self.value) or self.value < self.doubtful_at:
            return BROKEN
        return SOUND if self.value >= self.sound_at else DOUBTFUL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def _above(value: float | None, level: float | None, top: float | None) -> float:
    """``(value − level) / (top − level)``: 0 at ``level``, 1 at ``top`` (NaN when undefined)."""
    if value is None or level is None or top is None or not top - level > 1e-12:
        return math.nan
    return (value - level) / (top - level)


def autoencoder_checks(agreement: float | None, reader: Any | None) -> list[Check]:
    """The autoencoder keeps the classifier's prediction, and the judge's reading of each factor
    (``reader``: :class:`~innx.ops.analyze.kept.Reader`); the judge reads each factor."""
    fix_ae = (
        "train the autoencoder longer or with a larger --latent-dim (innx fit autoencoder "
        "--classifier RUN records this agreement), then extract and fit again"
    )
    checks = []
    if agreement is not None:
        checks.append(
            Check("autoencoder keeps the classifier", "autoencoder", None, None, agreement,
                  0.95, 0.85, fix_ae)
        )  # fmt: skip
    if reader is None:
        return checks
    for name in reader.factors:
        real = reader.score(name, reader.real[name])
        recon = reader.score(name, reader.recon[name])
        chance = reader.chance.get(name, 0.0)
        checks.append(
            Check(f"judge reads {name}", "judge", None, name, _above(real, chance, 1.0), 0.8, 0.5,
                  f"the judge cannot read {name} off real images: raise --judge-steps, or "
                  f"leave {name} out (--factor)")
        )  # fmt: skip
        checks.append(
            Check(f"autoencoder keeps {name}", "autoencoder", None, name,
                  _above(recon, chance, real), 0.9, 0.75, fix_ae)
        )  # fmt: skip
    return checks


def t_checks(
    layer: str, preservation: dict[str, Any] | None, invariances: dict[str, Any], chance: float
) -> list[Check]:
    """``t`` of ``layer``: its samples keep ``z`` and the classifier's prediction (``chance``:
    the agreement of two random rows' predictions), and ``v`` is standard normal."""
    fix = (
        f"fit t for {layer} longer (--epochs) or on more rows; check its held-out NLL in "
        "metrics.jsonl"
    )
    checks = []
    if preservation is not None:
        kept_z = _above(
            preservation["cosine_samples"],
            preservation["cosine_shuffled"],
            preservation["cosine_reconstructions"],
        )
        checks.append(Check("t keeps z", "t", layer, None, kept_z, 0.8, 0.5, fix))
        agreement = _above(
            preservation.get("agreement_samples"),
            chance,
            preservation.get("agreement_reconstructions"),
        )
        if not math.isnan(agreement):
            checks.append(
                Check("t keeps the prediction", "t", layer, None, agreement, 0.8, 0.5, fix)
            )
    if "std_min" in invariances:
        worst = max(
            invariances["mean_abs_max"],
            1.0 - invariances["std_min"],
            invariances["std_max"] - 1.0,
        )
        # secondary evidence: for a layer that determines the code t is nearly a delta, and a
        # tiny error of its mean shows as a large deviation of v while its samples are right
        checks.append(Check("v is standard normal", "t", layer, None, 1.0 - worst, 0.7, 0.0, fix))
    return checks


def e_checks(metrics: dict[str, Any], factors: Iterable[str]) -> list[Check]:
    """``e``'s block for each factor predicts it (``probe_F`` of its manifest, beside
    ``chance_F`` for a categorical factor, an R² for a continuous one)."""
    checks = []
    for name in factors:
        probe = metrics.get(f"probe_{name}")
        if probe is None:
            continue
        chance = metrics.get(f"chance_{name}", 0.0)
        checks.append(
            Check(f"e's block predicts {name}", "e", None, name, _above(probe, chance, 1.0),
                  0.7, 0.4,
                  f"e did not learn {name}: fit e longer, with a larger block for {name} "
                  "(--dims), or check that pairs sharing it look alike")
        )  # fmt: skip
    return checks


def verdicts(
    checks: list[Check],
    layers: list[str],
    columns: list[str],
    factors: list[str],
    parts: tuple[str, ...],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per layer and column (a concept, the residual, or the code): the verdict of a figure that
    rests on the checks of ``parts`` (the worst of them), the failed checks and their fixes."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for layer in layers:
        out[layer] = {}
        for column in columns:
            named = column if column in factors else None
            relevant = [
                c
                for c in checks
                if c.part in parts
                and c.layer in (None, layer)
                and (c.factor is None or c.factor == named)
            ]
            out[layer][column] = judge_cell(relevant)
    return out


def worst(*verdicts: str) -> str:
    """The worst of ``verdicts`` (``unchecked`` only when nothing was checked)."""
    known = [v for v in verdicts if v in ORDER]
    return max(known, key=ORDER.index) if known else UNCHECKED


SHARE_PARTS = ("autoencoder", "t", "e")
KEPT_PARTS = ("autoencoder", "judge", "t")


def judge_cell(checks: list[Check]) -> dict[str, Any]:
    """The worst verdict of ``checks``, the checks that are not sound and their fixes."""
    if not checks:
        return {"verdict": UNCHECKED, "failed": [], "fixes": []}
    worst = max((c.verdict for c in checks), key=ORDER.index)
    failed = [c for c in checks if c.verdict != SOUND]
    fixes = list(dict.fromkeys(c.fix for c in failed))
    return {"verdict": worst, "failed": [c.name for c in failed], "fixes": fixes}
