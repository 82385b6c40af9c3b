"""The checks behind analyze's verdicts, on constructed numbers: each scales to 1 for a sound fit
and 0 for a failed one, flips its verdict at its thresholds, and reaches exactly the figures that
rest on it."""

from __future__ import annotations

import math

import pytest
import torch

from innx.ops.analyze.checks import (
    BROKEN,
    DOUBTFUL,
    KEPT_PARTS,
    SHARE_PARTS,
    SOUND,
    UNCHECKED,
    Check,
    autoencoder_checks,
    e_checks,
    judge_cell,
    t_checks,
    verdicts,
)
from innx.ops.analyze.kept import Reader

GOOD_T = {
    "cosine_samples": 0.93,
    "cosine_reconstructions": 0.95,
    "cosine_shuffled": 0.4,
    "agreement_samples": 0.94,
    "agreement_reconstructions": 0.96,
}
NORMAL_V = {"mean_abs_max": 0.05, "std_min": 0.9, "std_max": 1.1}


def check(value: float, **kw) -> Check:
    args = {"name": "c", "part": "t", "layer": None, "factor": None, "sound_at": 0.8}
    return Check(value=value, doubtful_at=0.5, fix="do it", **{**args, **kw})


def test_a_check_flips_at_its_thresholds():
    assert check(0.8).verdict == SOUND and check(0.79).verdict == DOUBTFUL
    assert check(0.5).verdict == DOUBTFUL and check(0.49).verdict == BROKEN
    assert check(math.nan).verdict == BROKEN  # nothing to go on is not a finding
    assert check(0.9).to_dict()["verdict"] == SOUND


def test_t_checks_scale_from_an_unrelated_row_to_a_reconstruction():
    found = {c.name: c for c in t_checks("pool", GOOD_T, NORMAL_V, chance=0.25)}
    assert found["t keeps z"].value == (0.93 - 0.4) / (0.95 - 0.4)
    assert found["t keeps the prediction"].value == (0.94 - 0.25) / (0.96 - 0.25)
    assert found["v is standard normal"].value == pytest.approx(1 - 0.1)
    assert all(c.verdict == SOUND and c.layer == "pool" for c in found.values())
    # samples no closer to z than another row (the digits logits: 0.70 vs 0.90)
    lost = {**GOOD_T, "cosine_samples": 0.70, "cosine_shuffled": 0.90}
    assert {c.name: c for c in t_checks("pool", lost, NORMAL_V, 0.25)}[
        "t keeps z"
    ].verdict == BROKEN
    wide = {**NORMAL_V, "std_max": 1.5}  # v's standard deviations reach 1.5: doubtful
    assert t_checks("pool", None, wide, 0.25)[0].verdict == DOUBTFUL
    shifted = {**NORMAL_V, "mean_abs_max": 1.2}  # held-out v far off: not interpretable
    assert t_checks("pool", None, shifted, 0.25)[0].verdict == BROKEN
    assert [c.name for c in t_checks("pool", None, {}, 0.25)] == []  # too few rows: no check


def test_autoencoder_and_judge_checks():
    n = 100
    truth = torch.arange(n) % 4
    perfect = truth[:, None].clone()
    lossy = perfect.clone()
    lossy[: n // 2] = (lossy[: n // 2] + 1) % 4  # half the reconstructions show another shape
    reader = Reader(
        judge=None,  # type: ignore[arg-type]
        factors=["shape"],
        kinds={"shape": "categorical"},
        truth={"shape": truth.double()},
        real={"shape": perfect},
        recon={"shape": lossy},
        chance={"shape": 0.25},
        trained_on=1000,
    )
    found = {c.name: c for c in autoencoder_checks(0.99, reader)}
    assert found["autoencoder keeps the classifier"].verdict == SOUND
    assert found["judge reads shape"].value == 1.0
    assert found["autoencoder keeps shape"].value == (0.5 - 0.25) / (1.0 - 0.25)
    assert found["autoencoder keeps shape"].verdict == BROKEN
    assert autoencoder_checks(0.79, None)[0].verdict == BROKEN  # the digits: 79 %


def test_e_checks_read_the_probes_of_the_manifest():
    metrics = {"probe_digit": 0.096, "chance_digit": 0.1, "probe_fg": 0.99, "chance_fg": 0.17}
    metrics["probe_scale"] = 0.8  # continuous: an R²
    found = {c.factor: c for c in e_checks(metrics, ["digit", "fg", "scale", "absent"])}
    assert found["digit"].verdict == BROKEN and found["fg"].verdict == SOUND
    assert found["scale"].value == 0.8 and "absent" not in found


def test_a_figure_rests_on_the_checks_of_its_layer_concept_and_parts():
    checks = [
        check(0.99, name="ae", part="autoencoder"),
        check(0.6, name="t pool", layer="pool"),
        check(0.1, name="e shape", part="e", factor="shape"),
        check(0.1, name="judge colour", part="judge", factor="colour"),
    ]
    share = verdicts(checks, ["pool", "logits"], ["shape", "colour", "residual"],
                     ["shape", "colour"], SHARE_PARTS)  # fmt: skip
    assert share["logits"]["shape"]["verdict"] == BROKEN
    assert share["logits"]["shape"]["failed"] == ["e shape"]
    assert share["logits"]["colour"]["verdict"] == SOUND  # the judge is not behind a share
    assert share["pool"]["residual"]["verdict"] == DOUBTFUL
    assert share["pool"]["residual"]["fixes"] == ["do it"]
    kept = verdicts(checks, ["logits"], ["shape", "colour"], ["shape", "colour"], KEPT_PARTS)
    assert kept["logits"]["shape"]["verdict"] == SOUND  # kept needs no e
    assert kept["logits"]["colour"]["verdict"] == BROKEN
    assert judge_cell([])["verdict"] == UNCHECKED
