"""What the two flow fits (``t`` and ``e``) share: the checks of their training options and the
loop they train in (Adam with β = (0.5, 0.9) as in the paper, warm-up, then cosine decay)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from innx.device import AUTO, resolve_device
from innx.errors import ConfigError
from innx.kernels.dispatch import check_choice
from innx.train.graph_step import require_cuda
from innx.train.loop import PRECISIONS, LoopConfig


@dataclass(frozen=True, kw_only=True)
class FlowTraining:
    """The training options of ``innx fit invariance`` and ``innx fit semantic``, checked.

    Keyword-only, so that each fit's own arguments (the store first) stay positional.
    """

    steps: int | None = None
    epochs: float | None = None  # both None: the fit's default epochs
    batch_size: int = 256
    lr: float = 1e-3
    warmup: int = 100
    grad_clip: float | None = 10.0
    val_fraction: float = 0.1
    seed: int = 0
    device: str = AUTO
    precision: str = "fp32"
    in_memory: bool | None = None  # None: when the arrays fit the documented cap
    checkpoint_every: int = 200
    kernels: str = "auto"  # the flows' elementwise work: innx.kernels.dispatch
    cuda_graph: bool = False  # replay each step from one CUDA graph: innx.train.graph_step

    def __post_init__(self) -> None:
        if self.steps is not None and self.epochs is not None:
            raise ConfigError("pass either --steps or --epochs, not both")
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        if self.batch_size < 2:
            raise ConfigError(f"--batch-size must be at least 2, got {self.batch_size}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"--grad-clip must be positive, got {self.grad_clip}")
        device = resolve_device(self.device)
        check_choice(self.kernels, device)
        if self.cuda_graph:
            require_cuda(device)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RESUMABLE_CHANGES = ("checkpoint_every", "in_memory", "store", "kernels", "cuda_graph")
"""Options a resumed fit may change: they do not change what is learned (beyond rounding)."""


def total_steps(
    fit: FlowTraining, steps_per_epoch: int, default_epochs: float, max_default: int
) -> int:
    """``--steps``, or ``--epochs`` in steps; when neither is given ``default_epochs``, at most
    ``max_default`` steps (a large store does not make the default run for days)."""
    if fit.steps is not None:
        return fit.steps
    if fit.epochs is not None:
        return max(1, round(fit.epochs * steps_per_epoch))
    return max(1, min(round(default_epochs * steps_per_epoch), max_default))


def flow_loop(fit: FlowTraining, steps: int) -> LoopConfig:
    """The shared loop's settings for a flow fit of ``steps`` steps."""
    return LoopConfig(
        steps=steps,
        lr=fit.lr,
        betas=(0.5, 0.9),
        schedule="cosine",
        warmup=min(fit.warmup, steps // 5),
        grad_clip=fit.grad_clip,
        seed=fit.seed,
        log_every=min(50, steps),
        eval_every=max(1, steps // 10),
        checkpoint_every=fit.checkpoint_every,
        device=fit.device,
        precision=fit.precision,
        cuda_graph=fit.cuda_graph,
        keep_best="val_nll",
    )
