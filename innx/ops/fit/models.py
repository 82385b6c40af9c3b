"""Save a model of :mod:`innx.flows` to a run directory and load it back, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from innx.errors import RunError
from innx.flows import CONFIGS, MODELS, InvarianceFlow, SemanticFlow
from innx.store.runs import RunFiles, build_from_config, read_run, write_run

Model = InvarianceFlow | SemanticFlow


def save_model(model: Model, run_dir: str | Path, **manifest: Any) -> Path:
    """Write ``model`` to ``run_dir``; ``manifest`` takes ``inputs`` (a
    :class:`~innx.store.runs.RunInputs`), ``seed``, ``metrics``, ``command``, ``extra``."""
    return write_run(run_dir, model.state_dict(), model.kind, model.config.to_dict(), **manifest)


def load_model(
    run_dir: str | Path, expected_kind: str | None = None, *, kernels: str | None = None
) -> Model:
    """Rebuild the model of a run directory in eval mode, after checking its weights' sha256.

    The model runs with the kernels its config records (``auto`` for runs saved before the choice
    was recorded), or with ``kernels`` when given.
    """
    return model_of_run(read_run(run_dir), expected_kind, kernels=kernels)


def model_of_run(
    run: RunFiles, expected_kind: str | None = None, *, kernels: str | None = None
) -> Model:
    """The model of a run already read and verified (:func:`~innx.store.runs.read_run`), as
    :func:`load_model` rebuilds it: for a caller that needs the run's manifest too."""
    if run.kind not in MODELS:
        raise RunError(
            f"{run.path} holds a model of unknown kind {run.kind!r}; expected one of {sorted(MODELS)}"
        )
    if expected_kind is not None and run.kind != expected_kind:
        raise RunError(
            f"{run.path} holds a {run.kind} model, but a model of kind {expected_kind!r} is needed here"
        )
    model: nn.Module = build_from_config(
        run, lambda: MODELS[run.kind](CONFIGS[run.kind].from_dict(run.config)), f"{run.kind} model"
    )
    try:
        model.load_state_dict(run.tensors, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RunError(f"the weights in {run.path} do not fit its config.json: {first}") from err
    if kernels is not None:
        model.with_kernels(kernels)  # type: ignore[operator]
    return model.eval()  # type: ignore[return-value]
