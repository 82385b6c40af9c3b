"""``--cuda-graph``: the whole training step replayed from one CUDA graph.

The CPU half (run everywhere): what makes a step capturable (metrics as tensors, a learning rate
the schedule fills in place) and the one-line refusals. The GPU half needs CUDA and is skipped
without it: a captured fit trains like an eager one, across a partial batch and a resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
import torch
from flows.blocks import randomize
from torch import nn

from innx.errors import ConfigError
from innx.flows import InvarianceConfig, InvarianceFlow, invariance_nll
from innx.flows.base import capturing
from innx.flows.losses import bits_per_dim
from innx.ops.fit.invariance import InvarianceTask
from innx.train.graph_step import GraphStep, make_capturable, portable_state
from innx.train.loop import LoopConfig, train
from innx.train.run_dir import prepare_run_dir

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def test_cuda_graph_is_refused_off_cuda():
    with pytest.raises(ConfigError, match="--cuda-graph needs a CUDA device, not cpu"):
        LoopConfig(steps=1, cuda_graph=True)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    with pytest.raises(ConfigError, match="--cuda-graph needs a CUDA device, not cpu"):
        GraphStep(
            lambda m, b: (m(b[0]).sum(), {}), model, optimizer, grad_clip=None,
            autocast=torch.autocast, device=torch.device("cpu"),
        )  # fmt: skip
    assert not capturing()


def test_flow_losses_log_tensors_so_the_step_can_be_captured():
    # a float metric would read the loss back to the host, which capture forbids
    config = InvarianceConfig.preset("small", 4, (6,), n_blocks=2, width=8)
    task = InvarianceTask.__new__(InvarianceTask)  # loss() needs none of the store plumbing
    flow = InvarianceFlow(config)
    loss, info = task.loss(flow, (torch.randn(5, 4), torch.randn(5, 6)))
    assert set(info) == {"bits_per_dim"}
    assert isinstance(info["bits_per_dim"], torch.Tensor)
    assert float(info["bits_per_dim"]) == pytest.approx(bits_per_dim(float(loss.detach()), 4))


@pytest.mark.filterwarnings("ignore:Detected call of")  # no Adam step here
def test_the_schedule_fills_a_capturable_learning_rate_in_place():
    model = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    make_capturable(optimizer, torch.device("cpu"))
    rate = optimizer.param_groups[0]["lr"]
    assert isinstance(rate, torch.Tensor) and float(rate) == pytest.approx(0.1)
    assert optimizer.param_groups[0]["capturable"]
    for expected in (0.05, 0.1 / 3):
        schedule.step()
        assert optimizer.param_groups[0]["lr"] is rate  # the graph reads this very tensor
        assert float(rate) == pytest.approx(expected)


def test_a_checkpoint_of_a_capturable_optimiser_resumes_an_eager_one():
    model = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    make_capturable(optimizer, torch.device("cpu"))
    saved = portable_state(optimizer.state_dict())
    assert saved["param_groups"][0]["lr"] == pytest.approx(0.1)
    assert saved["param_groups"][0]["capturable"] is False
    assert optimizer.param_groups[0]["capturable"]  # the live optimiser is left as it was
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(saved)
    fresh.step()  # an eager Adam step on the CPU: it would refuse a capturable state here
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.1)


class FlowTask:
    """t on fixed random tensors; step 9's batch is short, like a last partial batch."""

    def __init__(self, device: torch.device, partial_at: int = 9) -> None:
        config = InvarianceConfig.preset("small", 8, (12,), n_blocks=3, width=32)
        torch.manual_seed(0)
        with torch.no_grad():
            self.model = randomize(InvarianceFlow(config), 0, scale=0.3).to(device)
        self.model.check_finite = False
        self.device, self.partial_at = device, partial_at

    def warm_start(self) -> None:
        """Nothing here: ActNorm initialises on the first step's batch."""

    def batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(start, stop):
            generator = torch.Generator().manual_seed(step)
            n = 20 if step == self.partial_at else 64
            zbar, z = (
                torch.randn(n, 8, generator=generator),
                torch.randn(n, 12, generator=generator),
            )
            yield zbar.to(self.device), z.to(self.device)

    def loss(self, model, batch):
        v, logdet = model(*batch)
        nll = invariance_nll(v.float(), logdet.float())
        return nll, {"bits_per_dim": bits_per_dim(nll.detach(), 8)}

    def evaluate(self):
        zbar, z = next(self.batches(1000, 1001))
        return {"nll": float(self.loss(self.model, (zbar, z))[0])}


