"""What the two flow fits (``t`` and ``e``) share: the checks of their training options and the
loop they train in (Adam with β = (0.5, 0.9) as in the paper, warm-up, then cosine decay)."""

from __future__ import annotations

from typing import Protocol

from innx.errors import ConfigError
from innx.ops.training import PRECISIONS, LoopConfig


class FlowTraining(Protocol):
    """The training options of ``innx fit invariance`` and ``innx fit semantic``."""

    @property
    def steps(self) -> int | None: ...
    @property
    def epochs(self) -> float | None: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def warmup(self) -> int: ...
    @property
    def grad_clip(self) -> float | None: ...
    @property
    def val_fraction(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def checkpoint_every(self) -> int: ...


def check_flow_training(fit: FlowTraining) -> None:
    """One-line errors for training options that cannot work."""
    if fit.steps is not None and fit.epochs is not None:
        raise ConfigError("pass either --steps or --epochs, not both")
    if fit.epochs is not None and not fit.epochs > 0:
        raise ConfigError(f"--epochs must be positive, got {fit.epochs}")
    if fit.batch_size < 2:
        raise ConfigError(f"--batch-size must be at least 2, got {fit.batch_size}")
    if not 0.0 < fit.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be between 0 and 1, got {fit.val_fraction}")
    if fit.precision not in PRECISIONS:
        raise ConfigError(f"precision {fit.precision!r} is not one of {', '.join(PRECISIONS)}")
    if fit.grad_clip is not None and not fit.grad_clip > 0:
        raise ConfigError(f"--grad-clip must be positive, got {fit.grad_clip}")


def total_steps(fit: FlowTraining, steps_per_epoch: int, default_epochs: float) -> int:
    """``--steps``, or ``--epochs`` (``default_epochs`` when neither is given) in steps."""
    if fit.steps is not None:
        return fit.steps
    epochs = fit.epochs if fit.epochs is not None else default_epochs
    return max(1, round(epochs * steps_per_epoch))


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
    )
