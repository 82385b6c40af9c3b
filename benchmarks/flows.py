"""Training throughput of the invariance cINN t, side by side with a matmul floor and FrEIA.

For each preset and batch size, one training step (forward, loss, backward) of

* ``innx``   - ``InvarianceFlow`` as the library builds it (paper block: ActNorm, invertible
               leaky ReLU, double affine coupling with one scale-and-shift MLP per half, shuffle),
* ``floor``  - the same matrix products as innx (condition embedder and every coupling MLP, forward
               and backward) and nothing else: no bias, activation, exp, concatenation or shuffle,
* ``freia``  - FrEIA's equivalent stack: ActNorm → RNVPCouplingBlock → PermuteRandom, conditioned
               by the same embedder. RNVP has separate scale and shift subnets per half, like the
               paper's code; their width is chosen so the stack does the same FLOPs as innx.

Contenders run in interleaved rounds (a, b, c, a, b, c, …) on the same inputs, so slow drifts of
a noisy machine hit all of them alike, and the fastest round of each is kept (noise only ever
adds time). Compare the ratios, not the absolute numbers.

    python benchmarks/flows.py                # the full table (minutes on a 2-core CPU)
    python benchmarks/flows.py --quick        # tiny sizes: checks that everything runs
    python benchmarks/flows.py --device cuda  # the GPU table: eager, fused kernels, CUDA graph,
                                              # bf16, FrEIA and the floor (see kernels.py)
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from innx.flows import InvarianceConfig, InvarianceFlow, invariance_nll
from innx.flows.coupling import AffineCoupling


@dataclass(frozen=True)
class Case:
    preset: str
    batch: int
    zbar_dim: int = 128
    cond_dim: int = 4096


def build_innx(case: Case, **sizes: int) -> InvarianceFlow:
    config = InvarianceConfig.preset(case.preset, case.zbar_dim, (case.cond_dim,), **sizes)
    return InvarianceFlow(config).train()


def innx_step(t: InvarianceFlow, zbar: Tensor, z: Tensor) -> Callable[[], None]:
    def step() -> None:
        t.zero_grad(set_to_none=True)
        invariance_nll(*t(zbar, z)).backward()

    return step


def matmul_floor_step(t: InvarianceFlow, zbar: Tensor, z: Tensor) -> Callable[[], None]:
    """The matrix products of ``t``'s step and nothing else."""
    batch = zbar.shape[0]
    embed_weights = [nn.Parameter(layer.weight.detach().clone()) for layer in t.embedder.linears]
    nets = [m for m in t.modules() if isinstance(m, AffineCoupling)]
    chains = []
    for coupling in nets:
        for net in (coupling.net1, coupling.net2):
            weights = [nn.Parameter(layer.weight.detach().clone()) for layer in net.layers]
            inp = torch.randn(batch, weights[0].shape[1], requires_grad=True)
            chains.append((inp, weights))

    # Contiguous output gradients: a stride-0 gradient (from .sum()) would push the backward
    # products off the fast GEMM path and make the floor slower than the real thing.
    ones = {}

    def step() -> None:
        h = z
        for w in embed_weights:
            h = h @ w.T
        outputs = [h]
        for inp, weights in chains:
            h = inp
            for w in weights:
                h = h @ w.T
            outputs.append(h)
        grads = [ones.setdefault(i, torch.ones_like(out)) for i, out in enumerate(outputs)]
        torch.autograd.backward(outputs, grads)
        for w in embed_weights:
            w.grad = None
        for inp, weights in chains:
            inp.grad = None
            for w in weights:
                w.grad = None

    return step


def mlp_flops(widths: list[int]) -> int:
    """Multiply-adds per sample of a chain of linear layers."""
    return sum(a * b for a, b in itertools.pairwise(widths))


def coupling_macs(t: InvarianceFlow, freia_width: int | None = None) -> int:
    """Multiply-adds per sample of one coupling's networks: innx's two scale-and-shift MLPs, or
    (with ``freia_width``) FrEIA RNVP's four subnets (scale and shift apart, for each half)."""
    cfg = t.config
    half, cond = cfg.zbar_dim // 2, cfg.resolved_embed_dim
    if freia_width is None:
        return 2 * mlp_flops([half + cond] + [cfg.width] * cfg.depth + [2 * half])
    return 4 * mlp_flops([half + cond] + [freia_width] * cfg.depth + [half])


