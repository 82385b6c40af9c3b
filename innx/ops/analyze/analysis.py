"""``analyze``: what each fitted layer encodes and what it is invariant to, as numbers and figures.

For every invariance run ``t`` (one per layer, in the order given) and the rows chosen:

(a) **Share explained**: with ``M`` draws ``v ~ N(0, I)`` per row, ``zbar = t⁻¹(v | z)`` and the
    concept blocks ``e_i`` of ``e(zbar)``, the share of each concept's variance that the layer
    explains, ``Var_z(E_v[e_i | z]) / Var(e_i)`` (:func:`~innx.ops.analyze.stats.explained_share`),
    the residual block included. Without a semantic run, the share of the code ``zbar`` itself.
(b) **Preservation**: the cosine similarity of ``Φ(D(t⁻¹(v | z)))`` with ``z`` and the agreement of
    the classifier's prediction on those images with its prediction on the original, beside the
    same for plain reconstructions ``D(zbar)``. Needs the autoencoder and the backbone's weights;
    skipped, with the reason in the report, when they are unavailable.
(c) **Invariances**: how standard normal ``v = t(zbar | z)`` is on the rows, and the held-out R²
    of predicting ``v`` from ``z`` (about 0: independent), beside the same for shuffled rows.
(d) **Kept** (:mod:`~innx.ops.analyze.kept`): per named factor, how often the decoded invariance
    samples still show the original's value, read by a judge trained on the store's real
    thumbnails; 1 = as often as a reconstruction, 0 = chance. Needs no ``e``.
(e) **Ceilings, intervals, verdicts**: the share a layer that knew a factor and nothing else
    would reach; a bootstrap interval over rows for every share and kept figure; and the checks
    of the fits behind each figure (:mod:`~innx.ops.analyze.checks`), which mark every figure
    that rests on a failed one.
(f) **Interventions** (:mod:`~innx.ops.analyze.interventions`): with ``e`` and a classifier, per
    factor, how often swapping its block of ``e`` with a donor row's changes the classifier's
    prediction on the decoded image, beside the same for the residual block (a control).

Rows default to a seeded choice of ``samples`` rows, held-out rows of the runs first. The report
(``report.json``, ``report.md``, PNG figures, a self-contained ``report.html``) is written into a
directory, all at once: a half-written report is never left behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from innx.data.base import AttributeKind
from innx.data.pairs import FactorSpec
from innx.device import AUTO, device_line, resolve_device
from innx.errors import ConfigError, InnxError, RunError, first_line
from innx.flows import SemanticFlow
from innx.kernels.dispatch import check_kernels
from innx.ops.analyze import checks as checks_ops
from innx.ops.analyze import interventions as interventions_ops
from innx.ops.analyze import kept as kept_ops
from innx.ops.analyze import layer as measure
from innx.ops.analyze.estimators import chance_agreement
from innx.ops.analyze.layer import Networks
from innx.ops.analyze.measure import LayerMeasure
from innx.ops.analyze.record import FORMAT, VERSION, Parts, build_report
from innx.ops.fit.semantic.judge import JUDGE_STEPS
from innx.ops.pipeline import BATCH, InvarianceRun, Pipeline, SemanticRun
from innx.train.split import split_store_rows
from innx.writes import atomic_folder, check_output_folder

__all__ = [
    "FORMAT", "VERSION", "AnalyzeOptions", "AnalyzeResult", "analyze", "load_runs", "parse_invariance"
]  # fmt: skip

JUDGE_ROWS = 10_000
"""At most this many real thumbnails (of rows not analyzed) train the judge of *kept*."""
REPORT_JSON = "report.json"


@dataclass(frozen=True)
class AnalyzeOptions:
    """The arguments of ``innx analyze``.

    ``invariance`` holds one run per layer, each ``RUN`` or ``LAYER=RUN`` (then the run must have
    been fitted on that layer); ``factors`` defaults to every factor of the semantic run, or
    without one to every attribute of the store. A factor is ``NAME`` or ``NAME:KIND``
    (``digit:categorical``, ``age:continuous``): it is read as the semantic run treated it (the
    kind its spec stated), else as the store recorded it, unless ``KIND`` says otherwise
    (:func:`factor_kinds`). ``rows`` are explicit store rows; without them
    ``samples`` rows are chosen from ``seed``. ``draws`` is the number of ``v`` per row for the
    shares (``M``), ``decode_draws`` the number decoded per row for preservation and *kept*;
    ``judge_steps`` and ``judge_rows`` size the judge of *kept*; ``bootstrap`` is the number of
    resamples of the rows behind each interval; ``kernels`` chooses the flows' elementwise work
    (``auto``, ``torch`` or ``triton``, :mod:`innx.kernels.dispatch`).
    """

    store: str
    invariance: tuple[str, ...]
    semantic: str | None = None
    factors: tuple[str, ...] = ()
    classifier: str | None = None
    autoencoder: str | None = None
    rows: tuple[int, ...] = ()
    samples: int = 512
    draws: int = 16
    decode_draws: int = 4
    seed: int = 0
    device: str = AUTO
    batch_size: int = BATCH
    judge_steps: int = JUDGE_STEPS  # 0: no judge, no kept
    judge_rows: int = JUDGE_ROWS
    bootstrap: int = 200  # resamples of the rows for each interval
    kernels: str = "auto"  # the flows' elementwise work: innx.kernels.dispatch

    def __post_init__(self) -> None:
        if not self.invariance:
            raise ConfigError("analyze needs at least one invariance run; pass --invariance RUN")
        for text, spec in zip(self.factors, self.factor_specs, strict=True):
            if spec.bins is not None or spec.tol is not None:
                raise ConfigError(
                    f"--factor {text!r}: analyze takes NAME, NAME:categorical or "
                    f"NAME:continuous; write {spec.name}:continuous (bins= and tol= belong to "
                    "innx fit semantic)"
                )
        if self.judge_steps < 0 or self.judge_rows < 2 or self.bootstrap < 10:
            raise ConfigError(
                "--judge-steps must be >= 0, --judge-rows >= 2 and --bootstrap >= 10, got "
                f"{self.judge_steps}, {self.judge_rows}, {self.bootstrap}"
            )
        if self.samples < 2:
            raise ConfigError(f"--samples must be at least 2, got {self.samples}")
        if self.draws < 2:
            raise ConfigError(f"--draws must be at least 2, got {self.draws}")
        if self.decode_draws < 1:
            raise ConfigError(f"--decode-draws must be at least 1, got {self.decode_draws}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be non-negative, got {self.seed}")
        check_kernels(self.kernels)
        resolve_device(self.device)  # a device this machine lacks: refused before any work

    @property
    def factor_specs(self) -> list[FactorSpec]:
        return [FactorSpec.parse(text) for text in self.factors]

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.factor_specs)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "invariance": list(self.invariance), "rows": list(self.rows)}


@dataclass(frozen=True)
class AnalyzeResult:
    """The report directory, the report (as in ``report.json``) and the files written there."""

    path: Path
    report: dict[str, Any]
    files: list[str]


def parse_invariance(spec: str) -> tuple[str, str | None]:
    """``"RUN"`` → ``(RUN, None)``; ``"LAYER=RUN"`` → ``(RUN, LAYER)`` (unless ``spec`` names an
    existing path, or its part before ``=`` holds a ``/``)."""
    layer, sep, run = spec.partition("=")
    if not sep or "/" in layer or not layer or Path(spec).exists():
        return spec, None
    if not run:
        raise ConfigError(f"--invariance {spec!r} names no run; pass LAYER=RUN or RUN")
    return run, layer


def analyze(
    options: AnalyzeOptions,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> AnalyzeResult:
    """Measure every layer of ``options`` and write the report into directory ``out``; see the
    module docstring. Refuses an existing ``out`` unless ``overwrite``."""
    from innx.ops.analyze.report import write_report

    say = log or (lambda _message: None)
    step = progress or (lambda _done, _total: None)
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
        runs = load_runs(pipe, options.invariance)
        sem = None
        if options.semantic is not None:
            sem = pipe.semantic_run(options.semantic, options.factor_names)
        e = None if sem is None else sem.flow
        factors = _factors(pipe, options, e)
        kinds = factor_kinds(options, sem)
        rows, row_info = _choose_rows(pipe, runs, options)
        say(device_line(pipe.device))
        nets = measure.networks(pipe, options.classifier, options.autoencoder is not None, say)
        zbar = torch.from_numpy(_read(pipe.store.latents, rows)).float()
        if nets.backbone is not None and nets.classifier is not None:
            nets = measure.with_reference(pipe, nets, pipe.rows(rows.tolist()).images, zbar)
        reader, no_reader = _reader(pipe, options, factors, kinds, rows, zbar, say)
        ceilings = {}
        if e is not None:
            ceilings = kept_ops.ceilings(
                pipe, e, factors, kinds, seed=options.seed, draws=options.bootstrap
            )
        say(
            f"analyzing {len(runs)} layers on {len(rows)} rows ({row_info['held_out']} held out), "
            f"{options.draws} draws of v each"
        )
        measure_layer = LayerMeasure(pipe, options, e, factors, nets, reader)
        layers = []
        for done, run in enumerate(runs):
            layers.append(measure_layer(run, rows, zbar))
            step(done + 1, len(runs))
            say(_summary_line(layers[-1]))
        checks = _checks(sem, factors, nets, reader, layers)
        swaps = interventions_ops.report_entry(
            pipe, e, factors, kinds, rows, zbar, nets, classifier_run=options.classifier,
            seed=options.seed, draws=options.bootstrap, say=say,
        )  # fmt: skip
        parts = Parts(e, factors, row_info, nets, reader, no_reader, ceilings, checks, swaps)
        store = {
            "path": str(pipe.store.path),
            "fingerprint": pipe.fingerprint,
            "dataset": pipe.store.metadata.get("dataset"),  # spec, fingerprint …: innx compare
        }
        report = build_report(store, options.to_dict(), parts, layers)
        report["device"] = str(pipe.device)  # resolved; options.device keeps what was asked
    report["seconds"] = time.perf_counter() - started
    files = _write_atomically(out, overwrite, lambda tmp: write_report(report, tmp))
    return AnalyzeResult(out, report, files)


def _summary_line(layer: dict[str, Any]) -> str:
    shown = ", ".join(f"{k} {v:.2f}" for k, v in layer["share"].items())
    kept = ", ".join(f"{k} {v['value']:.2f}" for k, v in (layer["kept"] or {}).items())
    return f"{layer['layer']}: share explained {shown}" + (f"; kept {kept}" if kept else "")


def _factors(pipe: Pipeline, options: AnalyzeOptions, e: SemanticFlow | None) -> list[str]:
    """The named concepts: ``--factor``, or e's factors, or every attribute of the store."""
    names = list(options.factor_names)
    if e is not None:
        return names or list(e.factor_names)
    known = pipe.store.attribute_names
    missing = [f for f in names if f not in known]
    if missing:
        raise ConfigError(
            f"{pipe.store.path} has no attribute {', '.join(map(repr, missing))}; its "
            f"attributes are: {', '.join(known) or 'none'}"
        )
    return names or list(known)


