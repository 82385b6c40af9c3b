"""``innx compare`` in a real process and in-process (CliRunner), on hand-made reports of a shape
and a texture model (:mod:`tests/ops/compare/test_compare.py`): the comparison it writes and
prints, and bad input as one ``error:`` line, exit 1 and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import run_innx
from ops.compare.test_compare import (
    DATASET,
    LEGACY,
    SENTENCES,
    analysis_report,
    texture_report,
    two_models,
    write_report,
)
from typer.testing import CliRunner, Result

from innx.cli.app import build_app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args), prog_name="innx")


def test_compare_in_a_process(tmp_path: Path) -> None:
    shape, texture = two_models(tmp_path)
    out = tmp_path / "cmp"
    done = run_innx("compare", f"shape={shape}", str(texture), "-o", str(out))
    assert done.stdout.strip() == str(out)
    assert done.stderr.splitlines() == list(SENTENCES.values())
    files = {"compare.json", "compare.md", "compare.html", "kept.png", "share.png"}
    assert {p.name for p in out.iterdir()} == files
    comparison = json.loads((out / "compare.json").read_text())
    assert comparison["sentences"] == SENTENCES
    assert [m["name"] for m in comparison["models"]] == ["shape", "texture"]


def test_json_summary_and_a_warning_when_the_dataset_cannot_be_checked(tmp_path: Path) -> None:
    shape, _ = two_models(tmp_path)
    old = write_report(tmp_path / "old", texture_report(dataset=LEGACY))
    out = tmp_path / "cmp"
    result = invoke("compare", str(shape), str(old), "-o", str(out), "--json", "--kept-at", "0.96")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["comparison"] == str(out) and summary["models"] == ["shape-report", "old"]
    assert summary["dataset"]["unrecorded"] == ["old"] and not summary["dataset"]["checked"]
    assert summary["sentences"]["shape"].startswith(  # nothing is kept at 0.96
        "The shape-report model does not keep shape at any layer (at most 0.95, at input)"
    )
    warning = f"warning: {summary['dataset']['note']}"
    assert result.stderr.splitlines() == [warning]


def test_bad_input_is_one_error_line_exit_1_and_nothing_written(tmp_path: Path) -> None:
    shape, texture = two_models(tmp_path)
    other = write_report(tmp_path / "other", analysis_report(["a"], None, {"hue": [0.1]}))
    elsewhere = {**DATASET, "spec": "shapes:n=400,seed=9", "fingerprint": "beef"}
    moved = write_report(tmp_path / "moved", texture_report(dataset=elsewhere))
    version = write_report(tmp_path / "v1", {"format": "innx.analysis", "version": 1})
    exists = tmp_path / "exists"
    exists.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        ([str(shape)], "innx compare needs at least two reports, got 1"),
        ([str(shape), str(tmp_path / "nowhere")], "nowhere holds no report.json; pass a report"),
        ([str(shape), str(tmp_path / "v1")], "is a version 1 report of innx analyze"),
        ([str(shape), str(other)], "different concepts (shape-report has shape, texture, color; "),
        ([str(shape), str(moved)], "shape-report and moved come from stores of different datas"),
        ([f"a={shape}", f"a={texture}"], "two reports are named 'a'"),
        ([str(shape), str(texture), "-o", str(exists)], "exists; pass --overwrite to replace it"),
        ([str(shape), str(texture), "--kept-at", "2"], "--kept-at must be between 0 and 1, got 2"),
    ]
    for args, message in cases:
        out = [] if "-o" in args else ["-o", str(tmp_path / "cmp")]
        result = invoke("compare", *args, *out)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert not any(exists.iterdir()) and version.is_dir()
    usage = invoke("compare", "-o", str(tmp_path / "cmp"))
    assert usage.exit_code == 2 and "Missing argument" in usage.stderr
    # and in a real process
    cmd = [
        sys.executable,
        "-m",
        "innx",
        "compare",
        str(shape),
        str(moved),
        "-o",
        str(tmp_path / "c"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: shape-report and moved come from stores of different")
    assert len(done.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