def fit(tmp_path, name: str, partial_at: int = 9, **options) -> tuple[FlowTask, list[float]]:
    task = FlowTask(torch.device("cuda"), partial_at)
    config = LoopConfig(
        steps=14, lr=3e-3, warmup=2, grad_clip=5.0, log_every=1, device="cuda", **options
    )
    out = tmp_path / name
    prepare_run_dir(out, resume=False, overwrite=False)
    result = train(task, config, out)
    return task, [record["loss"] for record in result.history if "loss" in record]


@cuda
@pytest.mark.parametrize(
    ("precision", "partial_at"),
    [("fp32", 9), ("bf16", 9), ("fp32", 3)],  # step 3 would be captured: a partial batch is not
)
def test_a_captured_fit_trains_like_an_eager_one(tmp_path, precision, partial_at):
    eager, eager_losses = fit(tmp_path, "eager", partial_at, precision=precision)
    graph, graph_losses = fit(tmp_path, "graph", partial_at, precision=precision, cuda_graph=True)
    assert len(graph_losses) == 14  # warm-up steps, capture, replays and the partial batch
    tolerance = 1e-4 if precision == "fp32" else 2e-2
    assert graph_losses == pytest.approx(eager_losses, rel=tolerance)
    captured = graph.model.state_dict()
    for name, value in eager.model.state_dict().items():
        torch.testing.assert_close(captured[name], value, rtol=tolerance, atol=tolerance)


@cuda
def test_warm_up_capture_replays_and_the_partial_batch(tmp_path):
    task = FlowTask(torch.device("cuda"), partial_at=9)
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-3)
    step = GraphStep(
        task.loss, task.model, optimizer, grad_clip=1.0, autocast=nullcontext,
        device=torch.device("cuda"),
    )  # fmt: skip
    losses = [float(step(batch)["loss"]) for batch in task.batches(0, 14)]
    # steps 0-2 warm up, 3 captures, 9 is partial (eager): ten replays
    assert step.graph is not None and step.replays == 14 - 3 - 1 - 1
    assert all(math.isfinite(loss) for loss in losses)


@cuda
def test_a_captured_fit_resumes_from_an_eager_checkpoint(tmp_path):
    whole, _ = fit(tmp_path, "whole", cuda_graph=True)
    out = tmp_path / "split"
    prepare_run_dir(out, resume=False, overwrite=False)
    options = {"steps": 14, "lr": 3e-3, "warmup": 2, "grad_clip": 5.0, "log_every": 1}
    first = FlowTask(torch.device("cuda"))
    first.batches = _stop_at(first.batches, 7)  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        train(first, LoopConfig(device="cuda", checkpoint_every=5, **options), out)
    prepare_run_dir(out, resume=True, overwrite=False)
    second = FlowTask(torch.device("cuda"))
    config = LoopConfig(device="cuda", cuda_graph=True, checkpoint_every=5, **options)
    result = train(second, config, out, resume=True)
    assert result.resumed_from == 5
    resumed = second.model.state_dict()
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-4, atol=1e-4)


def _stop_at(batches, step: int):
    def stopping(start: int, stop: int):
        for i, batch in enumerate(batches(start, stop), start=start):
            if i == step:
                raise KeyboardInterrupt
            yield batch

    return stopping


@cuda
def test_a_captured_autoencoder_fit_trains_like_an_eager_one(tmp_path):
    """The convolutional autoencoder (BatchNorm, uint8 images copied in) captured as one graph:
    the same logged losses and held-out reconstructions as its eager fit."""
    import json

    from innx.ops.fit.autoencoder import AutoencoderFit, fit_autoencoder

    runs = {}
    for graph in (False, True):
        fit = AutoencoderFit(
            "shapes:n=600,size=32", latent_dim=8, steps=40, device="cuda", cuda_graph=graph
        )
        metrics = fit_autoencoder(fit, tmp_path / f"graph-{graph}").metrics
        lines = (tmp_path / f"graph-{graph}" / "metrics.jsonl").read_text().splitlines()
        losses = [json.loads(line)["loss"] for line in lines if '"loss"' in line]
        runs[graph] = losses, metrics["val_psnr"]
    (eager_losses, eager_psnr), (graph_losses, graph_psnr) = runs[False], runs[True]
    assert len(graph_losses) == len(eager_losses) == 2
    assert graph_losses == pytest.approx(eager_losses, rel=1e-3)
    assert graph_psnr == pytest.approx(eager_psnr, abs=0.05)
