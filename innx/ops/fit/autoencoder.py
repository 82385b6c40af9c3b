"""``fit_autoencoder``: train the built-in convolutional autoencoder ``E, D`` on a dataset.

The dataset is split once, from the seed, into training and validation rows; both are read into
memory as ``uint8`` images at the autoencoder's size when they fit in :data:`MEMORY_CAP`
(otherwise training batches are streamed from the dataset). Training goes through the shared loop
(:mod:`innx.train.loop`): Adam, a cosine schedule with warm-up, checkpoints, resume, DDP under
``torchrun``. The loss is a variational one with a small KL weight:

    L = mean|D(zbar) - x| + mean (D(zbar) - x)² + kl_weight · KL(q(zbar | x) ‖ N(0, I))

with ``zbar`` sampled from the posterior. L1 keeps edges sharp, the squared error is what PSNR
measures, and the KL term keeps the codes near unit scale and the decoder smooth around them. The
run directory's manifest holds the held-out PSNR of ``D(E(x))`` (``E`` the posterior mean) and,
given the classifier to be explained (``classifier``), how often it predicts on a held-out
reconstruction what it predicts on the image (``val_agreement``): an autoencoder that changes
the classifier's mind cannot show what the classifier sees. The run ends on the weights of its
best held-out evaluation (``best_step``). ``load_autoencoder(RUN)`` (``innx extract
--autoencoder RUN``) loads the model.

On shapes (``shapes:n=20000,size=32``) the defaults (``demo``, 6 epochs of 32 images: about
3400 steps) train in about 2.5 minutes on two CPU cores to a held-out PSNR near 31 dB, and a
classifier trained on shapes keeps its prediction on all but a few in a thousand reconstructions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from innx.autoencoders.conv import (
    AUTOENCODER_PRESETS,
    IMAGE_SIZES,
    AutoencoderConfig,
    ConvAutoencoder,
)
from innx.autoencoders.loader import KIND
from innx.backbones import Backbone, Preprocessing, load_backbone
from innx.data.base import ImageDataset
from innx.data.spec import open_dataset
from innx.device import AUTO, device_line, resolve_device, to_device
from innx.errors import ConfigError
from innx.store.runs import DatasetInput, RunInputs
from innx.train.distributed import current_part, local_device
from innx.train.graph_step import require_cuda
from innx.train.images import ImageBatch, ShuffledImages, load_images
from innx.train.loop import LoopConfig, Progress, train
from innx.train.run_dir import RunDir, open_run_dir
from innx.train.split import split_rows

PLUGIN = "conv"
DEFAULT_EPOCHS = {"demo": 6.0, "standard": 30.0}
"""Passes over the training images when neither ``steps`` nor ``epochs`` is given."""
MIN_DEFAULT_STEPS = 3_000
"""The default length is at least this many steps, however small the dataset: on digits
(10 800 training images) 6 epochs (2022 steps) kept a classifier's prediction on 95.8 % of
held-out reconstructions (PSNR 24.9 dB), 3000 steps on 99.2 % (27.5 dB); on shapes (18 000
images) 6 epochs are 3375 steps and keep 99.9 % (31.6 dB)."""
MAX_DEFAULT_STEPS = 30_000
"""The default length never exceeds this many steps, however large the dataset."""
EVALUATIONS = 10  # held-out evaluations per run (the best one's weights are kept)
EVAL_BATCH = 500


@dataclass(frozen=True)
class AutoencoderFit:
    """The arguments of ``innx fit autoencoder`` (everything that determines the result).

    ``size`` ``None`` takes the dataset's own image size (square, one of 32, 64, 128 px; a
    ``folder:`` dataset's is read from its files' headers when every image has one size);
    ``steps`` and ``epochs`` both ``None`` the preset's default epochs (:data:`DEFAULT_EPOCHS`,
    at least :data:`MIN_DEFAULT_STEPS` and at most :data:`MAX_DEFAULT_STEPS` steps).
    """

    data: str
    latent_dim: int = 64
    size: int | None = None
    preset: str = "demo"
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 32
    lr: float = 2e-3
    kl_weight: float = 1e-5
    val_fraction: float = 0.1
    seed: int = 0
    device: str = AUTO
    cuda_graph: bool = False  # replay each step from one CUDA graph: innx.train.graph_step
    workers: int = 0
    checkpoint_every: int = 100
    classifier: str | None = None  # a classifier run: measure its agreement on reconstructions

    def __post_init__(self) -> None:
        if self.preset not in AUTOENCODER_PRESETS:
            raise ConfigError(
                f"unknown preset {self.preset!r}; choose one of: {', '.join(AUTOENCODER_PRESETS)}"
            )
        if self.size is not None and self.size not in IMAGE_SIZES:
            raise ConfigError(
                f"--size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {self.size}"
            )
        if self.latent_dim < 1:
            raise ConfigError(f"--latent-dim must be at least 1, got {self.latent_dim}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be at least 1, got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        if self.steps is not None and self.epochs is not None:
            raise ConfigError("pass either --steps or --epochs, not both")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if not self.kl_weight >= 0:
            raise ConfigError(f"--kl-weight must be zero or positive, got {self.kl_weight}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        device = resolve_device(self.device)  # a device this machine lacks: refused here
        if self.cuda_graph:
            require_cuda(device)

    def total_steps(self, steps_per_epoch: int) -> int:
        """``steps``, or ``epochs`` of ``steps_per_epoch`` (default: the preset's, within
        :data:`MIN_DEFAULT_STEPS` … :data:`MAX_DEFAULT_STEPS`)."""
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return max(1, round(self.epochs * steps_per_epoch))
        default = round(DEFAULT_EPOCHS[self.preset] * steps_per_epoch)
        return max(MIN_DEFAULT_STEPS, min(default, MAX_DEFAULT_STEPS))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AutoencoderResult:
    """Where the run was written and its final metrics."""

    run_dir: Path
    metrics: dict[str, float]


def fit_autoencoder(
    fit: AutoencoderFit,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> AutoencoderResult:
    """Train the conv autoencoder on ``fit.data`` into run directory ``out``; see the module
    docstring."""
    say = log or (lambda _message: None)
    out = Path(out)
    dataset = open_dataset(fit.data)
    config = autoencoder_config(fit, dataset)
    started = time.perf_counter()
    part = current_part(fit.device)
    device = local_device(fit.device)
    judge = _classifier(fit.classifier, device)  # first: a bad run leaves no directory
    with open_run_dir(
        out, fit=fit.to_dict(), part=part, resume=resume, overwrite=overwrite,
        ignore=("workers", "checkpoint_every", "classifier", "cuda_graph"),
    ) as run:  # fmt: skip
        metrics = _train(fit, dataset, config, judge, run, device, started, progress, say)
    return AutoencoderResult(out, metrics)


def _train(
    fit: AutoencoderFit,
    dataset: ImageDataset,
    config: AutoencoderConfig,
    judge: Backbone | None,
    run: RunDir,
    device: torch.device,
    started: float,
    progress: Progress | None,
    say: Callable[[str], None],
) -> dict[str, float]:
    """Train in ``run`` on ``device`` and write the run; its final metrics."""
    part, out = run.part, run.path
    torch.manual_seed(fit.seed)
    model = ConvAutoencoder(config).to(device)
    if device.type == "cpu":  # oneDNN convolutions run ~2x faster in channels-last on the CPU
        model.to(memory_format=torch.channels_last)

    size, channels = config.image_size, config.channels
    pre = Preprocessing(
        size=(size, size), mean=(0.0,) * channels, std=(1.0,) * channels, channels=channels
    )
    train_rows, val_rows = split_rows(len(dataset), fit.val_fraction, fit.seed)
    say(device_line(device))
    say(f"{len(train_rows)} training and {len(val_rows)} validation images of {dataset.spec}")
    val = load_images(dataset, val_rows, pre, workers=fit.workers)
    train_data = ShuffledImages(
        dataset, train_rows, pre, fit.batch_size, fit.seed, workers=fit.workers, part=part
    )
    task = AutoencoderTask(model, train_data, val, fit.kl_weight, device=device, classifier=judge)
    steps = fit.total_steps(train_data.steps_per_epoch)
    loop = LoopConfig(
        steps=steps,
        lr=fit.lr,
        betas=(0.9, 0.99),
        schedule="cosine",
        warmup=min(100, steps // 10),
        seed=fit.seed,
        log_every=min(20, steps),
        eval_every=max(1, steps // EVALUATIONS),
        checkpoint_every=fit.checkpoint_every,
        device=fit.device,
        cuda_graph=fit.cuda_graph,
        keep_best="val_mse",
    )
    result = train(task, loop, out, resume=run.resuming, progress=progress)
    metrics = {
        **result.metrics,
        "steps": float(steps),
        "epochs": steps / train_data.steps_per_epoch,
        "seconds": time.perf_counter() - started,
    }
    inputs = RunInputs(
        dataset=DatasetInput(
            dataset.spec, dataset.fingerprint(), len(dataset), len(train_rows), len(val_rows)
        ),
        fit=fit.to_dict(),
    )
    run.write(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        KIND,
        {"plugin": PLUGIN, **config.to_dict()},
        inputs=inputs,
        seed=fit.seed,
        metrics=metrics,
        device=device,
    )
    return metrics


def autoencoder_config(fit: AutoencoderFit, dataset: ImageDataset) -> AutoencoderConfig:
    """The model a fit trains: the preset, the dataset's channels, ``fit.size`` or the
    dataset's own square size."""
    size = fit.size
    if size is None:
        own = dataset.image_size
        if own is None or own[0] != own[1] or own[0] not in IMAGE_SIZES:
            found = "images of varying sizes" if own is None else f"{own[0]}×{own[1]} px images"
            raise ConfigError(
                f"dataset {dataset.spec} has {found}; pass --size "
                f"{', '.join(map(str, IMAGE_SIZES))} to resize them for the autoencoder"
            )
        size = own[0]
    return AutoencoderConfig.preset(
        fit.preset, image_size=size, channels=dataset.channels, latent_dim=fit.latent_dim
    )