def freia_width(t: InvarianceFlow) -> int:
    """Hidden width that gives FrEIA's four RNVP subnets the multiply-adds of innx's two MLPs."""
    cfg = t.config
    half, cond = cfg.zbar_dim // 2, cfg.resolved_embed_dim
    # 4 subnets, each (half + cond) → w → … → w → half:  4 · (w·(half+cond) + (depth−1)·w² + w·half)
    a, b = 4 * (cfg.depth - 1), 4 * (2 * half + cond)
    ours = coupling_macs(t)
    return round((-b + math.sqrt(b * b + 4 * a * ours)) / (2 * a)) if a else round(ours / b)


def build_freia(case: Case, t: InvarianceFlow, width: int) -> tuple[nn.Module, nn.Module]:
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    depth = t.config.depth

    def subnet(c_in: int, c_out: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Linear(c_in, width), nn.LeakyReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.LeakyReLU()]
        return nn.Sequential(*layers, nn.Linear(width, c_out))

    inn = Ff.SequenceINN(case.zbar_dim)
    cond = t.config.resolved_embed_dim
    for _ in range(t.config.n_blocks):
        inn.append(Fm.ActNorm)
        inn.append(
            Fm.RNVPCouplingBlock,
            cond=0,
            cond_shape=(cond,),
            subnet_constructor=subnet,
            clamp=1.0,
            clamp_activation="TANH",
        )
        inn.append(Fm.PermuteRandom)
    embedder = type(t.embedder)(case.cond_dim, cond, t.config.embed_depth)
    return inn.train(), embedder.train()


def freia_step(inn: nn.Module, embedder: nn.Module, zbar: Tensor, z: Tensor) -> Callable[[], None]:
    def step() -> None:
        inn.zero_grad(set_to_none=True)
        embedder.zero_grad(set_to_none=True)
        v, logdet = inn(zbar, c=[embedder(z)])
        invariance_nll(v, logdet).backward()

    return step


def time_rounds(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    for step in steps.values():  # warm-up, also runs ActNorm's data-dependent init
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def run_case(case: Case, rounds: int, sizes: dict[str, int]) -> dict[str, float | int | None]:
    torch.manual_seed(0)
    t = build_innx(case, **sizes)
    zbar, z = torch.randn(case.batch, case.zbar_dim), torch.randn(case.batch, case.cond_dim)
    steps = {"innx": innx_step(t, zbar, z), "floor": matmul_floor_step(t, zbar, z)}
    width = freia_width(t)
    try:
        inn, embedder = build_freia(case, t, width)
        steps["freia"] = freia_step(inn, embedder, zbar, z)
    except ImportError:
        print("FrEIA is not installed (pip install -e '.[bench]'); its column stays empty")
    seconds = time_rounds(steps, rounds)
    row: dict[str, float | int | None] = {
        name: case.batch / seconds[name] if name in seconds else None
        for name in ("innx", "floor", "freia")
    }
    row["freia_width"] = width
    row["macs_ratio"] = coupling_macs(t, width) / coupling_macs(t)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per contender")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for kernels.py's GPU table")
    args = parser.parse_args()
    if args.device != "cpu":
        import kernels  # the GPU columns live there; it imports this module's builders

        kernels.main(
            ["--device", args.device, "--rounds", str(args.rounds)] + ["--quick"] * args.quick
        )
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        cases = [
            Case("small", 64, zbar_dim=16, cond_dim=64),
            Case("paper", 64, zbar_dim=16, cond_dim=64),
        ]
        sizes = {"n_blocks": 2, "width": 32}
        rounds = 1
    else:
        cases = [Case(p, b) for p in ("paper", "small") for b in (256, 4096)]
        sizes, rounds = {}, args.rounds
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {rounds} rounds")
    header = f"{'preset':<7} {'batch':>5} {'innx/s':>9} {'floor/s':>9} {'freia/s':>9} {'innx/floor':>10} {'innx/freia':>10} {'freia width':>11} {'MACs freia/innx':>15}"
    print(header)
    print("-" * len(header))
    for case in cases:
        row = run_case(case, rounds, sizes)
        innx, floor, freia = row["innx"], row["floor"], row["freia"]
        assert isinstance(innx, float) and isinstance(floor, float)
        freia_text = f"{freia:9.0f}" if isinstance(freia, float) else f"{'-':>9}"
        vs_freia = f"{innx / freia:10.2f}" if isinstance(freia, float) else f"{'-':>10}"
        print(
            f"{case.preset:<7} {case.batch:>5} {innx:9.0f} {floor:9.0f} {freia_text} "
            f"{innx / floor:10.2f} {vs_freia} {row['freia_width']:>11} {row['macs_ratio']:15.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
