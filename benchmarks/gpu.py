"""The prepared GPU check, step by step, with one markdown summary (run by ``benchmarks/gpu.sh``).

Steps, each with a time limit so that the whole check stays under 8 minutes on one GPU:

1. ``environment``: torch, CUDA, the GPU, Triton.
2. ``kernel tests``: ``tests/kernels`` compiled (``TRITON_INTERPRET=0``) on CUDA.
3. ``graph-step tests``: ``tests/train/test_graph_step.py``, the captured-step tests CI skips.
4. ``pipeline``: shapes → ``fit autoencoder`` → ``extract`` → ``fit invariance`` twice (the CPU's
   eager fp32 path as the reference, then ``--kernels auto --precision bf16 --cuda-graph`` on
   CUDA) → ``analyze``; the fast fit must reach the reference's held-out quality
   (``val_bits_per_dim`` within ``QUALITY_TOLERANCE``, ``v`` close to a standard normal).
5. ``demo``: ``innx demo --device cuda``, the full plan, timed (target: under 2 minutes), with
   each stage's seconds (also when it runs out of time).
6. ``kernels benchmark``: ``benchmarks/kernels.py --device cuda`` (its table goes into the summary).

The summary is rewritten after every step, and no step starts after ``--deadline`` seconds (each
left is skipped with a line saying so), so a short loan of a GPU always ends with a table.

Without CUDA (``--dry-run``, or no GPU found) every step that needs CUDA is skipped with a line
saying so, and the rest runs at tiny sizes on the CPU: a check of the script itself. The exit
code is 1 when any step failed.

    python benchmarks/gpu.py -o gpu-check            # what gpu.sh runs
    python benchmarks/gpu.py -o gpu-check --dry-run  # on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUALITY_TOLERANCE = 0.05
"""Largest difference of held-out bits per dimension between the fast CUDA fit and the CPU's."""
V_MEAN_MAX, V_STD_RANGE, V_MARGIN = 0.25, (0.6, 1.6), 0.1
"""Held-out ``v`` of the fast fit must look like a standard normal (mean and std within these
bounds), or be no further from one than the CPU's fit of the same store is, give or take
``V_MARGIN``: a short fit's ``v`` need not be exactly normal on either device."""
V_KEYS = ("val_v_mean_abs_max", "val_v_std_min", "val_v_std_max")


@dataclass
class Step:
    name: str
    result: str = "not run"  # passed, FAILED, skipped
    seconds: float = 0.0
    detail: str = ""
    tables: list[str] = field(default_factory=list)


@dataclass
class Check:
    out: Path
    cuda: bool
    quick: bool
    steps: list[Step] = field(default_factory=list)

    def run(
        self,
        step: Step,
        cmd: list[str],
        timeout: int,
        env: dict[str, str] | None = None,
        *,
        stream: bool = False,
    ) -> str:
        """Run ``cmd`` for ``step`` (its output in ``OUT/<step>.log``); return its stdout, or with
        ``stream`` both streams as written straight into the log (kept when the step times out)."""
        log = self.out / f"{step.name.replace(' ', '-')}.log"
        started = time.perf_counter()
        with open(log, "a") as handle:
            handle.write(f"$ {' '.join(cmd)}\n")
            handle.flush()
            try:
                done = subprocess.run(
                    cmd, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})},
                    **({"stdout": handle, "stderr": subprocess.STDOUT} if stream
                       else {"capture_output": True}),
                )  # fmt: skip
            except subprocess.TimeoutExpired as err:
                step.seconds += time.perf_counter() - started
                raise StepFailed(f"`{' '.join(cmd[:6])} …` ran past {timeout} s") from err
            step.seconds += time.perf_counter() - started
            if not stream:
                handle.write(f"{done.stdout}\n{done.stderr}\n")
        output = log.read_text() if stream else done.stdout
        if done.returncode != 0:
            last = (output if stream else done.stderr or done.stdout).strip().splitlines()[-1:]
            raise StepFailed(
                f"`{' '.join(cmd[:6])} …` exited {done.returncode}: {(last or ['no output'])[0][:200]}"
            )
        return output


class StepFailed(Exception):
    """A step that failed; the message says which command and why."""


