"""Speed and quality of ``innx fit invariance`` (and ``fit autoencoder``), measured in one run.

Issue 5 ("fit autoencoder and fit invariance") asks three things; each part prints one table.

1. **Data path**: training samples/s of the invariance cINN ``t`` (small preset, batch 256) fed
   from an activation store, against the same loop fed from tensors in memory. Contenders, all
   through the real loop (``innx.train.loop.train`` with ``InvarianceTask``): ``tensors`` (the
   rows preloaded as torch tensors, batches by a seeded permutation per epoch), ``memory``
   (``StoreBatches`` with the store read into memory) and ``streamed`` (``StoreBatches``
   reading contiguous chunks of the file as it goes). The store is synthetic: 20 000 rows,
   latents [64], layers ``pool`` [128] (smallcnn's) and ``fc6`` [4096] (AlexNet-like); it was just
   written, so it sits in the page cache, as a store being trained on usually does. Each layer
   is one row of the table. Target: store >= 0.9 x tensors.
2. **Presets**: training samples/s of the ``small`` and ``paper`` presets of ``t`` at batch 256
   and 4096 on this machine (zbar [64], condition [128]: smallcnn's ``pool``), tensors in memory.
3. **Quality** on shapes, the method end to end through the ops functions
   (``benchmarks/fit_quality.py``): classifier, autoencoder, extraction, ``t`` on ``logits``;
   reconstruction PSNR, predictions kept on D(E(x)), statistics of held-out ``v``, and the class
   kept by invariance samples D(t⁻¹(v|z)) against reconstructions. Seconds of every stage.

Timings are noisy on a shared machine: the data-path contenders run in interleaved rounds (their
order rotated each round) and the median of each is reported; compare the ratios. A step's time
is taken between the loop's progress calls after steps 1 and N-1, so the checkpoint before step
0, ActNorm's warm start and the final validation are not counted (reading the store is).

    python benchmarks/fit.py                  # all three parts (tens of minutes on 2 cores)
    python benchmarks/fit.py --only quality   # one part: data, presets or quality
    python benchmarks/fit.py --quick          # tiny sizes, no factor swaps: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from fit_quality import QualitySizes, run_quality
from torch import Tensor

from innx.flows import InvarianceConfig, InvarianceFlow
from innx.ops.fit.invariance import InvarianceTask
from innx.store import ActivationStore, LayerSpec, StoreLayout, StoreWriter
from innx.train.batches import StoreBatches
from innx.train.loop import LoopConfig, train
from innx.train.run_dir import prepare_run_dir
from innx.train.split import split_store_rows

ZBAR = 64
LAYERS = {"pool": (128,), "fc6": (4096,)}
"""The synthetic store's layers: smallcnn's pooled features and an AlexNet-sized vector."""
SEED = 0
VAL_ROWS = 256  # validation rows of a timed run: the loop validates once, at its end


class TensorBatches:
    """Batches of rows held as tensors, by a seeded permutation per epoch: the plain contender,
    with the interface :class:`~innx.ops.fit.invariance.InvarianceTask` uses of ``StoreBatches``."""

    def __init__(self, tensors: tuple[Tensor, ...], batch_size: int, seed: int) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = len(tensors[0]) // batch_size
        self._epoch: tuple[int, Tensor] | None = None

    def batch(self, step: int) -> tuple[Tensor, ...]:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch = (epoch, torch.randperm(len(self.tensors[0]), generator=generator))
        rows = self._epoch[1][offset * self.batch_size : (offset + 1) * self.batch_size]
        return tuple(t.index_select(0, rows) for t in self.tensors)

    def global_batch(self, step: int) -> tuple[Tensor, ...]:
        return self.batch(step)

    def batches(self, start: int, stop: int) -> Iterator[tuple[Tensor, ...]]:
        for step in range(start, stop):
            yield self.batch(step)

    def close(self) -> None:
        pass


def write_store(path: Path, n: int, block: int = 2048) -> Path:
    """A store of ``n`` random rows (layers of :data:`LAYERS`), latents ``A · pool + noise``."""
    rng = np.random.default_rng(SEED)
    mixing = rng.standard_normal((LAYERS["pool"][0], ZBAR), dtype=np.float32) / 8
    layout = StoreLayout(
        n=n,
        layers=tuple(LayerSpec(name, name, shape) for name, shape in LAYERS.items()),
        attributes=(),
        has_labels=True,
        latent_dim=ZBAR,
    )
    with StoreWriter.create(path, layout) as writer:
        for start in range(0, n, block):
            rows = np.arange(start, min(n, start + block))
            layers = {
                name: rng.standard_normal((len(rows), *shape), dtype=np.float32)
                for name, shape in LAYERS.items()
            }
            noise = rng.standard_normal((len(rows), ZBAR), dtype=np.float32)
            writer.write(
                rows,
                index=rows,
                labels=rng.integers(0, 4, len(rows)),
                attributes=np.zeros((len(rows), 0), np.float32),
                layers=layers,
                latents=layers["pool"] @ mixing + 0.5 * noise,
            )
        writer.finish()
    return path


def samples_per_second(
    data: TensorBatches | StoreBatches,
    val: tuple[Tensor, ...],
    preset: str,
    cond_shape: tuple[int, ...],
    steps: int,
    tmp: Path,
) -> float:
    """Training samples/s of ``t`` over steps 2 … N-1 of a fresh run of the shared loop."""
    torch.manual_seed(SEED)
    flow = InvarianceFlow(InvarianceConfig.preset(preset, ZBAR, cond_shape, seed=SEED))
    task = InvarianceTask(flow, data, val, torch.device("cpu"))  # type: ignore[arg-type]
    loop = LoopConfig(
        steps=steps,
        betas=(0.5, 0.9),
        warmup=steps // 5,
        grad_clip=10.0,
        seed=SEED,
        log_every=min(50, steps),
        checkpoint_every=10**9,
    )
    out = tmp / f"run-{time.monotonic_ns()}"
    prepare_run_dir(out, resume=False, overwrite=False)
    marks: dict[int, float] = {}

    def progress(done: int, _total: int, _metrics: dict[str, float]) -> None:
        marks[done] = time.perf_counter()

    train(task, loop, out, progress=progress)
    data.close()
    shutil.rmtree(out)
    return (steps - 2) * data.batch_size / (marks[steps - 1] - marks[1])


def warm_up(tmp: Path) -> None:
    """One short untimed run: thread pools, allocator and kernels are ready for the first timed one."""
    z = torch.randn(512, *LAYERS["pool"])
    data = TensorBatches((z[:, :ZBAR].clone(), z), 64, SEED)
    samples_per_second(data, (z[:64, :ZBAR], z[:64]), "small", LAYERS["pool"], 4, tmp)


def data_path(n: int, batch: int, steps: int, rounds: int, tmp: Path) -> None:
    store = write_store(tmp / "synthetic.h5", n)
    with ActivationStore(store) as view:
        train_rows, val_rows = split_store_rows(view.index, 0.1, SEED)
    names = ("tensors", "memory", "streamed")
    results: dict[str, dict[str, list[float]]] = {layer: {c: [] for c in names} for layer in LAYERS}
    for layer, shape in LAYERS.items():
        fields = ["latents", layer]
        val = StoreBatches(store, fields, val_rows, 1, SEED).all(VAL_ROWS)
        preloaded = StoreBatches(store, fields, train_rows, 1, SEED, in_memory=True).all()

        for r in range(rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                if name == "tensors":
                    data: TensorBatches | StoreBatches = TensorBatches(preloaded, batch, SEED)
                else:
                    memory = name == "memory"
                    data = StoreBatches(store, fields, train_rows, batch, SEED, in_memory=memory)
                rate = samples_per_second(data, val, "small", shape, steps, tmp)
                results[layer][name].append(rate)
    print(
        f"data path: t small preset, zbar [{ZBAR}], batch {batch}, {steps} steps, store of {n} "
        f"rows (float32, uncompressed), median of {rounds} rounds, samples/s"
    )
    print()
    header = f"{'condition':<14}{'tensors':>10}{'memory':>10}{'streamed':>10}"
    print(f"{header}{'mem/tens':>10}{'str/tens':>10}  target >= 0.9")
    print("-" * 78)
    for layer, shape in LAYERS.items():
        tens, mem, streamed = (statistics.median(results[layer][c]) for c in names)
        verdict = "met" if min(mem, streamed) >= 0.9 * tens else "not met"
        label = f"{layer} {list(shape)}"
        print(
            f"{label:<14}{tens:>10.0f}{mem:>10.0f}{streamed:>10.0f}"
            f"{mem / tens:>10.2f}{streamed / tens:>10.2f}  {verdict}"
        )


def presets(cases: list[tuple[str, int, int]], tmp: Path) -> None:
    """``cases``: (preset, batch, steps)."""
    shape = LAYERS["pool"]
    rows = max(batch for _, batch, _ in cases) * 2
    generator = torch.Generator().manual_seed(SEED)
    z = torch.randn(rows, *shape, generator=generator)
    zbar = z[:, :ZBAR] + 0.5 * torch.randn(rows, ZBAR, generator=generator)
    val = (zbar[:VAL_ROWS], z[:VAL_ROWS])
    print(
        f"presets: t trained from tensors in memory, zbar [{ZBAR}], condition {list(shape)} "
        "(smallcnn pool), one run each"
    )
    print()
    print(f"{'preset':<8}{'batch':>8}{'steps':>8}{'samples/s':>12}{'s/step':>10}")
    print("-" * 46)
    for preset, batch, steps in cases:
        data = TensorBatches((zbar, z), batch, SEED)
        rate = samples_per_second(data, val, preset, shape, steps, tmp)
        print(f"{preset:<8}{batch:>8}{steps:>8}{rate:>12.0f}{batch / rate:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--only", choices=("data", "presets", "quality"), help="one part only")
    parser.add_argument("--rounds", type=int, default=None, help="data-path rounds (5)")
    parser.add_argument("--steps", type=int, default=None, help="data-path steps per run (96)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (all cores; 1 with --quick)"
    )
    args = parser.parse_args()
    quick = args.quick
    rounds = args.rounds or (1 if quick else 5)
    steps = args.steps or (8 if quick else 96)
    if steps < 3:
        parser.error("--steps must be at least 3 (steps 2 … N-1 are timed)")
    if quick:
        cases = [("small", 64, 3), ("small", 256, 3), ("paper", 32, 3), ("paper", 64, 3)]
        quality = QualitySizes(n=1500, classifier_steps=30, autoencoder_steps=30,
                               invariance_steps=30, semantic_steps=30, samples=2,
                               swaps=False)  # fmt: skip
    else:
        cases = [("small", 256, 24), ("small", 4096, 5), ("paper", 256, 8), ("paper", 4096, 3)]
        quality = QualitySizes(n=20000)
    threads = args.threads or (1 if quick else None)
    if threads is not None:  # one thread is steadier on a busy machine, and enough to check
        torch.set_num_threads(threads)
    print(f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("INNX_BENCH_DIR")) as name:
        tmp = Path(name)
        warm_up(tmp)
        if args.only in (None, "data"):
            print()
            data_path(2048 if quick else 20000, 256, steps, rounds, tmp)
        if args.only in (None, "presets"):
            print()
            presets(cases, tmp)
        if args.only in (None, "quality"):
            print()
            run_quality(quality, tmp)


if __name__ == "__main__":
    main()
