"""The flows' training step path by path: eager, fused kernels, CUDA graph, bf16, FrEIA, the floor.

For each preset and batch size, one whole training step of ``InvarianceFlow`` (forward, loss,
backward, gradient clipping at 10, Adam), taken by

* ``eager`` - ``--kernels torch``: eager PyTorch throughout,
* ``fused`` - ``--kernels auto``: the fused Triton kernels for the elementwise work on CUDA; on the
              CPU auto picks torch, so there fused/eager measures what the dispatcher itself costs
              (target: not slower, i.e. about 1.00),
* ``graph`` - fused, with the whole step replayed from one CUDA graph (``--cuda-graph``; CUDA only),
* ``bf16``  - graph under bf16 autocast (``--cuda-graph --precision bf16``; CUDA only),
* ``compile`` - eager PyTorch's step through ``torch.compile(mode="reduce-overhead")`` (Inductor's
              own fused kernels, replayed from CUDA graphs): the alternative to the hand-made
              graph (CUDA only; only at the ``--compile-batches`` sizes asked for, since each
              compiles anew; on an H200 with torch 2.11 it ran at 0.27 of the hand-made graph
              on the paper preset at batch 256, and failed to compile the small preset),
* ``freia`` - FrEIA's equivalent stack (see ``flows.py``), eager, with the same clipping and Adam,
* ``floor`` - the samples/s that the step's FLOP count allows at the bf16 matrix-product rate
              measured in the same run (CUDA only): FLOPs = 6 × the multiply-adds of the embedder
              and every coupling MLP per sample (forward 2, backward 4).

Targets on a GPU: the best path (bf16) at least 5× eager at batch 256, and at least half the floor
at batch 4096 and above. Each contender trains its own copy of t and runs ``WARMUP_CALLS`` steps
before timing on CUDA (the graph captures during those), one on the CPU. Rounds are interleaved,
each round's steps end in a device synchronisation, and the fastest round of each contender is
kept. Compare the ratios.

    python benchmarks/kernels.py --device cuda   # the GPU table (also: flows.py --device cuda)
    python benchmarks/kernels.py                 # CPU: eager, fused (= torch) and FrEIA
    python benchmarks/kernels.py --quick         # tiny sizes: checks that everything runs
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from flows import Case, build_freia, build_innx, coupling_macs, freia_width
from torch import Tensor, nn

from innx.flows import InvarianceFlow, invariance_nll, use_kernels
from innx.train.graph_step import WARMUP_STEPS, GraphStep

WARMUP_CALLS = WARMUP_STEPS + 2  # eager warm-up steps, the capture, one replay
COLUMNS = ("eager", "fused", "graph", "bf16", "compile", "freia")


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


def autocast(device: torch.device, bf16: bool) -> Callable[[], AbstractContextManager[Any]]:
    if not bf16:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def adam(parameters: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=1e-4, betas=(0.5, 0.9))


def eager_step(model: nn.Module, loss: Callable[[], Tensor], kernels: str) -> Callable[[], None]:
    parameters = list(model.parameters())
    optimizer = adam(parameters)
    use_kernels(model, kernels)  # FrEIA's stack has no innx blocks: nothing to choose there

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        nn.utils.clip_grad_norm_(parameters, 10.0)
        optimizer.step()

    return step


def compiled_step(model: nn.Module, loss: Callable[[], Tensor]) -> Callable[[], None]:
    """``eager_step`` as ``torch.compile(mode="reduce-overhead")`` makes it: fp32, torch kernels."""
    return torch.compile(eager_step(model, loss, "torch"), mode="reduce-overhead")


def graph_step(t: InvarianceFlow, batch: tuple[Tensor, Tensor], bf16: bool) -> Callable[[], None]:
    def loss(model: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Tensor]]:
        v, logdet = model(*inputs)
        return invariance_nll(v.float(), logdet.float()), {}

    device = batch[0].device
    run = GraphStep(
        loss, t, adam(list(t.parameters())), grad_clip=10.0, autocast=autocast(device, bf16),
        device=device,
    )  # fmt: skip

    use_kernels(t, "auto")

    def step() -> None:
        run(batch)

    return step


def contenders(
    case: Case, sizes: dict[str, int], device: torch.device, compile_too: bool = False
) -> dict[str, Any]:
    """Each contender's step on its own copy of the same t (and FrEIA's stack), and the t."""
    torch.manual_seed(0)
    t = build_innx(case, **sizes).to(device)
    zbar = torch.randn(case.batch, case.zbar_dim, device=device)
    z = torch.randn(case.batch, case.cond_dim, device=device)
    copies = {name: copy.deepcopy(t) for name in ("eager", "fused", "graph", "bf16", "compile")}
    steps: dict[str, Callable[[], None]] = {
        "eager": eager_step(copies["eager"], lambda: invariance_nll(*copies["eager"](zbar, z)), "torch"),
        "fused": eager_step(copies["fused"], lambda: invariance_nll(*copies["fused"](zbar, z)), "auto"),
    }  # fmt: skip
    if device.type == "cuda":
        steps["graph"] = graph_step(copies["graph"], (zbar, z), bf16=False)
        steps["bf16"] = graph_step(copies["bf16"], (zbar, z), bf16=True)
    if device.type == "cuda" and compile_too:
        steps["compile"] = compiled_step(
            copies["compile"], lambda: invariance_nll(*copies["compile"](zbar, z))
        )
    try:
        inn, embedder = build_freia(case, t, freia_width(t))
    except ImportError:
        print("FrEIA is not installed (pip install -e '.[bench]'); its column stays empty")
    else:
        stack = nn.ModuleList([inn, embedder]).to(device)
        steps["freia"] = eager_step(
            stack, lambda: invariance_nll(*inn(zbar, c=[embedder(z)])), "torch"
        )
    return {"steps": steps, "t": t}


def time_steps(
    steps: dict[str, Callable[[], None]], rounds: int, device: torch.device
) -> dict[str, float]:
    """Seconds per step of each contender: the fastest of ``rounds`` interleaved rounds."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    repeats: dict[str, int] = {}
    warmup = WARMUP_CALLS if device.type == "cuda" else 1  # graphs capture only on CUDA
    for name, step in list(steps.items()):
        try:
            for _ in range(warmup):
                step()
        except Exception as err:  # torch.compile can fail on a new torch; the rest still runs
            if name != "compile":
                raise
            print(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); column empty")
            del steps[name]
            continue
        sync()
        start = time.perf_counter()
        step()
        sync()
        # enough steps per round to outlast timer and launch noise: about 50 ms on a GPU
        repeats[name] = (
            max(1, round(0.05 / (time.perf_counter() - start))) if device.type == "cuda" else 1
        )
    best = {name: float("inf") for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            sync()
            start = time.perf_counter()
            for _ in range(repeats[name]):
                step()
            sync()
            best[name] = min(best[name], (time.perf_counter() - start) / repeats[name])
    return best


def cell(value: float | None) -> str:
    return f"{value:9.0f}" if value is not None else f"{'-':>9}"


def ratio(per_second: dict[str, float | None], pair: str) -> str:
    """``a/b`` of two columns' samples/s, or ``-`` when either is missing."""
    top, bottom = (per_second[side] for side in pair.split("/"))
    return f"{top / bottom:11.2f}" if top and bottom else f"{'-':>11}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per contender")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--presets", default="paper,small", help="t presets (comma-separated)")
    parser.add_argument(
        "--compile-batches", default="",
        help="batch sizes (comma-separated) that also time torch.compile on CUDA (off by "
        "default: with torch 2.11 it failed on the small preset and broke the CUDA context)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.quick:
        cases = [Case("small", 64, zbar_dim=16, cond_dim=64)]
        sizes, rounds = {"n_blocks": 2, "width": 32}, 1
    else:
        batches = (256, 4096, 65536) if device.type == "cuda" else (256, 4096)
        cases = [Case(p, b) for p in args.presets.split(",") for b in batches]
        sizes, rounds = {}, args.rounds
    rate = bf16_matmul_rate(device) if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rate_text = f", bf16 matmul {rate / 1e12:.0f} TFLOP/s" if rate else ""
    print(f"{name}, torch {torch.__version__}, best of {rounds} rounds{rate_text}")
    ratios = ("fused/eager", "graph/eager", "bf16/eager", "bf16/floor", "compile/graph",
              "freia/eager")  # fmt: skip
    header = (
        f"{'preset':<7} {'batch':>6} "
        + " ".join(f"{c + '/s':>9}" for c in (*COLUMNS, "floor"))
        + " "
        + " ".join(f"{r:>11}" for r in ratios)
    )
    print(header)
    print("-" * len(header))
    compile_batches = {int(b) for b in args.compile_batches.split(",") if b.strip()}
    for case in cases:
        built = contenders(case, sizes, device, compile_too=case.batch in compile_batches)
        seconds = time_steps(built["steps"], rounds, device)
        per_second: dict[str, float | None] = {c: None for c in COLUMNS}
        per_second.update({c: case.batch / s for c, s in seconds.items()})
        per_second["floor"] = rate / (6 * step_macs(built["t"])) if rate else None

        print(
            f"{case.preset:<7} {case.batch:>6} "
            + " ".join(cell(per_second[c]) for c in (*COLUMNS, "floor"))
            + " "
            + " ".join(ratio(per_second, r) for r in ratios),
            flush=True,
        )
        del built
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
