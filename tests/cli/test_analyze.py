"""``innx analyze`` in real processes: the report it prints, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from innx.device import device_line, resolve_device
from innx.ops.fit.invariance import InvarianceFit, fit_invariance
from innx.ops.fit.semantic.fit import SemanticFit, fit_semantic

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A factor store with ``t`` on its layer ``fc`` and ``e`` on factors a, b (barely trained:
    these tests check the command, not the numbers), and a ``t`` fitted on another store."""
    from conftest import write_factor_store, write_synthetic_store

    root = tmp_path_factory.mktemp("analyze-cli")
    store = write_factor_store(root / "factors.h5")
    other = write_synthetic_store(root / "other.h5", n=300)
    quick = {"steps": 5, "batch_size": 64, "warmup": 2}
    fit_invariance(InvarianceFit(store=str(store), layer="fc", **quick), root / "inv-fc")
    fit_invariance(InvarianceFit(store=str(other), layer="fc", **quick), root / "inv-other")
    fit_semantic(
        SemanticFit(store=str(store), factors=("a", "b"), dims=(2, 2), **quick), root / "sem"
    )
    return root


def test_analyze_prints_the_report_directory(fitted, tmp_path):
    out = tmp_path / "report"
    args = ["analyze", str(fitted / "factors.h5"), "--invariance", f"fc={fitted / 'inv-fc'}"]
    args += ["--semantic", str(fitted / "sem"), "--samples", "32", "--draws", "3", "-o", str(out)]
    done = innx(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert "skipping preservation" in done.stderr and "share explained" in done.stderr
    assert done.stderr.count("innx: using device") == 1, done.stderr  # once, and what auto is
    assert device_line(resolve_device("auto")) in done.stderr.splitlines()
    report = json.loads((out / "report.json").read_text())
    assert report["device"] == str(resolve_device("auto")) and report["options"]["device"] == "auto"
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "report.md", "report.html", "share.png", "layers.png"} <= names
    again = innx(*args, "--factor", "b", "--overwrite", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["report"] == str(out) and "report.html" in summary["files"]
    assert list(summary["share_explained"]["fc"]) == ["b", "residual"]
    cell = summary["share_explained"]["fc"]["b"]
    assert set(cell) >= {"value", "interval", "ceiling", "verdict"}
    assert sum(summary["verdicts"].values()) == 2  # fc × (b, residual)
    assert not summary["interventions"]["available"]  # no autoencoder to decode a swap
    assert "autoencoder" in summary["interventions"]["reason"]


def test_bad_input_is_one_line_and_exit_1(fitted, tmp_path):
    store, run, sem = str(fitted / "factors.h5"), str(fitted / "inv-fc"), str(fitted / "sem")
    exists = tmp_path / "exists"
    exists.mkdir()
    cases = [
        ([store, "--invariance", str(fitted / "inv-other")], "was fitted on another store"),
        ([store, "--invariance", f"conv={run}"], "was fitted on layer fc, not conv"),
        ([store, "--invariance", run, "--rows", "0,5,3000"], "row 3000 is out of range"),
        ([store, "--invariance", run, "--rows", "0:x"], "--rows takes row numbers and inclusive"),
        ([store, "--invariance", run, "--rows", "5-2"], "got the backward range '5-2'"),
        (
            [store, "--invariance", run, "--semantic", sem, "--factor", "hue"],
            "has no factor 'hue'; its factors: a, b",
        ),
        ([store, "--invariance", run, "-o", str(exists)], "exists; pass --overwrite"),
        ([store, "--invariance", run, "--factor", "hue"], "has no attribute 'hue'"),
    ]
    for args, message in cases:
        out = ["-o", str(tmp_path / "report")] if "-o" not in args else []
        done = innx("analyze", *args, *out, "--samples", "16", "--draws", "2")
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]  # nothing written
    assert not any(exists.iterdir())
    usage = innx("analyze", store, "-o", str(tmp_path / "report"))
    assert usage.returncode == 2 and "--invariance" in usage.stderr


def test_rows_ranges_and_kernels_in_a_process(fitted, tmp_path):
    out = tmp_path / "report"
    args = ["analyze", str(fitted / "factors.h5"), "--invariance", f"fc={fitted / 'inv-fc'}"]
    args += ["--rows", "0-23,40", "--kernels", "torch", "--draws", "2", "--judge-steps", "0"]
    done = innx(*args, "--bootstrap", "10", "-o", str(out))
    assert done.returncode == 0, done.stderr
    options = json.loads((out / "report.json").read_text())["options"]
    assert options["rows"] == [*range(24), 40] and options["kernels"] == "torch"
