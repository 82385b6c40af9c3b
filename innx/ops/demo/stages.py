"""The demo's stages, each bound to its output path (see :mod:`innx.ops.demo.runner` for the table)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from innx.device import AUTO, resolve_device
from innx.ops.demo.plan import FACTORS, DemoPlan
from innx.store.runs import MANIFEST


@dataclass(frozen=True)
class Stage:
    """One step of the demo: its output path, whether that output is complete, and how to make
    it (``make(resume)``; ``resume`` is true when an unfinished output is there to continue)."""

    name: str
    output: Path
    complete: Callable[[], bool]
    make: Callable[[bool], Any]
    partial: Callable[[], bool] = lambda: False


def _fit_invariance(fit: Any, out: Path, log: Callable[[str], None] | None, resume: bool) -> Any:
    from innx.ops.fit.invariance import fit_invariance

    return fit_invariance(fit, out, resume=resume, log=log)


def _run_done(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def _run_partial(path: Path) -> bool:
    from innx.train.checkpoints import has_checkpoint
    from innx.train.run_dir import RESUME_DIR

    return has_checkpoint(path / RESUME_DIR)


def _store_state(path: Path) -> str:
    """``complete``, ``partial`` or ``missing``."""
    if not path.is_file():
        return "missing"
    import h5py

    try:
        with h5py.File(path, "r", locking=False) as f:
            return "complete" if bool(f.attrs.get("complete", False)) else "partial"
    except OSError:
        return "partial"  # extract refuses it on resume with a message that says why


def demo_stages(
    out: Path, plan: DemoPlan, log: Callable[[str], None] | None, *, device: str = AUTO
) -> list[Stage]:
    """The demo's stages in order, bound to ``out`` and ``plan``, every one on ``device``."""
    from innx.ops.data.folders import write_shapes_folder
    from innx.ops.extract.extraction import ExtractOptions, extract
    from innx.ops.fit.autoencoder import AutoencoderFit, fit_autoencoder
    from innx.ops.fit.classifier import ClassifierFit, fit_classifier
    from innx.ops.fit.invariance import InvarianceFit
    from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic

    # On a GPU the small eager steps of the autoencoder and the flows wait on kernel launches,
    # not on the GPU: replayed from one CUDA graph they run several times faster
    # (benchmarks/kernels.py), as the fits do with --cuda-graph.
    cuda_graph = resolve_device(device).type == "cuda"
    clf, ae, store, sem = out / "clf", out / "ae", out / "acts.h5", out / "sem"
    images = out / "images"

    def run_stage(name: str, path: Path, fit: Callable[[bool], Any]) -> Stage:
        return Stage(name, path, lambda: _run_done(path), fit, lambda: _run_partial(path))

    stages = [
        Stage(
            "data",
            images,
            images.is_dir,
            lambda _resume: write_shapes_folder(images, n=8, size=plan.size, seed=plan.seed + 1),
        ),
        run_stage(
            "classifier",
            clf,
            lambda resume: fit_classifier(
                ClassifierFit(
                    plan.data, steps=plan.classifier_steps, seed=plan.seed, device=device
                ),
                clf, resume=resume, log=log,
            ),
        ),
        run_stage(
            "autoencoder",
            ae,
            lambda resume: fit_autoencoder(
                AutoencoderFit(
                    plan.data, latent_dim=plan.latent_dim, epochs=plan.autoencoder_epochs,
                    seed=plan.seed, classifier=str(clf), device=device, cuda_graph=cuda_graph,
                ),
                ae, resume=resume, log=log,
            ),
        ),
        Stage(
            "extract",
            store,
            lambda: _store_state(store) == "complete",
            lambda resume: extract(
                ExtractOptions(
                    plan.data, None, plan.layers, weights=str(clf), autoencoder=str(ae),
                    store_images=True, seed=plan.seed, device=device,
                ),
                store, resume=resume, log=log,
            ),
            lambda: _store_state(store) == "partial",
        ),
    ]  # fmt: skip
    for layer, steps in zip(plan.layers, plan.invariance_steps, strict=True):
        inv = out / f"inv-{layer}"
        fit = InvarianceFit(
            store=str(store),
            layer=layer,
            steps=steps,
            batch_size=plan.batch_size,
            seed=plan.seed,
            device=device,
            cuda_graph=cuda_graph,
        )
        stages.append(
            run_stage(
                f"invariance {layer}",
                inv,
                functools.partial(_fit_invariance, fit, inv, log),
            )
        )
    semantic = SemanticFit(
        store=str(store),
        factors=FACTORS,
        dims=plan.semantic_dims,
        swaps=plan.semantic_swaps,
        steps=plan.semantic_steps,
        batch_size=plan.batch_size,
        seed=plan.seed,
        device=device,
        cuda_graph=cuda_graph,
    )
    stages.append(
        run_stage(
            "semantic", sem, lambda resume: fit_semantic(semantic, sem, resume=resume, log=log)
        )
    )
    figures = out / "figures"
    stages.append(
        Stage(
            "render", figures, figures.is_dir, lambda _r: _render(out, plan, figures, log, device)
        )
    )
    report = out / "report"
    stages.append(
        Stage("analyze", report, report.is_dir, lambda _r: _analyze(out, plan, report, log, device))
    )
    return stages