def _classifier(run: str | None, device: torch.device) -> Backbone | None:
    if run is None:
        return None
    backbone, _ = load_backbone(None, run)
    if backbone.logits is None:
        raise ConfigError(f"{run} is not a classifier; --classifier needs a run of fit classifier")
    backbone.model.to(device).eval()
    return backbone


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB ``[B]`` of images in [0, 1] (capped at 100 dB for exact copies)."""
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


class AutoencoderTask:
    """The variational loss on shuffled batches; held-out PSNR and squared error of ``D(E(x))``,
    and the ``classifier``'s agreement on them when one is given (see
    :class:`~innx.train.loop.Task`)."""

    def __init__(
        self,
        model: ConvAutoencoder,
        train: ShuffledImages,
        val: ImageBatch,
        kl_weight: float,
        *,
        device: torch.device,
        classifier: Backbone | None = None,
    ) -> None:
        self.model: nn.Module = model
        self.autoencoder = model
        self.train = train
        self.val = val
        self.kl_weight = kl_weight
        self.device = device
        self.classifier = classifier
        self._reference: torch.Tensor | None = None  # the classifier's predictions on val

    def batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor]]:
        """``uint8 [B, C, S, S]`` images of each step, on the device (a tuple, as a CUDA graph
        takes its inputs)."""
        for batch in self.train.batches(start, stop):
            yield (to_device(batch.images, self.device),)

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        x = to_device(images, self.device).float().div_(255.0)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def warm_start(self) -> None:
        """Nothing to initialise from data."""

    def loss(
        self, model: nn.Module, batch: tuple[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self._input(batch[0])
        x_hat, mean, logvar = model(x)
        diff = x_hat.float() - x
        mse = diff.pow(2).mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).float().sum(1).mean()
        loss = diff.abs().mean() + mse + self.kl_weight * kl
        return loss, {"mse": mse.detach(), "kl": kl.detach()}  # tensors: read once per log line

    def evaluate(self) -> dict[str, float]:
        values, agreed = [], []
        for i in range(0, len(self.val), EVAL_BATCH):
            x = self._input(self.val.images[i : i + EVAL_BATCH])
            x_hat = self.autoencoder.decode(self.autoencoder.encode(x))
            values.append(torch.stack([psnr(x_hat, x), (x_hat - x).pow(2).flatten(1).mean(1)]))
            if self.classifier is not None:
                agreed.append(self._predict(x_hat.clamp(0, 1)) == self._predict(x))
        psnrs, mses = torch.cat(values, dim=1).cpu()
        metrics = {"psnr": psnrs.mean().item(), "mse": mses.mean().item()}
        if agreed:
            metrics["agreement"] = torch.cat(agreed).float().mean().item()
        return metrics

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        assert self.classifier is not None
        logits = self.classifier(self.classifier.preprocessing(x.contiguous()))
        return logits.flatten(1).argmax(1)
