"""The two models of the method: t (InvarianceFlow) and e (SemanticFlow), on random weights."""

from __future__ import annotations

import pytest
import torch
from flows.blocks import randomize

from innx.errors import ConfigError, ShapeError
from innx.flows import (
    InvarianceConfig,
    InvarianceFlow,
    SemanticConfig,
    SemanticFlow,
    SpatialEmbedder,
    VectorEmbedder,
    invariance_nll,
    semantic_pair_nll,
)

COND_SHAPES = [(10,), (6, 8, 8), (7, 1, 1)]


def small_t(cond_shape, zbar_dim: int = 6, seed: int = 0) -> InvarianceFlow:
    config = InvarianceConfig.preset("small", zbar_dim, cond_shape, n_blocks=3, width=16)
    return randomize(InvarianceFlow(config), seed, scale=0.3).double().eval()


def data(zbar_dim: int, cond_shape, batch: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    zbar = torch.randn(batch, zbar_dim, generator=generator, dtype=torch.float64)
    z = torch.randn(batch, *cond_shape, generator=generator, dtype=torch.float64)
    return zbar, z


def test_presets_follow_the_paper() -> None:
    t = InvarianceConfig.preset("paper", 128, (4096,))
    assert (t.n_blocks, t.width, t.depth, t.resolved_embed_dim) == (20, 1024, 2, 128)
    e = SemanticConfig.preset("paper", 128, {"a": 10})
    assert (e.n_blocks, e.width, e.depth) == (12, 512, 2)
    with pytest.raises(ConfigError, match="choose one of: paper, small"):
        InvarianceConfig.preset("huge", 128, (4096,))


@pytest.mark.parametrize("cond_shape", COND_SHAPES, ids=str)
def test_invariance_flow_inverts_and_logdet_matches_jacobian(cond_shape) -> None:
    t = small_t(cond_shape)
    zbar, z = data(6, cond_shape)
    v, logdet = t(zbar, z)
    torch.testing.assert_close(t.inverse(v, z), zbar, rtol=1e-10, atol=1e-10)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(
            lambda x, i=i: t(x[None], z[i : i + 1])[0][0], zbar[i]
        )
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jac)[1])


@pytest.mark.parametrize("cond_shape", COND_SHAPES, ids=str)
def test_invariance_flow_trains_every_parameter_including_the_embedder(cond_shape) -> None:
    t = small_t(cond_shape).train()
    zbar, z = data(6, cond_shape, batch=16)
    invariance_nll(*t(zbar, z)).backward()
    missing = [
        name for name, p in t.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
    ]
    assert missing == []


def test_embedder_is_chosen_from_the_condition_shape() -> None:
    assert isinstance(small_t((10,)).embedder, VectorEmbedder)
    assert isinstance(small_t((7, 1, 1)).embedder, VectorEmbedder)
    assert isinstance(small_t((6, 8, 8)).embedder, SpatialEmbedder)


def test_samples_depend_on_the_condition_and_are_reproducible() -> None:
    t = small_t((10,))
    _, z = data(6, (10,), batch=8)
    a = t.sample(z, generator=torch.Generator().manual_seed(0))
    b = t.sample(z, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.shape == (8, 6)
    # v = 0 maps to different codes for different z: the condition matters
    zero = t.inverse(torch.zeros(8, 6, dtype=torch.float64), z)
    assert not torch.allclose(zero[0], zero[1])


def test_invariance_flow_rejects_bad_input() -> None:
    t = small_t((10,))
    zbar, z = data(6, (10,))
    with pytest.raises(ShapeError, match=r"condition z must have shape \(4, 10\)"):
        t(zbar, z[:, :9])
    with pytest.raises(ShapeError, match=r"condition z must have shape \(4, 10\)"):
        t(zbar, z[:3])
    with pytest.raises(ShapeError, match=r"zbar must have shape \(batch, 6\)"):
        t(zbar[:, :5], z)
    bad = zbar.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ShapeError, match="non-finite"):
        t(bad, z)
    z_bad = z.clone()
    z_bad[0, 0] = float("inf")
    with pytest.raises(ShapeError, match="condition z holds 1 non-finite"):
        t.inverse(zbar, z_bad)


