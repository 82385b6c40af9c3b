"""``analyze``: its estimators on constructed tensors, its numbers on real fits where the answer is
known (a layer equal to the code explains everything, a constant layer nothing), the report's
files, and its refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from innx.errors import ConfigError, RunError, ShapeError
from innx.ops.analyze.analysis import AnalyzeOptions, analyze, parse_invariance
from innx.ops.analyze.stats import explained_share, independence, v_statistics
from innx.ops.fit.invariance import InvarianceFit, fit_invariance
from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic

LAYERS = ("identity", "a_only", "constant")

# -- the estimators ------------------------------------------------------------------------------


def test_share_is_one_when_the_row_decides_and_zero_when_the_draw_does():
    gen = torch.Generator().manual_seed(0)
    per_row = torch.randn(50, 1, 3, generator=gen, dtype=torch.float64)
    assert explained_share(per_row.expand(50, 8, 3)).share == pytest.approx(1.0, abs=1e-12)
    per_draw = torch.randn(1, 8, 3, generator=gen, dtype=torch.float64)
    decided_by_v = explained_share(per_draw.expand(50, 8, 3))
    assert decided_by_v.share == 0.0 and decided_by_v.between < 0  # clipped at 0


def test_share_of_a_known_mix_with_the_finite_draw_correction():
    # x = a_n + b_m: between-row variance var(a), within-row variance var(b) (unbiased)
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(40, 1, 2, generator=gen, dtype=torch.float64)
    b = 0.5 * torch.randn(1, 6, 2, generator=gen, dtype=torch.float64)
    found = explained_share(a + b)
    var_a, var_b = a.squeeze(1).var(0).sum(), b.squeeze(0).var(0).sum()
    assert found.within == pytest.approx(float(var_b), rel=1e-12)
    assert found.between == pytest.approx(float(var_a - var_b / 6), rel=1e-12)
    assert found.share == pytest.approx(float((var_a - var_b / 6) / (var_a - var_b / 6 + var_b)))
    # independent draws: variance 2 from z, 1 from v; only 2 draws per row, so the uncorrected
    # ratio would be about (2 + 1/2) / 3 = 0.83 instead of 2/3
    x = 2**0.5 * torch.randn(20000, 1, 1, generator=gen) + torch.randn(20000, 2, 1, generator=gen)
    assert explained_share(x).share == pytest.approx(2 / 3, abs=0.02)


def test_share_of_a_constant_or_empty_block_is_nan_and_bad_shapes_are_refused():
    assert math.isnan(explained_share(torch.ones(5, 4, 2)).share)
    assert math.isnan(explained_share(torch.ones(5, 4, 0)).share)
    for shape in [(5, 4), (1, 4, 2), (5, 1, 2)]:
        with pytest.raises(ShapeError):
            explained_share(torch.zeros(shape))


def test_v_statistics_and_independence():
    gen = torch.Generator().manual_seed(2)
    v = torch.randn(4000, 4, generator=gen)
    stats = v_statistics(v)
    assert stats["mean_abs_max"] < 0.1 and 0.9 < stats["std_min"] <= stats["std_max"] < 1.1
    assert stats["skew_abs_max"] < 0.2 and abs(stats["kurtosis_mean"]) < 0.2
    skewed = v_statistics(torch.randn(4000, 4, generator=gen).exp())
    assert skewed["skew_abs_mean"] > 1 and skewed["kurtosis_mean"] > 1
    z = torch.randn(600, 3, 8, 8, generator=gen)
    free = independence(torch.randn(600, 4, generator=gen), z)
    assert abs(free["r2"]) < 0.05 and abs(free["r2_shuffled"]) < 0.05
    tied = independence(z.flatten(1)[:, :4] + 0.1 * torch.randn(600, 4, generator=gen), z)
    assert tied["r2"] > 0.9 and abs(tied["r2_shuffled"]) < 0.05
    constant = independence(torch.randn(600, 4, generator=gen), torch.ones(600, 5))
    assert abs(constant["r2"]) < 0.05


def test_parse_invariance(tmp_path):
    assert parse_invariance("runs/inv") == ("runs/inv", None)
    assert parse_invariance("pool=runs/inv") == ("runs/inv", "pool")
    odd = tmp_path / "a=b"
    odd.mkdir()
    assert parse_invariance(str(odd)) == (str(odd), None)
    with pytest.raises(ConfigError, match="names no run"):
        parse_invariance("pool=")


def test_a_run_with_a_missing_or_corrupt_manifest_is_refused(make_store, tmp_path):
    from innx.flows import InvarianceConfig, InvarianceFlow
    from innx.ops.fit.models import save_model
    from innx.store import ActivationStore
    from innx.store.runs import RunInputs, StoreInput

    store = make_store(tmp_path / "acts.h5", n=64)
    with ActivationStore(store) as acts:
        recorded = StoreInput(str(store), acts.fingerprint(), layer="fc")
    run = tmp_path / "inv"
    t = InvarianceFlow(InvarianceConfig.preset("small", 6, (8,), n_blocks=1, width=8))
    save_model(t, run, inputs=RunInputs(store=recorded, fit={"val_fraction": 0.25, "seed": 0}))
    quick = AnalyzeOptions(str(store), (str(run),), samples=8, draws=2, judge_steps=0)
    report = analyze(quick, tmp_path / "first").report
    assert report["rows"]["held_out"] == 8  # the split its manifest records: held-out rows first
    manifest = run / "manifest.json"
    manifest.write_text(manifest.read_text()[:-20])
    with pytest.raises(RunError, match=r"manifest\.json is not valid JSON .*re-run the fit"):
        analyze(quick, tmp_path / "report")
    manifest.unlink()
    with pytest.raises(RunError, match=r"is not a finished run .*resume or re-run it"):
        analyze(quick, tmp_path / "report")
    assert not (tmp_path / "report").exists()


# -- known answers on real fits ------------------------------------------------------------------


def write_known_store(path: Path, n: int = 3000, seed: int = 0) -> tuple[Path, np.ndarray]:
    """Latents ``zbar = Q · [a-code (2), b-code (2), noise (2)]`` (``Q`` orthogonal) and three
    layers: ``identity`` (``zbar`` itself), ``a_only`` (the a-code: a 2-d part of the code) and
    ``constant`` (zeros). Returns the store and the unrotated code."""
    from innx.data.base import Attribute
    from innx.store import LayerSpec, StoreLayout, StoreWriter

    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, n), rng.integers(0, 3, n)
    a_code = np.array([[1.5, 0], [-1.5, 0], [0, 1.5], [0, -1.5]])[a]
    b_code = np.array([[1.5, 0], [-0.75, 1.3], [-0.75, -1.3]])[b]
    code = np.concatenate([a_code, b_code, rng.normal(size=(n, 2))], axis=1)
    code = (code + 0.1 * rng.normal(size=(n, 6))).astype(np.float32)
    zbar = (code @ np.linalg.qr(rng.normal(size=(6, 6)))[0].T).astype(np.float32)
    layout = StoreLayout(
        n=n,
        layers=(
            LayerSpec("identity", "identity", (6,)),
            LayerSpec("a_only", "a_only", (2,)),
            LayerSpec("constant", "constant", (6,)),
        ),
        attributes=(
            Attribute("a", "categorical", ("a0", "a1", "a2", "a3")),
            Attribute("b", "categorical", ("b0", "b1", "b2")),
        ),
        has_labels=True,
        latent_dim=6,
    )
    layers = {"identity": zbar, "a_only": code[:, :2], "constant": np.zeros_like(zbar)}
    with StoreWriter.create(path, layout) as writer:
        writer.write(
            np.arange(n),
            index=np.arange(n),
            labels=a,
            attributes=np.stack([a, b], axis=1).astype(np.float32),
            layers=layers,
            latents=zbar,
        )
        writer.finish()
    return path, code


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    """The known store, ``t`` fitted on each of its layers and ``e`` on factors a and b."""
    root = tmp_path_factory.mktemp("known")
    store, code = write_known_store(root / "acts.h5")
    quick = {"steps": 300, "batch_size": 64, "warmup": 20, "checkpoint_every": 1000}
    runs = {}
    for layer in LAYERS:
        runs[layer] = root / f"inv-{layer}"
        fit_invariance(InvarianceFit(store=str(store), layer=layer, **quick), runs[layer])
    semantic = root / "sem"
    fit_semantic(SemanticFit(store=str(store), factors=("a", "b"), dims=(2, 2), **quick), semantic)
    return {"root": root, "store": store, "code": code, "runs": runs, "semantic": semantic}


def options(known, **kw):
    args = {"samples": 256, "draws": 8, **kw}
    runs = tuple(str(known["runs"][layer]) for layer in LAYERS)
    return AnalyzeOptions(store=str(known["store"]), invariance=runs, **args)


def shares(report):
    """``share_explained`` as plain numbers, layer → column → value."""
    return {
        layer: {column: cell["value"] for column, cell in cells.items()}
        for layer, cells in report["share_explained"].items()
    }


def test_identity_explains_every_concept_and_a_constant_layer_none(known, tmp_path):
    result = analyze(options(known, semantic=str(known["semantic"])), tmp_path / "report")
    share = shares(result.report)
    assert list(share) == list(LAYERS) and result.report["factors"] == ["a", "b", "residual"]
    # measured: identity 0.97-0.99, constant 0.00-0.005, a_only a 0.99 / b, residual < 0.03
    assert all(value >= 0.9 for value in share["identity"].values()), share
    assert all(value <= 0.05 for value in share["constant"].values()), share
    assert share["a_only"]["a"] >= 0.9, share
    assert share["a_only"]["b"] <= 0.1 and share["a_only"]["residual"] <= 0.1, share
    for layer in LAYERS:  # t is trained to make v independent of z
        found = result.report["invariances"][layer]
        assert found["r2_from_z"] < 0.15 and abs(found["r2_from_shuffled_z"]) < 0.1, found
        assert found["std_max"] < 1.5
    kept = result.report["preservation"]
    assert not kept["available"] and "autoencoder" in kept["reason"]
    # every figure carries its interval and verdict; the ceilings are e's blocks over the store
    for layer, cells in result.report["share_explained"].items():
        for column, cell in cells.items():
            low, high = cell["interval"]
            assert low <= cell["value"] + 1e-9 and cell["value"] <= high + 1e-9, (layer, column)
            assert cell["verdict"] in ("sound", "doubtful", "not interpretable")
    ceilings = result.report["ceilings"]
    assert set(ceilings) == {"a", "b"} and all(c["value"] > 0.8 for c in ceilings.values())
    identity = result.report["share_explained"]["identity"]["a"]
    assert identity["of_ceiling"] == pytest.approx(identity["value"] / ceilings["a"]["value"])
    assert not result.report["kept"]["available"]  # no images to train a judge on
    assert "no images" in result.report["kept"]["reason"]


def test_without_e_the_share_is_the_codes_and_the_report_is_complete(known, tmp_path):
    out = tmp_path / "report"
    result = analyze(options(known), out)
    share = {layer: v["zbar"] for layer, v in shares(result.report).items()}
    # Q is orthogonal: a_only explains the a-code's share of the code's total variance
    code = known["code"]
    expected = code[:, :2].var(0).sum() / code.var(0).sum()  # about 0.35; measured 0.37
    assert share["identity"] >= 0.9 and share["constant"] <= 0.05, share
    assert share["a_only"] == pytest.approx(expected, abs=0.07), share
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(result.files)
    assert files == ["layers.png", "report.html", "report.json", "report.md", "share.png"]
    report = json.loads((out / "report.json").read_text())
    for key in ("share_explained", "preservation", "invariances", "details", "rows", "options"):
        assert key in report
    assert report["rows"] == {"count": 256, "held_out": 256, "chosen": report["rows"]["chosen"]}
    assert report["details"]["a_only"]["variance"]["zbar"]["total"] > 0
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and 'src="share' not in page
    assert "| identity |" in (out / "report.md").read_text()
    assert report["interventions"]["reason"].startswith("no semantic run")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp directory


def test_the_output_is_refused_without_overwrite_and_replaced_with_it(known, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    quick = options(known, samples=16, draws=2)
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        analyze(quick, out)
    with pytest.raises(ConfigError, match="not a report"):
        analyze(quick, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    analyze(quick, out, overwrite=True)
    analyze(quick, out, overwrite=True)  # a report replaces a report
    assert (out / "report.json").is_file() and not (out / "keep.txt").exists()


def test_rows_and_runs_are_checked(known, tmp_path):
    out = tmp_path / "report"
    with pytest.raises(ConfigError, match="row 5000 is out of range"):
        analyze(options(known, rows=(0, 5000)), out)
    with pytest.raises(RunError, match="fitted on layer identity, not constant"):
        runs = (f"constant={known['runs']['identity']}",)
        analyze(AnalyzeOptions(str(known["store"]), runs), out)
    with pytest.raises(RunError, match="both fitted on layer identity"):
        twice = (str(known["runs"]["identity"]),) * 2
        analyze(AnalyzeOptions(str(known["store"]), twice), out)
    with pytest.raises(RunError, match="has no factor 'c'; its factors: a, b"):
        analyze(options(known, semantic=str(known["semantic"]), factors=("a", "c")), out)
    with pytest.raises(ConfigError, match="has no attribute 'c'; its attributes are: a, b"):
        analyze(options(known, factors=("a", "c")), out)  # without e: the store's attributes
    assert not out.exists()
    given = analyze(options(known, rows=(3, 1, 2, 2), draws=2), out).report
    assert given["rows"]["count"] == 4 and given["rows"]["chosen"] == "given"


def test_factor_kinds_are_e_s_stated_ones_then_those_of_factor(tmp_path):
    """A factor is read as e's fit stated it (``digit:categorical``; ``bins=`` means
    continuous), unless ``--factor NAME:KIND`` says otherwise; others as the store recorded."""
    from innx.ops.analyze.analysis import factor_kinds
    from innx.ops.pipeline import SemanticRun
    from innx.store.runs import RunInputs

    fit = {"factors": ["digit:categorical", "scale:bins=4", "shape"]}
    sem = SemanticRun(tmp_path, None, RunInputs(fit=fit), {})  # type: ignore[arg-type]
    given = AnalyzeOptions("s.h5", ("run",), factors=("scale:categorical", "age:continuous"))
    assert given.factor_names == ("scale", "age")
    stated = {"digit": "categorical", "scale": "categorical", "age": "continuous"}
    assert factor_kinds(given, sem) == stated
    assert factor_kinds(AnalyzeOptions("s.h5", ("run",)), sem) == {
        "digit": "categorical", "scale": "continuous",
    }  # fmt: skip
    assert factor_kinds(AnalyzeOptions("s.h5", ("run",)), None) == {}
    with pytest.raises(ConfigError, match="analyze takes NAME, NAME:categorical or NAME:cont"):
        AnalyzeOptions("s.h5", ("run",), factors=("scale:bins=4",))
    with pytest.raises(ConfigError, match="unknown kind 'ordinal' for 'digit'"):
        AnalyzeOptions("s.h5", ("run",), factors=("digit:ordinal",))


# -- preservation, on a trained pipeline ---------------------------------------------------------


def test_preservation_on_a_pipeline_with_a_classifier(tiny_pipeline, tmp_path):
    p = tiny_pipeline
    runs = (str(p.invariance["logits"]), f"input={p.invariance['input']}")
    opts = AnalyzeOptions(
        str(p.store),
        runs,
        semantic=str(p.semantic),
        classifier=str(p.classifier),
        samples=24,
        draws=3,
        decode_draws=2,
        judge_steps=100,
    )
    result = analyze(opts, tmp_path / "report")
    report = result.report
    assert report["layers"] == ["logits", "input"]  # in the order given
    assert report["factors"] == ["shape", "fg_color", "bg_color", "residual"]
    kept = report["preservation"]
    assert kept["available"] and kept["reference"] == "images", kept
    for layer in ("logits", "input"):
        figures = kept["layers"][layer]
        for key in ("cosine_samples", "cosine_reconstructions", "cosine_shuffled"):
            assert -1.0 <= figures[key] <= 1.0
        for key in ("agreement_samples", "agreement_reconstructions"):
            assert 0.0 <= figures[key] <= 1.0
    assert "preservation.png" in result.files and "kept.png" in result.files
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    # kept: a judge of the store's attributes, a figure per layer and factor with its interval
    kept = report["kept"]
    assert kept["available"] and list(kept["judge"]["factors"]) == ["shape", "fg_color", "bg_color"]
    for layer in ("logits", "input"):
        for cell in kept["layers"][layer].values():
            assert cell["measure"] == "accuracy" and 0 <= cell["samples"] <= 1
            assert cell["interval"][0] <= cell["interval"][1]
    # the tiny pipeline's autoencoder trained 20 steps: every figure is marked, never a finding
    checks = {c["name"]: c for c in report["diagnostics"]["checks"]}
    assert checks["autoencoder keeps the classifier"]["verdict"] == "not interpretable"
    counts = report["diagnostics"]["counts"]
    assert counts["not interpretable"] == sum(counts.values())
    text = (tmp_path / "report" / "report.md").read_text()
    assert text.index("## Verdicts") < text.index("## Kept") < text.index("## Share")
    kept_section = text[text.index("## Kept") : text.index("## Kept: the judge")]
    rows = [line for line in kept_section.splitlines() if line.startswith(("| logits", "| input"))]
    cells = [cell.strip() for row in rows for cell in row.strip("|").split("|")[1:]]
    assert len(cells) == 6 and all(cell.endswith("✗") for cell in cells)  # 2 layers × 3 factors
    assert 'class="not-interpretable"' in page
    # interventions: per factor of e and for the residual, a share of the 24 rows with its
    # interval, marked like every figure that rests on the failed autoencoder
    swaps = report["interventions"]
    assert swaps["available"] and list(swaps["factors"]) == ["shape", "fg_color", "bg_color"]
    for cell in [*swaps["factors"].values(), swaps["residual"]]:
        effect, (low, high) = cell["effect"]["value"], cell["effect"]["interval"]
        assert 0.0 <= low <= effect <= high <= 1.0 and cell["n"] == 24, cell
        assert 0.0 <= cell["follows_donor"] <= 1.0
        assert cell["effect"]["verdict"] == "not interpretable"
    title = "## Concept interventions: how often swapping a concept changes the classifier's"
    assert text.index("## Share") < text.index(title) < text.index("## Preservation")
    assert "| residual (control) |" in text and "Concept interventions" in page