def factor_kinds(options: AnalyzeOptions, sem: SemanticRun | None) -> dict[str, AttributeKind]:
    """The kinds stated for factors, which override the store's: those the semantic run's
    factor specs stated (its ``fit.factors``, so that kept and the ceilings read a factor as
    ``e`` was fitted to it), then ``--factor NAME:KIND``. A factor not named here is read as the
    store recorded it."""
    stated = [] if sem is None or sem.inputs.fit is None else sem.inputs.fit.get("factors", [])
    specs = [FactorSpec.parse(str(text)) for text in stated] + options.factor_specs
    return {spec.name: spec.stated_kind for spec in specs if spec.stated_kind is not None}


def _reader(
    pipe: Pipeline,
    options: AnalyzeOptions,
    factors: list[str],
    kinds: dict[str, AttributeKind],
    rows: np.ndarray,
    zbar: torch.Tensor,
    say: Callable[[str], None],
) -> tuple[kept_ops.Reader | None, str | None]:
    """The judge behind *kept*, or why there is none."""
    judged = [f for f in factors if f in pipe.store.attribute_names]
    if not judged:
        return None, "no named factor has values in the store"
    if options.judge_steps == 0:
        return None, "skipped (--judge-steps 0)"
    if pipe.store.images is None:
        return None, "the store has no images to train the judge on; extract with --store-images"
    try:
        recon = pipe.decode(zbar)
    except InnxError as err:
        return None, f"the autoencoder is unavailable: {first_line(err)}"
    reader = kept_ops.train_reader(
        pipe, judged, kinds, rows, recon, steps=options.judge_steps, max_rows=options.judge_rows,
        seed=options.seed, say=say,
    )  # fmt: skip
    return reader, None