def _analyze(
    out: Path, plan: DemoPlan, report: Path, log: Callable[[str], None] | None, device: str
) -> None:
    """The report: what each layer encodes and ignores (written whole, then renamed)."""
    from innx.ops.analyze.analysis import AnalyzeOptions, analyze

    runs = tuple(f"{layer}={out / f'inv-{layer}'}" for layer in plan.layers)
    options = AnalyzeOptions(
        store=str(out / "acts.h5"),
        invariance=runs,
        semantic=str(out / "sem"),
        samples=plan.analyze_rows,
        draws=plan.analyze_draws,
        seed=plan.seed,
        device=device,
    )
    if plan.judge_steps is not None:
        options = replace(options, judge_steps=plan.judge_steps)
    analyze(options, report, log=log)


FIGURE_ROWS = (0, 1, 2, 3, 4)


def _render(
    out: Path, plan: DemoPlan, figures: Path, log: Callable[[str], None] | None, device: str
) -> None:
    """Every kind of figure into ``figures/``, made in a sibling folder and renamed when done."""
    import shutil

    from innx.ops.render.modes import (
        AnimateRender,
        LayersRender,
        MixRender,
        SamplesRender,
        render_animate,
        render_layers,
        render_mix,
        render_samples,
    )
    from innx.ops.render.semantic import (
        InterpolateRender,
        SwapRender,
        render_interpolate,
        render_swap,
    )  # fmt: skip

    partial = figures.with_name(figures.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    store, sem = out / "acts.h5", out / "sem"
    deepest = out / f"inv-{plan.layers[-1]}"
    files = tuple(sorted((out / "images").rglob("*.png")))[:4]
    rows = FIGURE_ROWS
    render_samples(
        SamplesRender(store=store, device=device, rows=rows, invariance=deepest, samples=6),
        partial / "samples.png",
        log=log,
    )
    render_samples(
        SamplesRender(store=store, device=device, images=files, invariance=deepest, samples=6),
        partial / "samples-files.png",
        log=log,
    )
    invs = tuple(out / f"inv-{layer}" for layer in plan.layers)
    render_layers(
        LayersRender(store=store, device=device, rows=rows[:1], invariance=invs, samples=6),
        partial / "layers.png",
        log=log,
    )
    render_mix(
        MixRender(store=store, device=device, rows=rows, invariance=deepest),
        partial / "mix.png",
        log=log,
    )
    render_animate(
        AnimateRender(store=store, device=device, rows=rows[:3], invariance=deepest, frames=32),
        partial / "animate.gif",
        log=log,
    )
    for factor in FACTORS:
        render_swap(
            SwapRender(store=store, device=device, rows=rows, semantic=sem, factor=factor),
            partial / f"swap-{factor}.png",
            log=log,
        )
    render_interpolate(
        InterpolateRender(
            store=store, device=device, rows=rows[:2], semantic=sem, factor="fg_color"
        ),
        partial / "interpolate-fg_color.png",
        log=log,
    )
    render_interpolate(
        InterpolateRender(
            store=store, device=device, rows=rows[:1], semantic=sem, factor="shape", sigmas=2.0
        ),
        partial / "traverse-shape.png",
        log=log,
    )
    partial.rename(figures)
