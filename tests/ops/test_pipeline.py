"""``innx.ops.pipeline``: the kernels a loaded ``t`` and ``e`` run with: as their runs recorded,
or as chosen for this pipeline (``--kernels`` of render and analyze)."""

from __future__ import annotations

import pytest

from innx.errors import ConfigError
from innx.ops.pipeline import Pipeline


def kernels_of(model) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.kernels for m in model.modules() if hasattr(m, "kernels")}


def test_kernels_are_as_recorded_unless_chosen(tiny_pipeline):
    p = tiny_pipeline
    with Pipeline(p.store) as pipe:
        t = pipe.invariance(p.invariance["pool"]).flow
        assert t.config.kernels == "auto" and kernels_of(t) == {"auto"}  # the fit's default
    with Pipeline(p.store, kernels="torch") as pipe:
        t = pipe.invariance(p.invariance["pool"]).flow
        e = pipe.semantic(p.semantic)
        assert t.config.kernels == e.config.kernels == "torch"
        assert kernels_of(t) == kernels_of(e) == {"torch"}
    with pytest.raises(ConfigError, match="--kernels must be one of auto, torch, triton"):
        Pipeline(p.store, kernels="cuda")