def _checks(
    sem: SemanticRun | None,
    factors: list[str],
    nets: Networks,
    reader: kept_ops.Reader | None,
    layers: list[dict[str, Any]],
) -> list[checks_ops.Check]:
    """Every check of the fits behind the figures (:mod:`innx.ops.analyze.checks`)."""
    agreement = None
    if layers and layers[0]["preservation"] is not None:
        agreement = layers[0]["preservation"].get("agreement_reconstructions")
    checks = checks_ops.autoencoder_checks(agreement, reader)
    chance = math.nan
    if nets.reference is not None:
        chance = chance_agreement(nets.reference)
    for layer in layers:
        checks += checks_ops.t_checks(
            layer["layer"], layer["preservation"], layer["invariances"], chance
        )
    if sem is not None:
        checks += checks_ops.e_checks(sem.metrics, factors)
    return checks


def _check_output(out: Path, overwrite: bool) -> None:
    check_output_folder(out, overwrite, REPORT_JSON, "report of innx analyze")


def _write_atomically(out: Path, overwrite: bool, write: Callable[[Path], list[str]]) -> list[str]:
    return atomic_folder(out, overwrite, REPORT_JSON, "report of innx analyze", write)


def _read(dataset: Any, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (any order, repeats allowed) of an HDF5 dataset."""
    unique, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(dataset[unique])[inverse]


def load_runs(pipe: Pipeline, specs: Sequence[str]) -> list[InvarianceRun]:
    """The invariance runs ``specs`` (``RUN`` or ``LAYER=RUN``) on ``pipe``'s store, one per
    layer (analyze's and attack's ``--invariance``)."""
    runs = [pipe.invariance(*parse_invariance(spec)) for spec in specs]
    seen: dict[str, Path] = {}
    for run in runs:
        if run.layer in seen:
            raise RunError(
                f"{seen[run.layer]} and {run.path} are both fitted on layer {run.layer}; "
                "pass one invariance run per layer"
            )
        seen[run.layer] = run.path
    return runs


def _choose_rows(
    pipe: Pipeline, runs: list[InvarianceRun], options: AnalyzeOptions
) -> tuple[np.ndarray, dict[str, Any]]:
    """The rows to analyze (sorted) and how they were chosen: rows held out by every run's fit
    first, in a seeded order, then the others. A run that does not record its split (one not
    written by ``innx fit``) holds out no known rows."""
    index = pipe.store.index
    held = np.flatnonzero(index != -1)
    for run in runs:
        split = run.inputs.split
        val = np.zeros(0, np.int64) if split is None else split_store_rows(index, *split)[1]
        held = np.intersect1d(held, val)
    if options.rows:
        rows = pipe.check_rows(options.rows)
        chosen = "given"
    else:
        valid = np.flatnonzero(index != -1)
        rng = np.random.default_rng([options.seed, 7])
        order = np.concatenate([rng.permutation(held), rng.permutation(np.setdiff1d(valid, held))])
        rows = np.sort(order[: options.samples])
        chosen = f"by seed {options.seed}, held-out rows first"
    if len(np.unique(rows)) < 2:
        raise ConfigError("analyze needs at least two different rows; pass more --rows")
    count = int(np.isin(rows, held).sum())
    return rows, {"count": len(rows), "held_out": count, "chosen": chosen}
