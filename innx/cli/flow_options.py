"""Training options of the two flow fits (``fit invariance``, ``fit semantic``), declared once."""

from __future__ import annotations

from typing import Annotated

import typer

Steps = Annotated[
    int | None, typer.Option("--steps", min=1, help="Optimiser steps (overrides the default).")
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=2, help="Images or rows per step.")]
CheckpointEvery = Annotated[
    int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")
]
FlowEpochs = Annotated[
    float | None,
    typer.Option("--epochs", help="Passes over the training rows (default: see above)."),
]
FlowLr = Annotated[float, typer.Option("--lr", help="Adam learning rate (β = 0.5, 0.9).")]
GradClip = Annotated[
    float | None, typer.Option("--grad-clip", help="Clip the gradient norm to this.")
]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="fp32, or bf16: matrix products under bf16 autocast, log-dets in float32.",
    ),
]
Kernels = Annotated[
    str,
    typer.Option(
        "--kernels",
        help="The flows' elementwise work: auto (fused Triton kernels on CUDA), torch or triton.",
    ),
]
CudaGraph = Annotated[
    bool,
    typer.Option(
        "--cuda-graph",
        help="Replay the whole training step from one CUDA graph (one process, CUDA only): "
        "less launch overhead at small batches.",
    ),
]
