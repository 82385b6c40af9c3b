"""``attack``: what each layer sees in an adversarially attacked image.

For the store rows chosen, the store's backbone (or ``classifier``) is attacked in its own input
space, ``x`` in [0, 1] → its preprocessing → logits: FGSM or PGD (:mod:`.methods`) within an L∞
ball of radius ``eps``, untargeted (away from its prediction on ``x``) or towards a ``target``
class; beside it, a random-noise control ``x + eps · sign(N(0, I))`` of the same L∞ size. Then,
for every invariance run ``t`` (one per layer), invariance samples ``D(t⁻¹(v | Φ_l(x')))`` of the
three versions ``x'`` of each row (:mod:`.readings`) show what the layer now sees: read by a
judge trained on the store's real thumbnails (:func:`innx.ops.analyze.kept.train_reader`) of the
attribute that holds the classifier's classes (:mod:`.classes`), and by the classifier itself,
as the original class or the adversarial one; and how far ``Φ_l`` moved, relative to the median
distance between two rows.

The report (``attack.json``, ``attack.md``, PNG grids: :mod:`.record`, :mod:`.figures`) is written
into a directory, all at once; nothing is written when an input is bad.

Example (``innx attack acts.h5 --invariance runs/inv-pool --rows 0-7 --eps 0.05 -o adv``)::

    from innx.ops.attack.attack import AttackOptions, attack

    attack(AttackOptions(store="acts.h5", invariance=("runs/inv-pool",), rows=tuple(range(8)),
                         eps=0.05), "adv")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from innx.backbones import Backbone
from innx.device import AUTO, device_line, resolve_device
from innx.errors import ConfigError, StoreError
from innx.kernels.dispatch import check_kernels
from innx.ops.analyze import kept as kept_ops
from innx.ops.analyze.analysis import JUDGE_ROWS, load_runs
from innx.ops.analyze.layer import Networks
from innx.ops.attack import figures, record
from innx.ops.attack.classes import Classes, LabelAttribute, classes_of, label_attribute
from innx.ops.attack.methods import METHODS
from innx.ops.attack.readings import (
    CONDITIONS,
    Attacked,
    AttackSpec,
    LayerReadings,
    attack_rows,
    distances,
    median_distance,
    read_layer,
)
from innx.ops.fit.semantic.judge import JUDGE_STEPS
from innx.ops.pipeline import BATCH, Inputs, InvarianceRun, Pipeline
from innx.ops.render.modes import normal
from innx.writes import atomic_folder, check_output_folder

__all__ = ["FORMAT", "VERSION", "AttackOptions", "AttackResult", "attack"]

FORMAT, VERSION = record.FORMAT, record.VERSION
ATTACK_JSON = record.JSON_FILE
SHOWN = 6
"""Invariance samples per row, version and layer drawn in the figures (all are read)."""


@dataclass(frozen=True)
class AttackOptions:
    """The arguments of ``innx attack``.

    ``invariance`` holds one run per layer, each ``RUN`` or ``LAYER=RUN``; ``rows`` are the store
    rows to attack. ``method`` is ``fgsm`` or ``pgd``; ``eps`` the L∞ size in the image's [0, 1]
    pixel scale; ``iterations`` and ``step_size`` (``None``: ``eps / 4``) size PGD; ``target`` is a
    class of the classifier (a name or an index; ``None``: untargeted). ``samples`` invariance
    samples are drawn per row, version and layer; ``judge_steps`` and ``judge_rows`` size the
    judge (0 steps: none, the classifier alone reads the samples); ``bootstrap`` is the number of
    resamples of the rows behind each interval.
    """

    store: str
    invariance: tuple[str, ...]
    rows: tuple[int, ...]
    method: str = "fgsm"
    eps: float = 0.03
    iterations: int = 10
    step_size: float | None = None  # None: eps / 4
    target: str | None = None
    samples: int = 8
    classifier: str | None = None
    autoencoder: str | None = None
    judge_steps: int = JUDGE_STEPS
    judge_rows: int = JUDGE_ROWS
    bootstrap: int = 200
    seed: int = 0
    device: str = AUTO
    batch_size: int = BATCH
    kernels: str = "auto"

    def __post_init__(self) -> None:
        check_kernels(self.kernels)
        resolve_device(self.device)  # a device this machine lacks: refused before any work
        if not self.invariance:
            raise ConfigError("attack needs at least one invariance run; pass --invariance RUN")
        if not self.rows:
            raise ConfigError("attack needs store rows to attack; pass --rows 0,5,9")
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.0 < self.eps <= 1.0:
            raise ConfigError(
                f"--eps is the L∞ size in the image's [0, 1] pixel scale: it must be > 0 and "
                f"<= 1 (8/255 is 0.031), got {self.eps}"
            )
        if self.iterations < 1:
            raise ConfigError(f"--iterations must be at least 1, got {self.iterations}")
        if self.step_size is not None and not (0.0 < self.step_size <= 1.0):
            raise ConfigError(f"--step-size must be > 0 and <= 1, got {self.step_size}")
        if self.samples < 1:
            raise ConfigError(f"--samples must be at least 1, got {self.samples}")
        if self.judge_steps < 0 or self.judge_rows < 2 or self.bootstrap < 10:
            raise ConfigError(
                "--judge-steps must be >= 0, judge rows >= 2 and bootstrap resamples >= 10, got "
                f"{self.judge_steps}, {self.judge_rows}, {self.bootstrap}"
            )
        if self.seed < 0:
            raise ConfigError(f"--seed must be non-negative, got {self.seed}")

    @property
    def pgd_step(self) -> float:
        return self.eps / 4 if self.step_size is None else self.step_size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "invariance": list(self.invariance), "rows": list(self.rows)}


@dataclass(frozen=True)
class AttackResult:
    """The report directory, the record (as in ``attack.json``) and the files written there."""

    path: Path
    record: dict[str, Any]
    files: list[str]


def attack(
    options: AttackOptions,
    out: str | Path,
    *,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> AttackResult:
    """Attack the rows of ``options``, read every layer, and write the report into directory
    ``out``; see the module docstring. Refuses an existing ``out`` unless ``overwrite``."""
    say = log or (lambda _message: None)
    out = Path(out)
    _check_output(out, overwrite)
    started = time.perf_counter()
    with Pipeline(
        options.store,
        autoencoder=options.autoencoder,
        device=options.device,
        batch_size=options.batch_size,
        kernels=options.kernels,
    ) as pipe:
        if pipe.store.images is None:
            raise StoreError(
                f"{pipe.store.path} holds no images to attack; extract it again with --store-images"
            )
        rows = pipe.check_rows(list(dict.fromkeys(options.rows)))
        classifier, weights = _classifier(pipe, options.classifier)
        runs = load_runs(pipe, options.invariance)
        assert classifier.num_classes is not None
        classes = classes_of(weights, classifier.num_classes)
        target = None
        if options.target is not None:
            target = classes.index(options.target, weights or classifier.label)
        _ = pipe.autoencoder  # a missing one is refused before any work
        say(device_line(pipe.device))
        layers = [run.layer for run in runs]
        inputs = pipe.rows(rows.tolist(), layers)
        assert inputs.images is not None
        spec = AttackSpec(options.method, options.eps, options.iterations, options.pgd_step, target)
        attacked = attack_rows(pipe, classifier, inputs.images, spec, options.seed)
        flipped = attacked.flipped
        say(
            f"{options.method} (eps {options.eps:g}) changed the prediction of "
            f"{int(flipped.sum())} of {len(rows)} rows; the noise control of "
            f"{int((attacked.predictions['x_noise'] != attacked.predictions['x']).sum())}"
        )
        label = label_attribute(pipe.store, classes)
        reader, no_reader = _judge(pipe, options, label, rows, inputs.zbar, say)
        entries, shown = _read_layers(
            pipe, runs, inputs, attacked, classifier, label, reader, options, say
        )
        who = weights or classifier.label
        parts = _parts(pipe, rows, attacked, spec, classes, who, label, reader, no_reader)
        store = {"path": str(pipe.store.path), "fingerprint": pipe.fingerprint}
        report = record.build(store, options, parts, entries)
        report["device"] = str(pipe.device)  # resolved; options.device keeps what was asked
        categories = parts.categories if reader is not None else None
        pictures = figures.draw(report, attacked, shown, categories)
    report["seconds"] = time.perf_counter() - started
    files = _write_atomically(out, overwrite, lambda tmp: record.write(report, pictures, tmp))
    return AttackResult(out, record.clean(report), files)


def _read_layers(
    pipe: Pipeline,
    runs: list[InvarianceRun],
    inputs: Inputs,
    attacked: Attacked,
    classifier: Backbone,
    label: LabelAttribute,
    reader: kept_ops.Reader | None,
    options: AttackOptions,
    say: Callable[[str], None],
) -> tuple[list[dict[str, Any]], list[LayerReadings]]:
    """Per run, its entry in the report and its readings (for the figures): the same draws of
    ``v`` for every layer, version and row."""
    layers = [run.layer for run in runs]
    z = {name: pipe.represent(images, layers) for name, images in attacked.images.items()}
    nets = Networks(pipe.backbone, classifier)
    judge = None if reader is None else (reader.judge, reader.factors[0])
    v = normal(options.seed, options.samples, int(inputs.zbar.shape[1]))
    draws, seed = options.bootstrap, options.seed
    entries, shown = [], []
    for run in runs:
        by_version = {name: z[name][run.layer] for name in CONDITIONS}
        scale = median_distance(pipe, run.layer, seed=seed)
        readings = read_layer(pipe, run, by_version, v, nets, judge, SHOWN)
        entry = record.layer_entry(
            readings, attacked, label, distances(by_version, scale), scale,
            inputs.layers[run.layer], by_version["x"], draws=draws, seed=seed,
        )  # fmt: skip
        entries.append(entry)
        shown.append(readings)
        say(record.summary_line(entry))
    return entries, shown


def _classifier(pipe: Pipeline, run: str | None) -> tuple[Backbone, str | None]:
    """The classifier to attack and its weights: ``run`` (a run of ``innx fit classifier`` of the
    store's backbone), else the store's backbone, which must be a trained classifier."""
    info = pipe.backbone_info
    if info.get("name") and not info.get("weights"):
        raise StoreError(
            f"the backbone {info['name']} of {pipe.store.path} was randomly initialised (the "
            "store records no weights): attacking it is meaningless, and its layers cannot be "
            "computed again for attacked images; extract a store from a trained classifier "
            "(innx extract … --weights RUN)"
        )
    weights = run if run is not None else info.get("weights")
    classifier = pipe.load_backbone(run) if run is not None else pipe.backbone
    if classifier.logits is None:
        raise ConfigError(
            f"the backbone {classifier.label} has no classifier head to attack; pass "
            "--classifier RUN, a run of innx fit classifier"
        )
    return classifier, None if weights is None else str(weights)


def _judge(
    pipe: Pipeline,
    options: AttackOptions,
    label: LabelAttribute,
    rows: np.ndarray,
    zbar: torch.Tensor,
    say: Callable[[str], None],
) -> tuple[kept_ops.Reader | None, str | None]:
    """The judge of the classifier's label attribute, or why there is none. It learns from the
    real thumbnails and their reconstructions, since what it reads are decoded samples."""
    if label.name is None:
        return None, label.reason
    if options.judge_steps == 0:
        return None, "skipped (--judge-steps 0)"
    reader = kept_ops.train_reader(
        pipe, [label.name], {}, rows, pipe.decode(zbar), steps=options.judge_steps,
        max_rows=options.judge_rows, seed=options.seed, say=say,
        decoded_too=True,
    )  # fmt: skip
    return reader, None


def _check_output(out: Path, overwrite: bool) -> None:
    check_output_folder(out, overwrite, ATTACK_JSON, "report of innx attack")


def _write_atomically(out: Path, overwrite: bool, write: Callable[[Path], list[str]]) -> list[str]:
    return atomic_folder(out, overwrite, ATTACK_JSON, "report of innx attack", write)


def _parts(
    pipe: Pipeline,
    rows: np.ndarray,
    attacked: Attacked,
    spec: AttackSpec,
    classes: Classes,
    classifier: str,
    label: LabelAttribute,
    reader: kept_ops.Reader | None,
    no_reader: str | None,
) -> record.Parts:
    """What the report says of the rows besides the layers: the label attribute's values at the
    rows and the judge's readings of every version of them."""
    truth, categories, judged, recon, hits, trained_on = None, [], None, None, None, None
    if label.name is not None:
        k = pipe.store.attribute_names.index(label.name)
        categories = list(pipe.store.attribute_categories[k])
        truth = pipe.store.attribute(label.name)[1][rows]
    if reader is not None:
        name = reader.factors[0]
        judged = {
            version: reader.judge.predict(images, batch=pipe.batch_size)[name]
            for version, images in attacked.images.items()
        }
        recon, trained_on = reader.recon[name][:, 0], reader.trained_on
        hits = reader.hits(name, reader.real[name])[:, 0]
    return record.Parts(
        rows, attacked, spec, classes, classifier, label, truth, categories, judged, recon,
        hits, trained_on, no_reader,
    )  # fmt: skip
