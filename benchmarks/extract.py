"""``innx extract`` side by side with the loops it must keep up with, measured in one run.

1. **Throughput**: images/s of ``innx.ops.extract.extraction`` (smallcnn on shapes, layers conv2 + pool + fc,
   written to an uncompressed store) against a plain loop over the same dataset with the same
   model, batch size, threads and dtype that only computes (no storage). Target: ratio >= 0.95.
2. **Write speed**: MB/s of the store writer (float32 layer rows in whole-batch writes, flushed)
   against ``np.save`` of the same array followed by ``fsync``. Target: ratio >= 0.8.
3. **Peak memory**: the maximum resident set of ``innx extract`` in a fresh process at N and 4N
   images. Target: flat in N (ratio ~1).
4. **Checksums**: images/s of the same extraction into a store with HDF5 Fletcher-32 chunk
   checksums (the default) against one without (``innx.store.datasets.CHECKSUMS`` off, for
   this measurement only). Target: ratio >= 0.95 (checksums cost at most 5 %).

Contenders alternate (a, b, a, b, ...) and the best round of each is kept; compare the ratios, not
the absolute numbers, on a noisy machine.

    python benchmarks/extract.py           # N = 4 000 (minutes on 2 cores)
    python benchmarks/extract.py --quick   # N = 256: checks that it runs
    python benchmarks/extract.py --rounds 7   # more rounds: steadier best times
    python benchmarks/extract.py --n 16000    # longer runs: less noise from a shared machine
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import innx.store.datasets
from innx.backbones import build_backbone
from innx.data.spec import open_dataset
from innx.ops.extract.extraction import ExtractOptions, extract
from innx.store import LayerSpec, StoreLayout, StoreWriter

LAYERS = ("conv2", "pool", "fc")
BATCH = 128


def timed_extract(n: int, tmp: Path, checksums: bool = True) -> float:
    """Seconds of a whole extraction into a fresh store (with chunk checksums or without)."""
    out = tmp / f"acts-{time.monotonic_ns()}.h5"
    options = ExtractOptions(f"shapes:n={n},size=32,seed=0", "smallcnn", LAYERS, batch_size=BATCH)
    innx.store.datasets.CHECKSUMS = checksums
    try:
        start = time.perf_counter()
        extract(options, out)
        seconds = time.perf_counter() - start
    finally:
        innx.store.datasets.CHECKSUMS = True
    out.unlink()
    return seconds


def timed_plain(n: int) -> float:
    """Seconds of the same data loading and forward passes, storing nothing."""
    dataset = open_dataset(f"shapes:n={n},size=32,seed=0")
    torch.manual_seed(0)
    backbone = build_backbone("smallcnn", num_classes=4)
    pre = backbone.preprocessing

    def collate(items: list[tuple[torch.Tensor, int, torch.Tensor]]) -> torch.Tensor:
        return torch.stack([pre(x) for x, _, _ in items])

    loader = DataLoader(dataset, batch_size=BATCH, collate_fn=collate)
    start = time.perf_counter()
    with torch.no_grad():
        for x in loader:
            acts = backbone.capture(x, list(LAYERS))
            for value in acts.values():
                value.numpy()
    return time.perf_counter() - start


def timed_store_write(array: np.ndarray, tmp: Path) -> float:
    layout = StoreLayout(
        n=len(array),
        layers=(LayerSpec("x", "x", tuple(array.shape[1:])),),
        attributes=(),
        has_labels=False,
        batch_size=BATCH,
    )
    path = tmp / f"w-{time.monotonic_ns()}.h5"
    start = time.perf_counter()
    with StoreWriter.create(path, layout) as writer:
        for i in range(0, len(array), BATCH):
            rows = np.arange(i, min(i + BATCH, len(array)))
            writer.write(
                rows,
                index=rows,
                labels=None,
                attributes=np.zeros((len(rows), 0), np.float32),
                layers={"x": array[i : i + BATCH]},
            )
        writer.finish()
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def timed_np_save(array: np.ndarray, tmp: Path) -> float:
    path = tmp / f"w-{time.monotonic_ns()}.npy"
    start = time.perf_counter()
    with open(path, "wb") as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def peak_rss_mb(n: int, tmp: Path) -> float:
    """Max RSS (MB) of ``innx extract`` over n images in a fresh process."""
    out = tmp / f"mem-{n}.h5"
    code = (
        "import resource, sys\n"
        "from innx.cli.app import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    args = ["extract", f"shapes:n={n},size=32", "--backbone", "smallcnn", "-o", str(out)]
    for layer in LAYERS:
        args += ["--layer", layer]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    out.unlink()
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 256, one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each contender")
    parser.add_argument("--n", type=int, default=4000, help="images per extraction")
    args = parser.parse_args()
    n = 256 if args.quick else args.n
    rounds = 1 if args.quick else args.rounds
    array = np.random.default_rng(0).standard_normal((n, 64, 16, 16), dtype=np.float32)
    megabytes = array.nbytes / 1e6
    with tempfile.TemporaryDirectory(dir=os.environ.get("INNX_BENCH_DIR")) as name:
        tmp = Path(name)
        timed_extract(min(n, 256), tmp)  # warm-up: imports, thread pools
        ext, plain, store, npy, unchecked = [], [], [], [], []
        for k in range(rounds):
            for checksums in (True, False) if k % 2 == 0 else (False, True):  # side by side
                (ext if checksums else unchecked).append(timed_extract(n, tmp, checksums))
            plain.append(timed_plain(n))
            store.append(timed_store_write(array, tmp))
            npy.append(timed_np_save(array, tmp))
        small, large = peak_rss_mb(n, tmp), peak_rss_mb(4 * n, tmp)
    print(f"smallcnn on shapes 32 px, layers {', '.join(LAYERS)}, batch {BATCH}, N = {n}")
    print(f"torch threads {torch.get_num_threads()}, best of {rounds} rounds")
    print()
    print(f"{'measure':<24}{'innx':>12}{'reference':>12}{'ratio':>8}  target")
    print("-" * 64)
    e, p = n / min(ext), n / min(plain)
    print(f"{'extract images/s':<24}{e:>12.0f}{p:>12.0f}{e / p:>8.2f}  >= 0.95 (vs plain loop)")
    s, q = megabytes / min(store), megabytes / min(npy)
    print(f"{'write MB/s':<24}{s:>12.0f}{q:>12.0f}{s / q:>8.2f}  >= 0.80 (vs np.save+fsync)")
    print(
        f"{'peak RSS MB, N vs 4N':<24}{large:>12.0f}{small:>12.0f}{large / small:>8.2f}"
        "  ~1 (flat in N)"
    )
    u = n / min(unchecked)
    print(f"{'checksums images/s':<24}{e:>12.0f}{u:>12.0f}{e / u:>8.2f}  >= 0.95 (vs no checksums)")


if __name__ == "__main__":
    main()
