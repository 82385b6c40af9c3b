"""A training run in its own process, for the loop tests: ``python loop_worker.py OUT MODE``.

``MODE`` is ``fresh``, ``resume`` (both write ``OUT/final.pt``) or ``grads`` (writes the gradients
of each step, per rank, to ``OUT/grads-<rank>.pt``). ``INNX_TEST_SLOW`` sleeps that many seconds
per step, so that a kill lands mid-run. Run under torchrun for several processes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from innx.flows import InvarianceConfig, InvarianceFlow, invariance_nll
from innx.train.distributed import current_part
from innx.train.loop import LoopConfig, train
from innx.train.run_dir import prepare_run_dir

GLOBAL_BATCH = 16
CONFIG = LoopConfig(steps=24, lr=3e-3, betas=(0.5, 0.9), warmup=4, log_every=4, checkpoint_every=5)


class FlowTask:
    """The invariance cINN on a fixed synthetic problem; global batch of step s from (seed, s)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        config = InvarianceConfig.preset("small", zbar_dim=4, cond_shape=(6,), n_blocks=3)
        self.model = InvarianceFlow(config)
        self.part = current_part()
        self.slow = float(os.environ.get("INNX_TEST_SLOW", "0"))

    def global_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1000 + step)
        z = torch.randn(GLOBAL_BATCH, 6, generator=g)
        zbar = z[:, :4] * 2 + 0.5 * torch.randn(GLOBAL_BATCH, 4, generator=g)
        return zbar, z

    def warm_start(self) -> None:
        with torch.no_grad():
            self.model(*self.global_batch(0))

    def batches(self, start, stop):
        for step in range(start, stop):
            zbar, z = self.global_batch(step)
            share = self.part.share(GLOBAL_BATCH)
            time.sleep(self.slow)
            yield zbar[share], z[share]

    def loss(self, model, batch):
        v, logdet = model(*batch)
        return invariance_nll(v, logdet), {}

    def evaluate(self):
        v, logdet = self.model(*self.global_batch(-1))
        return {"nll": float(invariance_nll(v, logdet))}


def main(out: Path, mode: str) -> None:
    task = FlowTask()
    part = task.part
    if mode == "grads":
        grads: list[dict[str, torch.Tensor]] = []

        def keep(step: int, model: torch.nn.Module) -> None:
            grads.append({k: p.grad.clone() for k, p in model.named_parameters()})

        resuming = prepare_run_dir(out / f"run-{part.rank}", resume=False, overwrite=True)
        config = LoopConfig(steps=3, lr=1e-3, betas=(0.5, 0.9), checkpoint_every=100)
        train(task, config, out / f"run-{part.rank}", resume=resuming, on_gradients=keep)
        torch.save(grads, out / f"grads-{part.rank}.pt")
        return
    resuming = prepare_run_dir(out, resume=mode == "resume", overwrite=False)
    train(task, CONFIG, out, resume=resuming)
    torch.save(task.model.state_dict(), out / "final.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
