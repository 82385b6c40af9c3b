"""``innx compare`` on hand-made ``innx analyze`` reports whose comparison is known: a "shape"
model that keeps shape to its logits and drops texture after its second layer, a "texture" model
(another network, one layer more) that does the reverse; the rule, the alignment, the files, and
the reports it refuses."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest

from innx.errors import ConfigError, InnxWarning
from innx.ops.analyze.record import FORMAT, VERSION
from innx.ops.compare import sentences as rule
from innx.ops.compare.comparison import (
    CompareOptions,
    align,
    build_comparison,
    compare,
    difference,
)
from innx.ops.compare.models import load_models

DATASET = {"name": "shapes", "spec": "shapes:n=400", "root": None, "fingerprint": "f00d", "n": 400}
HALF = 0.03  # every interval is value ± HALF
LEGACY = object()  # a report written before the store's dataset was recorded

SHAPE_LAYERS = ["input", "conv1", "conv2", "logits"]
SHAPE_KEPT = {"shape": [0.95, 0.9, 0.85, 0.8], "texture": [0.9, 0.7, 0.1, 0.05]}
SHAPE_SHARE = {
    "shape": [0.9, 0.8, 0.7, 0.6],
    "texture": [0.8, 0.6, 0.1, 0.02],
    "color": [0.4, 0.4, 0.1, 0.05],  # of its ceiling 0.5: 0.8, 0.8, 0.2, 0.1
}
TEXTURE_LAYERS = ["input", "block1", "block2", "block3", "fc"]
TEXTURE_KEPT = {"shape": [0.9, 0.3, 0.2, 0.1, 0.05], "texture": [0.92, 0.9, 0.9, 0.88, 0.91]}
TEXTURE_SHARE = {
    "shape": [0.85, 0.2, 0.1, 0.05, 0.02],
    "texture": [0.9, 0.85, 0.8, 0.8, 0.75],
    "color": [0.2] * 5,  # of its ceiling 0.4: 0.5
}


def analysis_report(
    layers: list[str],
    kept: dict[str, list[float]] | None,
    share: dict[str, list[float]],
    *,
    ceilings: dict[str, float] | None = None,
    verdicts: dict[tuple[str, str], str] | None = None,
    dataset: Any = DATASET,
) -> dict[str, Any]:
    """A report as ``innx analyze`` writes it (the parts compare reads), every figure
    ``value ± HALF``, sound unless ``verdicts[(layer, concept)]`` says otherwise."""
    ceilings, verdicts = ceilings or {}, verdicts or {}
    concepts = list(share) or list(kept or {})

    def figure(layer: str, concept: str, value: float) -> dict[str, Any]:
        verdict = verdicts.get((layer, concept), "sound")
        return {"value": value, "interval": [value - HALF, value + HALF], "verdict": verdict}

    store: dict[str, Any] = {"path": f"/stores/{layers[-1]}.h5", "fingerprint": layers[-1] * 4}
    if dataset is not LEGACY:
        store["dataset"] = dataset
    share_explained = {
        layer: {
            c: {
                **figure(layer, c, values[i]),
                "ceiling": ceilings.get(c),
                "of_ceiling": values[i] / ceilings[c] if c in ceilings else None,
            }
            for c, values in share.items()
        }
        for i, layer in enumerate(layers)
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "store": store,
        "semantic": {"run": "runs/e", "factors": concepts, "blocks": {}},
        "layers": layers,
        "factors": [*concepts, "residual"],
        "concepts": concepts,
        "share_explained": share_explained,
        "kept": {
            "available": kept is not None,
            "reason": None if kept is not None else "skipped (--judge-steps 0)",
            "layers": {
                layer: {c: figure(layer, c, values[i]) for c, values in (kept or {}).items()}
                for i, layer in enumerate(layers)
            },
        },
    }


def write_report(folder: Path, report: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def shape_report(**changes: Any) -> dict[str, Any]:
    return analysis_report(
        SHAPE_LAYERS, SHAPE_KEPT, SHAPE_SHARE, ceilings={"color": 0.5}, **changes
    )


def texture_report(**changes: Any) -> dict[str, Any]:
    verdicts = {("fc", "texture"): "doubtful"}
    ceilings = {"color": 0.4}
    return analysis_report(
        TEXTURE_LAYERS, TEXTURE_KEPT, TEXTURE_SHARE, ceilings=ceilings, verdicts=verdicts, **changes
    )


def two_models(tmp_path: Path) -> tuple[Path, Path]:
    """The shape model's report in ``shape-report``, the texture model's in ``texture``."""
    return (
        write_report(tmp_path / "shape-report", shape_report()),
        write_report(tmp_path / "texture", texture_report()),
    )


SENTENCES = {
    "shape": "The shape model keeps shape to its logits (0.80); the texture model drops it "
    "after input (0.30 at block1).",
    "texture": "The shape model drops texture after conv1 (0.10 at conv2); the texture model "
    "keeps it to its fc (0.91 †).",
    "color": "The shape model drops color after conv1 (share 0.20 of its ceiling at conv2); the "
    "texture model keeps it to its fc (share 0.50 of its ceiling).",  # 0.5 is kept
}


def test_a_shape_and_a_texture_model_side_by_side(tmp_path: Path) -> None:
    shape, texture = two_models(tmp_path)
    models, dataset = load_models([f"shape={shape}", str(texture)])
    assert [m.name for m in models] == ["shape", "texture"]  # NAME=, then the folder's name
    assert dataset == {"checked": True, "dataset": DATASET, "unrecorded": [], "note": None}
    found = build_comparison(models, dataset, CompareOptions((str(shape), str(texture))))
    assert found["format"] == "innx.comparison" and found["version"] == 1
    assert found["concepts"] == ["shape", "texture", "color"]
    assert [m["layers"] for m in found["models"]] == [SHAPE_LAYERS, TEXTURE_LAYERS]
    assert found["models"][0]["depths"] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    # aligned by depth: first with first, last with last; the shorter model skips a row
    assert found["rows"] == [
        {"shape": "input", "texture": "input"},
        {"shape": "conv1", "texture": "block1"},
        {"shape": None, "texture": "block2"},
        {"shape": "conv2", "texture": "block3"},
        {"shape": "logits", "texture": "fc"},
    ]
    # the tables: each model's own figures, with intervals and verdicts
    cell = found["kept"]["texture"]["fc"]["texture"]
    assert cell["value"] == 0.91 and cell["interval"] == pytest.approx([0.88, 0.94])
    assert cell["verdict"] == "doubtful"
    assert found["kept"]["shape"]["logits"]["color"] is None  # color was not judged
    assert found["share_explained"]["shape"]["conv2"]["color"]["of_ceiling"] == pytest.approx(0.2)
    # the differences: texture − shape, on the rows both have a layer at
    diffs = found["differences"]
    assert diffs["reference"] == "shape" and set(diffs["kept"]) == {"texture"}
    texture_kept = diffs["kept"]["texture"]["texture"]
    assert [(d["row"], d["reference_layer"], d["layer"]) for d in texture_kept] == [
        (0, "input", "input"), (1, "conv1", "block1"), (3, "conv2", "block3"), (4, "logits", "fc")
    ]  # fmt: skip
    last, first = texture_kept[-1], texture_kept[0]
    spread = math.hypot(HALF, HALF)
    assert last["value"] == pytest.approx(0.86)
    assert last["interval"] == pytest.approx([0.86 - spread, 0.86 + spread])
    assert last["verdict"] == "doubtful" and last["clear"]
    assert first["value"] == pytest.approx(0.02) and not first["clear"]  # 0.02 ± 0.042
    shape_share = diffs["share_explained"]["texture"]["shape"]
    assert [d["value"] for d in shape_share] == pytest.approx([-0.05, -0.6, -0.65, -0.58])
    # where each keeps or drops each concept, and the sentences
    courses = found["courses"]
    assert courses["texture"]["shape"]["state"] == rule.DROPS
    assert courses["texture"]["shape"]["drops_after"] == "conv1"
    assert courses["texture"]["shape"]["kept"] == [True, True, False, False]
    assert courses["shape"]["shape"]["state"] == rule.TO_END
    assert courses["color"]["shape"]["scale"] == rule.OF_CEILING
    assert courses["color"]["texture"]["scale"] == rule.OF_CEILING
    assert courses["texture"]["texture"]["verdict"] == "doubtful"
    assert found["sentences"] == SENTENCES


@pytest.mark.parametrize(
    ("levels", "state", "kept_to", "cited"),
    [
        ([0.9, 0.8, 0.7, 0.6], rule.TO_END, "d", ("d", 0.6)),
        ([0.9, 0.3, 0.7, 0.2], rule.DROPS, "c", ("d", 0.2)),  # back up at c: dropped after c
        ([0.5, 0.49, 0.1, 0.0], rule.DROPS, "a", ("b", 0.49)),  # 0.5 is kept, 0.49 is not
        ([0.9, None, 0.8, math.nan], rule.TO_LAST_FIGURE, "c", ("c", 0.8)),  # skipped: no figure
        ([0.9, None, 0.8, 0.9], rule.TO_END, "d", ("d", 0.9)),
        ([0.1, 0.3, -0.1, 0.2], rule.NEVER, None, ("b", 0.3)),  # the highest
        ([None, None, None, None], rule.NO_FIGURE, None, None),
    ],
)
def test_the_rule_on_constructed_courses(
    levels: list[float | None], state: str, kept_to: str | None, cited: tuple[str, float] | None
) -> None:
    found = rule.course(list("abcd"), levels, ["sound"] * 4, rule.KEPT)
    assert found["state"] == state and found["kept_to"] == kept_to
    assert found["drops_after"] == (kept_to if state == rule.DROPS else None)
    assert found["cited"] == (None if cited is None else {"layer": cited[0], "value": cited[1]})


def test_clauses_say_the_rule_and_the_threshold_is_an_option() -> None:
    layers = ["x", "conv", "logits"]
    strict = rule.course(layers, [0.9, 0.8, 0.7], ["sound", "not interpretable", "sound"],
                         rule.KEPT, kept_at=0.75)  # fmt: skip
    assert strict["state"] == rule.DROPS and strict["verdict"] == "not interpretable"
    assert rule.clause("a", "hue", strict) == "the a model drops hue after conv (0.70 ✗ at logits)"
    kept = rule.course(layers, [0.9, 0.8, None], ["sound"] * 3, rule.SHARE)
    assert rule.clause("b", "hue", kept) == (
        "the b model keeps hue to conv (share 0.80), its last layer with a figure"
    )
    none = rule.course(layers, [None] * 3, ["unchecked"] * 3, None)
    assert rule.clause("c", "it", none) == "the c model has no figure for it"
    assert rule.sentence("hue", {"b": kept, "c": none}) == (
        "The b model keeps hue to conv (share 0.80), its last layer with a figure; the c model "
        "has no figure for it."
    )
    with pytest.raises(ConfigError, match=r"--kept-at must be between 0 and 1, got 1\.5"):
        CompareOptions(("a", "b"), kept_at=1.5)


def test_every_model_is_read_on_one_scale_where_they_share_one(tmp_path: Path) -> None:
    """A report without kept figures (no judge) puts every model on the share (the texture
    model's has no ceilings: on the share itself); with one without shares of the concepts (no
    e), a concept that only one model has kept figures of leaves each model on its own scale."""
    shape = write_report(tmp_path / "shape", shape_report())
    no_judge = write_report(
        tmp_path / "no-judge", analysis_report(TEXTURE_LAYERS, None, TEXTURE_SHARE)
    )
    no_e_kept = {**TEXTURE_KEPT, "color": [0.9, 0.8, 0.7, 0.6, 0.55]}
    no_e = write_report(tmp_path / "no-e", analysis_report(TEXTURE_LAYERS, no_e_kept, {}))
    scales = {}
    for other in (no_judge, no_e):
        models, dataset = load_models([str(shape), str(other)])
        found = build_comparison(models, dataset, CompareOptions(("a", "b")))
        scales[other.name] = {
            c: [course["scale"] for course in found["courses"][c].values()]
            for c in found["concepts"]
        }
        if other == no_judge:
            assert found["sentences"]["shape"].startswith(
                "The shape model keeps shape to its logits (share 0.60); the no-judge model drops "
                "it after input (share 0.20 at block1)."
            )
    assert scales["no-judge"] == {c: [rule.SHARE] * 2 for c in ("shape", "texture", "color")}
    assert scales["no-e"] == {
        "shape": [rule.KEPT] * 2, "texture": [rule.KEPT] * 2, "color": [rule.OF_CEILING, rule.KEPT]
    }  # fmt: skip
    assert found["sentences"]["color"] == (
        "The shape model drops color after conv1 (share 0.20 of its ceiling at conv2); the no-e "
        "model keeps it to its fc (0.55)."
    )


def test_layers_align_by_depth() -> None:
    assert align([2, 2]) == [[0, 0], [1, 1]]
    assert align([4, 5]) == [[0, 0], [1, 1], [None, 2], [2, 3], [3, 4]]
    assert align([1, 3]) == [[None, 0], [None, 1], [0, 2]]  # one layer: at the output side
    assert align([2, 3, 5]) == [[0, 0, 0], [None, None, 1], [None, 1, 2], [None, None, 3],
                                [1, 2, 4]]  # fmt: skip
    missing = difference(None, {"value": 0.5, "interval": [0.4, 0.6], "verdict": "doubtful"})
    assert missing == {"value": None, "interval": [None, None], "verdict": "doubtful",
                       "clear": False}  # fmt: skip


def test_compare_writes_every_file_and_replaces_only_a_comparison(tmp_path: Path) -> None:
    shape, texture = two_models(tmp_path)
    out = tmp_path / "cmp"
    options = CompareOptions((f"shape={shape}", str(texture)))
    result = compare(options, out)
    assert result.files == ["compare.json", "compare.md", "compare.html", "kept.png", "share.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(result.files)  # no temporary left
    saved = json.loads((out / "compare.json").read_text())
    assert saved["sentences"] == SENTENCES and saved["format"] == "innx.comparison"
    md = (out / "compare.md").read_text()
    assert SENTENCES["texture"] in md and "![kept.png](kept.png)" in md
    assert "| depth | shape layer | shape | texture layer | texture | texture − shape |" in md
    assert "| 1.00 | logits | 0.05 ± 0.03 | fc | 0.91 ± 0.03 † | 0.86 ± 0.05 † |" in md
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and 'class="doubtful"' in page
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        compare(options, out)
    (out / "kept.png").unlink()
    compare(CompareOptions((f"shape={shape}", f"tex={texture}")), out, overwrite=True)
    assert (out / "kept.png").is_file()
    assert json.loads((out / "compare.json").read_text())["models"][1]["name"] == "tex"
    with pytest.raises(ConfigError, match="is not a comparison of innx compare"):
        compare(options, shape, overwrite=True)  # a report is never replaced
    assert (shape / "report.json").is_file()


def test_the_dataset_is_checked_where_the_reports_record_it(tmp_path: Path) -> None:
    shape, _ = two_models(tmp_path)
    other = {**DATASET, "spec": "shapes:n=400,seed=9", "fingerprint": "beef"}
    elsewhere = write_report(tmp_path / "elsewhere", texture_report(dataset=other))
    with pytest.raises(ConfigError) as caught:
        load_models([str(shape), str(elsewhere)])
    message = str(caught.value)
    assert message.startswith("shape-report and elsewhere come from stores of different datasets")
    assert "/stores/logits.h5 holds shapes:n=400 (fingerprint f00d…)" in message
    assert "/stores/fc.h5 holds shapes:n=400,seed=9 (fingerprint beef…)" in message
    old = write_report(tmp_path / "old", texture_report(dataset=LEGACY))
    with pytest.raises(ConfigError, match="different datasets"):  # still checked between the others
        load_models([str(shape), str(old), str(elsewhere)])
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        result = compare(CompareOptions((str(shape), str(old))), tmp_path / "cmp")
    dataset = result.comparison["dataset"]
    assert not dataset["checked"] and dataset["unrecorded"] == ["old"]
    assert dataset["note"].startswith("the dataset could not be checked: the report of old")
    assert [str(w.message) for w in caught_warnings if w.category is InnxWarning] == [
        dataset["note"]
    ]
    assert dataset["note"] in (tmp_path / "cmp" / "compare.md").read_text()


BAD_REPORTS: list[tuple[str, Any, str]] = [
    ("missing", None, "holds no report.json; pass a report directory written by innx analyze"),
    ("not-json", "{", "report.json cannot be read (JSONDecodeError"),
    ("other-format", {"format": "innx.run"}, "is not a report of innx analyze (format 'innx.run'"),
    ("old-version", {"format": FORMAT, "version": 1},
     "is a version 1 report of innx analyze; innx compare reads version 2: run innx analyze again"),
    ("damaged", {**shape_report(), "layers": []}, "is damaged: it names no layers"),
    ("other-concepts", analysis_report(["a", "b"], None, {"shape": [0.5, 0.5], "hue": [0.1, 0.1]}),
     "the reports are on different concepts (shape has shape, texture, color; other-concepts has "
     "shape, hue); compare reports analyzed on the same concepts"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "message"), BAD_REPORTS)
def test_a_bad_report_is_refused_in_one_line(
    tmp_path: Path, name: str, content: Any, message: str
) -> None:
    shape = write_report(tmp_path / "shape", shape_report())
    bad = tmp_path / name
    bad.mkdir()
    if content is not None:
        text = content if isinstance(content, str) else json.dumps(content)
        (bad / "report.json").write_text(text)
    with pytest.raises(ConfigError) as caught:
        compare(CompareOptions((str(shape), str(bad))), tmp_path / "cmp")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "cmp").exists()


def test_too_few_reports_or_names_that_clash_are_refused(tmp_path: Path) -> None:
    shape, texture = two_models(tmp_path)
    cases = [
        ([str(shape)], "innx compare needs at least two reports, got 1; pass REPORT REPORT …"),
        ([f"a={shape}", f"a={texture}"], f"two reports are named 'a' ({shape}, {texture}); name"),
        ([str(shape), "b="], "'b=' names no report; pass NAME=REPORT or REPORT"),
    ]
    for specs, message in cases:
        with pytest.raises(ConfigError) as caught:
            compare(CompareOptions(tuple(specs)), tmp_path / "cmp")
        assert str(caught.value).startswith(message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shape-report", "texture"]