def environment(check: Check, step: Step) -> None:
    import torch

    parts = [f"torch {torch.__version__}"]
    try:
        import triton

        parts.append(f"triton {triton.__version__}")
    except ImportError:
        parts.append("no triton")
    if check.cuda:
        parts.append(f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")
    else:
        parts.append("no CUDA device: the steps that need one are skipped")
    step.detail = "; ".join(parts)


def kernel_tests(check: Check, step: Step) -> None:
    stdout = check.run(step, [*_pytest(), "tests/kernels"], timeout=240,
                       env={"TRITON_INTERPRET": "0"})  # fmt: skip
    step.detail = _pytest_summary(stdout)


def graph_tests(check: Check, step: Step) -> None:
    stdout = check.run(step, [*_pytest(), "tests/train/test_graph_step.py"], timeout=120)
    step.detail = _pytest_summary(stdout)


def _pytest() -> list[str]:
    """pytest, spread over a few processes when pytest-xdist is there (compiling is per test)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    try:
        import xdist  # noqa: F401
    except ImportError:
        return cmd
    return [*cmd, "-n", str(min(8, os.cpu_count() or 1))]


def pipeline(check: Check, step: Step) -> None:
    n, ae_steps, t_steps = (600, 20, 40) if check.quick else (6000, 600, 1500)
    device = "cuda" if check.cuda else "cpu"
    data, work = f"shapes:n={n},size=32,seed=0", check.out / "pipeline"
    innx = [sys.executable, "-m", "innx"]
    ae, store = work / "ae", work / "acts.h5"
    common = ["--seed", "0", "--overwrite"]
    check.run(step, [*innx, "fit", "autoencoder", data, "-o", str(ae), "--steps", str(ae_steps),
                     "--device", device, *common], timeout=150)  # fmt: skip
    check.run(step, [*innx, "extract", data, "--backbone", "smallcnn", "--layer", "pool",
                     "--autoencoder", str(ae), "--store-images", "-o", str(store),
                     "--device", device, "--overwrite"], timeout=60)  # fmt: skip
    fit = [*innx, "fit", "invariance", str(store), "--layer", "pool", "--steps", str(t_steps)]
    reference, fast = work / "t-cpu", work / "t-fast"
    check.run(step, [*fit, "-o", str(reference), "--device", "cpu", "--kernels", "torch",
                     *common], timeout=150)  # fmt: skip
    options = ["--kernels", "auto", "--precision", "bf16"]
    options += ["--cuda-graph"] if check.cuda else []  # a CUDA graph needs CUDA
    check.run(step, [*fit, "-o", str(fast), "--device", device, *options, *common], timeout=150)
    check.run(step, [*innx, "analyze", str(store), "--invariance", f"pool={fast}",
                     "--device", device, "--samples", "64", "--judge-steps", "0",
                     "-o", str(work / "report"), "--overwrite"], timeout=90)  # fmt: skip
    ref, got = _metrics(reference), _metrics(fast)
    gap = abs(got["val_bits_per_dim"] - ref["val_bits_per_dim"])
    v_ok = all(_v_close(got, ref, key) for key in V_KEYS)
    step.detail = (
        f"t on {device} ({' '.join(options)}): held-out {got['val_bits_per_dim']:.3f} bits/dim, "
        f"CPU eager {ref['val_bits_per_dim']:.3f} (gap {gap:.3f}, at most {QUALITY_TOLERANCE}); "
        f"v mean ≤ {got['val_v_mean_abs_max']:.2f} (CPU {ref['val_v_mean_abs_max']:.2f}), std "
        f"{got['val_v_std_min']:.2f}–{got['val_v_std_max']:.2f} (CPU {ref['val_v_std_min']:.2f}–"
        f"{ref['val_v_std_max']:.2f}); fits {ref['seconds']:.0f} s (CPU) and {got['seconds']:.0f} s"
    )
    if check.quick:
        step.detail += " (dry run: tiny sizes, quality not judged)"
    elif gap > QUALITY_TOLERANCE or not v_ok:
        raise StepFailed(step.detail)


def kernels_benchmark(check: Check, step: Step) -> None:
    cmd = [sys.executable, "benchmarks/kernels.py", "--device", "cuda" if check.cuda else "cpu"]
    stdout = check.run(step, [*cmd, *(["--quick"] if check.quick else [])], timeout=240)
    step.tables.append("\n".join(line for line in stdout.splitlines() if line.strip()))
    step.detail = "table below"


DEMO_TARGET_SECONDS = 120


def demo(check: Check, step: Step) -> None:
    """The whole demo (full plan) on CUDA, timed against its target, with each stage's time."""
    cmd = [sys.executable, "-m", "innx", "demo", "-o", str(check.out / "demo"), "--overwrite"]
    try:
        check.run(step, [*cmd, "--device", "cuda"], timeout=300, stream=True)
    except StepFailed as err:
        raise StepFailed(f"{err}; stages done: {_stage_times(check.out / 'demo.log')}") from err
    step.detail = (
        f"full plan: {step.seconds:.0f} s (target under {DEMO_TARGET_SECONDS} s); "
        f"stages: {_stage_times(check.out / 'demo.log')}"
    )
    if step.seconds > DEMO_TARGET_SECONDS:
        raise StepFailed(step.detail)


def _stage_times(log: Path) -> str:
    """``classifier 8.3, autoencoder 46.6, …`` from the demo's ``[i/n] stage: done in S s`` lines."""
    found = re.findall(
        r"\] ([\w -]+): done in ([\d.]+) s", log.read_text() if log.is_file() else ""
    )
    return ", ".join(f"{name} {seconds}" for name, seconds in found) or "none"


STEPS = [
    ("environment", environment, False),
    ("kernel tests", kernel_tests, True),
    ("graph-step tests", graph_tests, True),
    ("pipeline", pipeline, False),
    ("demo", demo, True),  # the quick demo's CPU run is tested in CI already
    ("kernels benchmark", kernels_benchmark, False),
]
"""``(name, function, needs CUDA)`` in the order they run."""


def summary(check: Check) -> str:
    where = "CUDA" if check.cuda else "the CPU (dry run: CUDA steps skipped)"
    lines = [f"# innx GPU check on {where}", "", "| step | result | seconds | detail |"]
    lines.append("|---|---|---|---|")
    for step in check.steps:
        detail = step.detail.replace("|", "\\|")
        lines.append(f"| {step.name} | {step.result} | {step.seconds:.0f} | {detail} |")
    for step in check.steps:
        for table in step.tables:
            lines += ["", f"## {step.name}", "", "```", table, "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("gpu-check"))
    parser.add_argument("--dry-run", action="store_true", help="skip CUDA steps, tiny sizes")
    parser.add_argument(
        "--deadline", type=float, default=float("inf"),
        help="seconds after which no further step starts (each is then skipped)",
    )  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    import torch

    cuda = torch.cuda.is_available() and not args.dry_run
    args.output.mkdir(parents=True, exist_ok=True)
    check = Check(args.output.resolve(), cuda, quick=not cuda)
    for name, run, needs_cuda in STEPS:
        step = Step(name)
        check.steps.append(step)
        if needs_cuda and not cuda:
            step.result, step.detail = "skipped", "needs a CUDA device"
            print(f"[{name}] skipped: needs a CUDA device", file=sys.stderr, flush=True)
            continue
        if time.perf_counter() - started > args.deadline:
            step.result, step.detail = "skipped", f"past the --deadline of {args.deadline:.0f} s"
            print(f"[{name}] skipped: past the deadline", file=sys.stderr, flush=True)
            continue
        print(f"[{name}] …", file=sys.stderr, flush=True)
        try:
            run(check, step)
            step.result = "passed"
        except StepFailed as err:
            step.result, step.detail = "FAILED", str(err)
        print(f"[{name}] {step.result} in {step.seconds:.0f} s", file=sys.stderr, flush=True)
        (check.out / "summary.md").write_text(summary(check))  # kept if the loan ends early
    text = summary(check)
    (check.out / "summary.md").write_text(text)
    print(text, end="")
    return 1 if any(step.result == "FAILED" for step in check.steps) else 0


def _metrics(run: Path) -> dict[str, float]:
    return dict(json.loads((run / "manifest.json").read_text())["metrics"])


def _v_close(got: dict[str, float], ref: dict[str, float], key: str) -> bool:
    """``got[key]`` within the standard-normal bound, or within ``V_MARGIN`` of the CPU's."""
    if key == "val_v_mean_abs_max":
        return got[key] <= max(V_MEAN_MAX, ref[key] + V_MARGIN)
    if key == "val_v_std_min":
        return got[key] >= min(V_STD_RANGE[0], ref[key] - V_MARGIN)
    return got[key] <= max(V_STD_RANGE[1], ref[key] + V_MARGIN)


def _pytest_summary(stdout: str) -> str:
    lines = [line.strip("= ") for line in stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


if __name__ == "__main__":
    sys.exit(main())
