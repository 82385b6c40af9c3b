"""The flows' fused kernels against plain torch: one training step of t, side by side.

For each preset and batch size, one training step (forward, loss, backward) of ``InvarianceFlow``:

* ``torch``  - ``--kernels torch``: eager PyTorch for the elementwise work,
* ``auto``   - ``--kernels auto``: the fused Triton kernels on CUDA; on the CPU auto picks torch,
               so there the ratio auto/torch measures what the dispatcher itself costs (target:
               not slower, i.e. about 1.00),
* ``bf16``   - auto under bf16 autocast (CUDA only),
* ``floor``  - the samples/s that the step's FLOP count allows at the bf16 matrix-product rate
               measured in the same run (CUDA only): FLOPs = 6 × the multiply-adds of the
               embedder and every coupling MLP per sample (forward 2, backward 4).

Contenders run in interleaved rounds and the fastest round of each is kept, as in
``benchmarks/flows.py``. Compare the ratios.

    python benchmarks/kernels.py                 # CPU, or --device cuda on a GPU
    python benchmarks/kernels.py --quick         # tiny sizes: checks that everything runs
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from flows import Case, build_innx, coupling_macs, innx_step, time_rounds
from torch import nn

from innx.flows import InvarianceFlow
from innx.kernels.dispatch import use_kernels


def step_macs(t: InvarianceFlow) -> int:
    """Multiply-adds per sample of the forward pass's matrix products."""
    cfg = t.config
    linears = [m for m in t.embedder.modules() if isinstance(m, nn.Linear)]
    embedder = sum(layer.in_features * layer.out_features for layer in linears)
    return embedder + cfg.n_blocks * coupling_macs(t)


def bf16_matmul_rate(device: torch.device, size: int = 8192, repeats: int = 20) -> float:
    """FLOP/s of a large bf16 matrix product on ``device``."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def with_kernels(name: str, step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    def run() -> None:
        with use_kernels(name):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run


def bf16(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    def run() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            step()

    return with_kernels("auto", run, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per contender")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.quick:
        cases = [Case("small", 64, zbar_dim=16, cond_dim=64)]
        sizes, rounds = {"n_blocks": 2, "width": 32}, 1
    else:
        batches = (256, 4096, 65536) if device.type == "cuda" else (256, 4096)
        cases = [Case(p, b) for p in ("paper", "small") for b in batches]
        sizes, rounds = {}, args.rounds
    rate = bf16_matmul_rate(device) if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rate_text = f", bf16 matmul {rate / 1e12:.0f} TFLOP/s" if rate else ""
    print(f"{name}, torch {torch.__version__}, best of {rounds} rounds{rate_text}")
    header = (
        f"{'preset':<7} {'batch':>6} {'torch/s':>10} {'auto/s':>10} {'bf16/s':>10} "
        f"{'floor/s':>10} {'auto/torch':>10} {'bf16/torch':>10} {'auto/floor':>10}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        torch.manual_seed(0)
        t = build_innx(case, **sizes).to(device)
        zbar = torch.randn(case.batch, case.zbar_dim, device=device)
        z = torch.randn(case.batch, case.cond_dim, device=device)
        step = innx_step(t, zbar, z)
        steps = {
            "torch": with_kernels("torch", step, device),
            "auto": with_kernels("auto", step, device),
        }
        if device.type == "cuda":
            steps["bf16"] = bf16(step, device)
        seconds = time_rounds(steps, rounds)
        per_second = {k: case.batch / v for k, v in seconds.items()}
        floor = rate / (6 * step_macs(t)) if rate else None

        def cell(value: float | None, digits: int = 0) -> str:
            return f"{value:10.{digits}f}" if value is not None else f"{'-':>10}"

        bf16_rate = per_second.get("bf16")
        print(
            f"{case.preset:<7} {case.batch:>6} {cell(per_second['torch'])} {cell(per_second['auto'])} "
            f"{cell(bf16_rate)} {cell(floor)} {cell(per_second['auto'] / per_second['torch'], 2)} "
            f"{cell(bf16_rate / per_second['torch'] if bf16_rate else None, 2)} "
            f"{cell(per_second['auto'] / floor if floor else None, 2)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
