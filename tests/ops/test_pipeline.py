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


def test_an_e_serves_every_store_with_its_latents(tiny_pipeline, tmp_path):
    """``e`` reads only the latents: a store of the same dataset and autoencoder made with another
    backbone (here a random smallcnn) uses the ``e`` fitted on the first; one of other images
    does not."""
    from tiny_pipeline import TINY

    from innx.errors import RunError
    from innx.ops.extract.extraction import ExtractOptions, extract
    from innx.ops.pipeline import Pipeline as P

    p = tiny_pipeline
    same = tmp_path / "random-backbone.h5"
    with pytest.warns(UserWarning, match="random weights"):
        extract(ExtractOptions(TINY.data, "smallcnn", ("pool",), autoencoder=str(p.autoencoder),
                               seed=TINY.seed), same)  # fmt: skip
    with P(p.store) as first, P(same) as pipe:
        assert pipe.fingerprint != first.fingerprint
        assert pipe.semantic(p.semantic).factor_names == ["shape", "fg_color", "bg_color"]
        with pytest.raises(RunError, match="was fitted on another store"):
            pipe.invariance(p.invariance["pool"])  # t reads the backbone's layer: not this one
    other = tmp_path / "other-images.h5"
    with pytest.warns(UserWarning, match="random weights"):
        extract(ExtractOptions(TINY.data.replace("seed=", "seed=1"), "smallcnn", ("pool",),
                               autoencoder=str(p.autoencoder), seed=TINY.seed), other)  # fmt: skip
    with P(other) as pipe, pytest.raises(RunError, match="nor on one with the same dataset"):
        pipe.semantic(p.semantic)
