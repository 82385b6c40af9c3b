"""The README's demo figures with their spread over seeds: ``innx demo --seed S`` for each seed,
then every table of the reports as ``mean ± spread``.

    python benchmarks/demo_figures.py                  # seeds 0,1,2 into ./demo-figures
    python benchmarks/demo_figures.py --seeds 0,1 -o DIR
    python benchmarks/demo_figures.py --quick          # the quick plan, seeds 0,1 (a check)

Each seed's demo is its own folder (``DIR/seed-S``), so a second call resumes or reuses them.
``spread`` is the largest distance of a seed's value from the mean: every seed lies within
``mean ± spread``. The tables (markdown) are what the README shows, with this command beside them;
a fresh ``innx demo`` (seed 0) is one of the seeds, so it lands within them.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def run_demo(out: Path, seed: int, quick: bool) -> tuple[dict[str, Any], float]:
    """``innx demo --seed SEED -o OUT``: its report, and the seconds it took (0 when reused)."""
    cmd = [sys.executable, "-m", "innx", "demo", "--seed", str(seed), "-o", str(out)]
    started = time.perf_counter()
    done = subprocess.run([*cmd, *(["--quick"] if quick else [])], text=True, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"innx demo --seed {seed} failed:\n{done.stderr}")
    seconds = time.perf_counter() - started
    reused = done.stderr.count("skipped") and "done in" not in done.stderr
    return json.loads((out / "report" / "report.json").read_text()), 0.0 if reused else seconds


def mean_spread(values: list[float]) -> tuple[float, float]:
    """The mean and the largest distance of a value from it (NaN when any value is missing)."""
    if not values or any(v is None or math.isnan(v) for v in values):
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, max(abs(v - mean) for v in values)


def cell(values: list[Any]) -> str:
    mean, spread = mean_spread([math.nan if v is None else float(v) for v in values])
    return "–" if math.isnan(mean) else f"{mean:.2f} ± {spread:.2f}"


def table(
    reports: list[dict[str, Any]], columns: list[str], value: Any, first: str = "layer"
) -> list[str]:
    """A markdown table, layers × ``columns``, each cell ``value(report, layer, column)`` over
    the reports."""
    layers = reports[0]["layers"]
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for layer in layers:
        cells = [cell([value(r, layer, c) for r in reports]) for c in columns]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def figures(reports: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    """Every table of the README's demo section, over the seeds."""
    out = [f"seeds: {', '.join(map(str, seeds))} (mean ± largest distance of a seed from it)", ""]
    kept = list(reports[0]["kept"]["judge"]["factors"]) if reports[0]["kept"]["available"] else []
    if kept:
        out += ["kept (1 = as often as a reconstruction, 0 = chance):", ""]
        out += table(reports, kept, lambda r, layer, c: r["kept"]["layers"][layer][c]["value"])
        out.append("")
    columns = reports[0]["factors"]
    out += ["share of variance explained:", ""]
    out += table(reports, columns, lambda r, layer, c: r["share_explained"][layer][c]["value"])
    named = [c for c in columns if c in reports[0]["ceilings"]]
    if named:
        ceilings = [cell([r["ceilings"][c]["value"] for r in reports]) for c in named]
        out += ["", "share / ceiling:", ""]
        out += table(
            reports, named, lambda r, layer, c: r["share_explained"][layer][c]["of_ceiling"]
        )
        out.append("| ceiling | " + " | ".join(ceilings) + " |")
    out += ["", "verdicts (layer × concept, per seed):"]
    for seed, report in zip(seeds, reports, strict=True):
        counts = report["diagnostics"]["counts"]
        out.append(f"- seed {seed}: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("-o", "--output", type=Path, default=Path("demo-figures"))
    parser.add_argument("--quick", action="store_true", help="the quick plan (a check)")
    args = parser.parse_args()
    seeds = [int(s) for s in (args.seeds or ("0,1" if args.quick else "0,1,2")).split(",")]
    reports, seconds = [], []
    for seed in seeds:
        report, took = run_demo(args.output / f"seed-{seed}", seed, args.quick)
        reports.append(report)
        seconds.append(took)
        print(f"seed {seed}: {took:.0f} s", file=sys.stderr, flush=True)
    plan = "innx demo --quick" if args.quick else "innx demo"
    print(f"{plan}, {len(seeds)} seeds; demo seconds: {', '.join(f'{s:.0f}' for s in seconds)}")
    print("\n".join(figures(reports, seeds)))


if __name__ == "__main__":
    main()
