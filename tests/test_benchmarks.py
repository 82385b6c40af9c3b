"""The benchmark scripts still run (at tiny sizes); their numbers are for people, not asserts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICK_DEMO_SEED

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script> --quick``; it must succeed."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_flows_benchmark_prints_its_table() -> None:
    result = run_quick("flows.py")
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("preset"))
    rows = [line.split() for line in lines[header + 2 :]]
    assert [row[:2] for row in rows] == [["small", "64"], ["paper", "64"]]
    for row in rows:
        innx, floor = float(row[2]), float(row[3])
        assert innx > 0 and floor > 0
        assert abs(float(row[-1]) - 1.0) < 0.05  # FrEIA's stack does the same multiply-adds


def test_kernels_benchmark_prints_its_table() -> None:
    lines = run_quick("kernels.py").stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("preset"))
    columns = lines[header].split()
    assert columns[2:9] == [
        "eager/s", "fused/s", "graph/s", "bf16/s", "compile/s", "freia/s", "floor/s"
    ]  # fmt: skip
    rows = [dict(zip(columns, line.split(), strict=True)) for line in lines[header + 2 :]]
    assert [(row["preset"], row["batch"]) for row in rows] == [("small", "64")]
    (row,) = rows
    eager, fused, freia = (float(row[c]) for c in ("eager/s", "fused/s", "freia/s"))
    assert eager > 0 and fused > 0 and freia > 0
    # reported, never a target
    assert float(row["fused/eager"]) == pytest.approx(fused / eager, abs=0.01)
    assert float(row["freia/eager"]) == pytest.approx(freia / eager, abs=0.01)
    for needs_cuda in ("graph/s", "bf16/s", "compile/s", "floor/s", "graph/eager", "bf16/floor"):
        assert row[needs_cuda] == "-"


def test_classifier_benchmark_prints_its_table() -> None:
    result = run_quick("classifier.py")
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}
    for contender in ("innx", "plain"):
        seconds, accuracy = map(float, rows[contender])
        assert seconds > 0 and 0.0 <= accuracy <= 1.0
    assert float(rows["innx/plain"][-1]) > 0


def test_extract_benchmark_prints_its_table() -> None:
    result = run_quick("extract.py")
    rows = [line for line in result.stdout.splitlines() if line[:1].isalpha() and "  " in line]
    measures = {line.split("  ")[0].strip(): line for line in rows}
    for measure in ("extract images/s", "write MB/s", "peak RSS MB, N vs 4N"):
        ratio = float(measures[measure][24:].split()[2])
        assert ratio > 0


def test_fit_benchmark_prints_its_tables() -> None:
    lines = run_quick("fit.py").stdout.splitlines()

    def table(first_column: str) -> list[str]:
        """The rows under the header line that starts with ``first_column``, up to a blank line."""
        header = next(i for i, line in enumerate(lines) if line.startswith(f"{first_column} "))
        rows = lines[header + 2 :]
        return rows[: rows.index("")] if "" in rows else rows

    data = table("condition")
    assert [row.split()[0] for row in data] == ["pool", "fc6"]
    for row in data:
        rates = [float(value) for value in row.split()[2:7]]
        assert all(rate > 0 for rate in rates)
        assert row.endswith(" met")  # "met" or "not met": reported, never asserted
    presets = table("preset")
    assert {row.split()[0] for row in presets} == {"small", "paper"}
    assert all(float(row.split()[3]) > 0 for row in presets)
    quality = {row[:40].strip(): row[40:] for row in table("measure")}
    for measure in ("class kept on D(E(x)), unseen images", "logits: kept samples / kept D(E(x))"):
        assert quality[measure].endswith("met")
    for name in ("shape", "fg_color", "bg_color"):
        assert quality[f"e: {name} probe"].endswith("met")
        assert quality[f"e: {name} swap"].split()[0] == "-"  # --quick skips the judge CNN
    stages = {row[:40].strip(): float(row[40:]) for row in table("stage")}
    assert set(stages) >= {
        "fit classifier",
        "fit autoencoder",
        "extract",
        "fit semantic",
        "evaluate",
    }
    assert all(seconds > 0 for seconds in stages.values())


@pytest.mark.slow
def test_demo_figures_prints_the_readme_tables(quick_demo) -> None:
    """On the shared quick demo of seed 3, which the script reuses (a ``seed-S`` folder that is
    finished is read, not run again)."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "demo_figures.py"), "--quick", "--seeds",
         str(QUICK_DEMO_SEED), "-o", str(quick_demo.root)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("innx demo --quick, 1 seeds") and "seeds: 3" in lines[1]
    kept = lines.index("kept (1 = as often as a reconstruction, 0 = chance):")
    assert lines[kept + 2] == "| layer | shape | fg_color | bg_color |"
    rows = [line for line in lines if line.startswith("| logits |")]
    assert len(rows) == 3  # kept, share, share / ceiling
    assert all(" ± 0.00" in row for row in rows)  # one seed: no spread
    assert any(line.startswith("- seed 3: ") for line in lines)


@pytest.mark.slow
def test_the_gpu_check_dry_runs_on_the_cpu(tmp_path: Path) -> None:
    """``benchmarks/gpu.py --dry-run`` (what ``DRY_RUN=1 bash benchmarks/gpu.sh`` runs after
    installing): the CUDA steps skipped with a line each, the rest passed, one summary table."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), "--dry-run", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[kernel tests] skipped: needs a CUDA device" in result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary == result.stdout
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in
            summary.splitlines() if line.startswith("| ") and " | " in line[2:]}  # fmt: skip
    assert rows == {
        "step": "result",
        "environment": "passed",
        "kernel tests": "skipped",
        "graph-step tests": "skipped",
        "pipeline": "passed",
        "kernels benchmark": "passed",
        "demo": "skipped",
    }
    assert "## kernels benchmark" in summary and "eager/s" in summary