def test_build_time_errors() -> None:
    with pytest.raises(ConfigError, match="needs dim >= 2"):
        InvarianceFlow(InvarianceConfig.preset("small", 1, (10,)))
    with pytest.raises(ShapeError, match=r"vector \(C,\) or a feature map \(C, H, W\)"):
        InvarianceFlow(InvarianceConfig.preset("small", 6, (4, 5)))
    with pytest.raises(ShapeError, match="too small for a conv embedder"):
        SpatialEmbedder((8, 3, 3), 16, n_down=2)
    with pytest.raises(ConfigError, match="more than dim=8"):
        SemanticConfig(dim=8, factors={"a": 5, "b": 4})
    with pytest.raises(ConfigError, match="not 'residual'"):
        SemanticConfig(dim=8, factors={"residual": 2})


def small_e(seed: int = 0) -> SemanticFlow:
    config = SemanticConfig.preset("small", 7, {"shape": 2, "colour": 3}, n_blocks=3, width=16)
    return randomize(SemanticFlow(config), seed, scale=0.3).double().eval()


def test_semantic_flow_split_merge_and_inverse() -> None:
    e = small_e()
    zbar = torch.randn(5, 7, dtype=torch.float64)
    zhat, logdet = e(zbar)
    factors = e.split(e(zbar))
    assert list(factors) == ["shape", "colour", "residual"]
    assert [f.shape[1] for f in factors.values()] == [2, 3, 2]
    assert torch.equal(e.merge(factors), zhat)
    torch.testing.assert_close(e.inverse(zhat), zbar, rtol=1e-10, atol=1e-10)
    jac = torch.autograd.functional.jacobian(lambda x: e(x[None])[0][0], zbar[0])
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac)[1])


def test_semantic_flow_swapping_a_factor_changes_only_that_block() -> None:
    e = small_e()
    a, b = (
        e.split(e(torch.randn(1, 7, dtype=torch.float64))),
        e.split(e(torch.randn(1, 7, dtype=torch.float64))),
    )
    swapped = {**a, "colour": b["colour"]}
    back = e.split(e(e.inverse(e.merge(swapped))))
    torch.testing.assert_close(back["colour"], b["colour"])
    torch.testing.assert_close(back["shape"], a["shape"])


def test_semantic_flow_merge_names_what_is_missing() -> None:
    e = small_e()
    factors = e.split(e(torch.randn(2, 7, dtype=torch.float64)))
    del factors["colour"]
    with pytest.raises(ShapeError, match=r"missing \['colour'\]"):
        e.merge(factors)


def test_semantic_flow_trains_every_parameter() -> None:
    e = small_e().train()
    za, zb = torch.randn(16, 7, dtype=torch.float64), torch.randn(16, 7, dtype=torch.float64)
    factor = torch.randint(-2, 3, (16,))
    (zhat_a, ld_a), (zhat_b, ld_b) = e(za), e(zb)
    sizes = list(e.config.block_sizes.values())
    semantic_pair_nll(zhat_a, ld_a, zhat_b, ld_b, factor, sizes).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in e.parameters())


def test_configs_survive_a_json_round_trip() -> None:
    import json

    t = InvarianceConfig(zbar_dim=4, cond_shape=[3, 8, 8], n_blocks=2)  # a list, as JSON gives
    assert InvarianceConfig.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    assert t.cond_shape == (3, 8, 8)
    e = SemanticConfig.preset("small", 8, {"b": 2, "a": 3})
    back = SemanticConfig.from_dict(json.loads(json.dumps(e.to_dict())))
    assert back == e and list(back.factors) == ["b", "a"]
