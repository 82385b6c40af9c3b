"""``innx demo`` in real processes: the quick demo end to end, skipping and resuming stages, and
the refusals that protect a folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICK_DEMO_SEED

from innx.ops.demo.plan import PLANS


def innx(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_then_skips_and_resumes(quick_demo, tmp_path: Path) -> None:
    out = quick_demo.out  # the first run, shared with benchmarks/demo_figures.py's test
    report = Path(quick_demo.stdout.strip())
    assert report == out / "report"
    stage_lines = [line for line in quick_demo.stderr.splitlines() if line.startswith("[")]
    # data, classifier, autoencoder, extract, t per layer, e, render, analyze
    stages = 7 + len(PLANS["quick"].layers)
    assert len([line for line in stage_lines if "done in" in line]) == stages, quick_demo.stderr
    for name in ("report.json", "report.md", "report.html"):
        assert (report / name).is_file()
    summary = json.loads((report / "report.json").read_text())
    assert set(summary["layers"]) == set(PLANS["quick"].layers)
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert {"samples.png", "layers.png", "mix.png", "animate.gif", "swap-shape.png"} <= set(figures)
    print(f"innx demo --quick: {quick_demo.seconds:.1f} s")

    seed = ["--seed", str(QUICK_DEMO_SEED)]
    again = innx("demo", "--quick", *seed, "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("skipped") == stages

    # the same seed and thread count on the CPU give the same numbers, from scratch
    twin = tmp_path / "twin"
    made = innx("demo", "--quick", *seed, "-o", str(twin))
    assert made.returncode == 0, made.stderr
    numbers = [numbers_of(json.loads((d / "report" / "report.json").read_text()))
               for d in (out, twin)]  # fmt: skip
    assert numbers[0] == numbers[1] and len(numbers[0]) > 100

    # an interrupted demo: the semantic run and everything after it are gone
    shutil.rmtree(twin / "sem")
    shutil.rmtree(twin / "report")
    resumed = innx("demo", "--quick", *seed, "-o", str(twin))
    assert resumed.returncode == 0, resumed.stderr
    made_now = [line for line in resumed.stderr.splitlines() if "done in" in line]
    assert [line.split("]")[1].split(":")[0].strip() for line in made_now] == [
        "semantic",
        "analyze",
    ]


def numbers_of(value: object, path: str = "") -> dict[str, float]:
    """Every number of a report, by its path, but the time it took and its paths."""
    if isinstance(value, dict):
        found: dict[str, float] = {}
        for key, item in value.items():
            if key not in ("seconds", "created", "store", "details", "run"):
                found.update(numbers_of(item, f"{path}/{key}"))
        return found
    if isinstance(value, list):
        return {
            k: v for i, item in enumerate(value) for k, v in numbers_of(item, f"{path}/{i}").items()
        }
    return {path: value} if isinstance(value, int | float) and not isinstance(value, bool) else {}


def test_demo_refuses_another_plan_and_foreign_folders(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").write_text(json.dumps({"plan": "quick"}))
    (out / "clf").mkdir()
    other = innx("demo", "-o", str(out))
    assert other.returncode == 1
    assert other.stderr.strip().splitlines() == [
        f"error: {out} holds a demo run with --quick --seed 0; run it that way to resume, pass "
        "--overwrite to start over, or choose another -o"
    ]
    seeded = innx("demo", "--quick", "--seed", "1", "-o", str(out))
    assert seeded.returncode == 1 and "--quick --seed 0; run it that way" in seeded.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for extra in ((), ("--overwrite",)):
        refused = innx("demo", "--quick", "-o", str(foreign), *extra)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: {foreign} ")
        assert (foreign / "notes.txt").read_text() == "keep me"
