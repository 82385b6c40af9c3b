"""Time and validation accuracy of ``innx fit classifier`` on shapes, beside a plain training loop.

Two contenders train the same smallcnn, from the same seed, for the same steps and batch size:

* ``innx``  - the real command line, ``innx fit classifier shapes:n=N,size=32,seed=0 -o RUN``,
              in a subprocess, timed end to end: generating the images, training with checkpoints
              and per-epoch validation, writing the run directory;
* ``plain`` - the images rendered up front (not timed), then a bare PyTorch loop: Adam, cosine
              schedule, no checkpoints, no logging, one validation pass at the end.

The target (issue 3): at least 98 % validation accuracy within 2 minutes on 2 CPU cores, at
N = 20 000. The ratio innx/plain shows what the command adds to the arithmetic. Rounds are
interleaved (innx, plain, innx, plain, …) and the fastest of each kept; this machine is noisy.

    python benchmarks/classifier.py             # N = 20 000, the defaults of innx fit classifier
    python benchmarks/classifier.py --quick     # N = 1 000, one epoch: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from innx.backbones import build_backbone
from innx.data.spec import open_dataset
from innx.ops.fit.classifier import ClassifierFit
from innx.train.loop import LoopConfig
from innx.train.split import split_rows


def run_innx(n: int, epochs: float, workdir: Path) -> tuple[float, float]:
    """Wall seconds and validation accuracy of the real command."""
    out = workdir / f"run-{time.monotonic_ns()}"
    spec = f"shapes:n={n},size=32,seed=0"
    cmd = [sys.executable, "-m", "innx", "fit", "classifier", spec, "--epochs", str(epochs)]
    start = time.perf_counter()
    result = subprocess.run([*cmd, "-o", str(out), "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"innx fit classifier failed:\n{result.stderr}")
    return seconds, json.loads(result.stdout)["metrics"]["val_accuracy"]


def run_plain(n: int, epochs: float) -> tuple[float, float]:
    """Wall seconds and validation accuracy of a bare loop with the same model and schedule."""
    fit = ClassifierFit(f"shapes:n={n},size=32,seed=0", epochs=epochs)
    dataset = open_dataset(fit.data)
    x, y, _ = dataset.render_range(0, n)  # type: ignore[attr-defined]
    train_rows, val_rows = split_rows(n, fit.val_fraction, fit.seed)
    steps_per_epoch = len(train_rows) // fit.batch_size
    steps = math.ceil(epochs * steps_per_epoch)
    schedule = LoopConfig(steps=steps, lr=fit.lr, warmup=min(100, steps // 10))
    torch.manual_seed(fit.seed)
    backbone = build_backbone("smallcnn", num_classes=4)
    model = backbone.model.to(memory_format=torch.channels_last).train()
    pre = backbone.preprocessing

    def inputs(images: torch.Tensor) -> torch.Tensor:
        return pre.normalize(images).contiguous(memory_format=torch.channels_last)

    optimizer = torch.optim.Adam(model.parameters(), lr=fit.lr)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lr_factor)
    start = time.perf_counter()
    for step in range(steps):
        generator = torch.Generator().manual_seed(step // steps_per_epoch)
        offset = (step % steps_per_epoch) * fit.batch_size
        rows = train_rows[torch.randperm(len(train_rows), generator=generator)]
        rows = rows[offset : offset + fit.batch_size]
        loss = F.cross_entropy(model(inputs(x[rows])), y[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(inputs(x[r])).argmax(1) for r in val_rows.split(512)])
    seconds = time.perf_counter() - start
    return seconds, (predictions == y[val_rows]).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 000 images, one epoch")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    args = parser.parse_args()
    n, epochs = (1000, 1.0) if args.quick else (20000, ClassifierFit("").epochs)
    rounds = args.rounds or (1 if args.quick else 2)
    print(
        f"shapes n={n} 32 px, smallcnn, {epochs:g} epochs, torch threads {torch.get_num_threads()}"
    )
    innx_runs, plain_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            innx_runs.append(run_innx(n, epochs, Path(tmp)))
            plain_runs.append(run_plain(n, epochs))
    innx_s, innx_acc = min(innx_runs)
    plain_s, plain_acc = min(plain_runs)
    print()
    print(f"{'contender':<10}{'seconds':>10}{'val_acc':>10}")
    print("-" * 30)
    print(f"{'innx':<10}{innx_s:>10.1f}{innx_acc:>10.4f}")
    print(f"{'plain':<10}{plain_s:>10.1f}{plain_acc:>10.4f}")
    print()
    print(f"innx/plain time {innx_s / plain_s:.2f}")
    if not args.quick:
        verdict = "met" if innx_acc >= 0.98 and innx_s <= 120 else "NOT met"
        print(f"target >= 0.98 validation accuracy within 120 s: {verdict}")


if __name__ == "__main__":
    main()
