"""``attack`` in process on the tiny trained pipeline: the classes of its classifier, the attribute
that holds them, and a targeted attack read by the classifier alone."""

from __future__ import annotations

import json

import pytest

from innx.errors import ConfigError
from innx.ops.attack.attack import FORMAT, AttackOptions, attack
from innx.ops.attack.classes import Classes, classes_of, label_attribute
from innx.store import ActivationStore

SHAPES = ("circle", "cross", "square", "triangle")


def test_the_classifier_run_names_its_classes_and_the_store_attribute_that_holds_them(
    tiny_pipeline,
):
    classes = classes_of(tiny_pipeline.classifier, 4)
    assert classes.names == SHAPES and classes.source == str(tiny_pipeline.classifier)
    assert classes.index("square", "clf") == 2 and classes.index("3", "clf") == 3
    for bad in ("hexagon", "4", "-1"):
        with pytest.raises(ConfigError, match=f"--target {bad} is not a class of clf; give"):
            classes.index(bad, "clf")
    with ActivationStore(tiny_pipeline.store) as store:
        found = label_attribute(store, classes)
        assert found.name == "shape" and found.categories == (0, 1, 2, 3)
        backwards = Classes(SHAPES[::-1], "run")  # the same classes in another order
        assert label_attribute(store, backwards).categories == (3, 2, 1, 0)
        other = label_attribute(store, Classes(("a", "b", "c", "d"), "run"))
        assert other.name is None and "no attribute" in str(other.reason)
        unnamed = label_attribute(store, classes_of(None, 4))  # a weights file: indices only
        assert unnamed.name is None and unnamed.reason == "the classifier records no class names"
    assert classes_of(None, 3).names == ("0", "1", "2")


def test_a_targeted_pgd_attack_read_by_the_classifier_alone(tiny_pipeline, tmp_path):
    tiny = tiny_pipeline
    options = AttackOptions(
        store=str(tiny.store),
        invariance=(f"logits={tiny.invariance['logits']}",),
        rows=(3, 1, 2, 1),  # a repeated row is attacked once
        method="pgd",
        eps=0.2,
        target="triangle",
        samples=2,
        judge_steps=0,
        bootstrap=20,
        device="cpu",
    )
    result = attack(options, tmp_path / "adv")
    report = json.loads((tmp_path / "adv" / "attack.json").read_text())
    assert report == result.record and report["format"] == FORMAT
    assert [row["row"] for row in report["rows"]] == [3, 1, 2]
    assert {row["x_adv"]["name"] for row in report["rows"]} == {"triangle"}
    assert report["attack"]["target"] == {"class": 3, "name": "triangle"}
    assert report["attack"]["target_rate"]["value"] == 1.0
    assert report["attack"]["step_size"] == pytest.approx(0.05)  # eps / 4
    assert all(row["linf"]["x_adv"] <= 0.2 + 1e-6 for row in report["rows"])
    assert report["judge"] == {"attribute": "shape", "reason": "skipped (--judge-steps 0)"}
    (layer,) = report["layers"]
    assert layer["layer"] == "logits" and layer["judge"] is None
    flipped = sum(row["flipped"] for row in report["rows"])
    assert layer["rows"] == flipped
    for version in ("x", "x_adv", "x_noise"):
        shares = layer["classifier"][version]
        if flipped:  # two different classes: a sample shows at most one of them
            total = shares["original"]["value"] + shares["adversarial"]["value"]
            assert 0 <= total <= 1 + 1e-9
    assert "the classifier alone reads the samples" in (tmp_path / "adv" / "attack.md").read_text()
    assert result.files == [
        "attack.json",
        "attack.md",
        "images.png",
        *(f"row-{r}.png" for r in (3, 1, 2)),
    ]
