"""``fit_classifier``: train a registered backbone to classify a labelled dataset.

The dataset is split once, from the seed, into training and validation rows; both are read into
memory as ``uint8`` images at the backbone's input size when they fit in :data:`MEMORY_CAP`
(otherwise training batches are streamed from the dataset). Training goes through the shared loop
(:mod:`innx.ops.training`): Adam, a cosine schedule, checkpoints, resume. The run directory holds
the weights, the backbone name and options that rebuild the model, and the validation accuracy in
its manifest; ``load_backbone(None, RUN)`` (``--backbone smallcnn --weights RUN``) loads it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from innx.backbones import CLASSIFIER_KIND, Backbone, Preprocessing, load_backbone
from innx.backbones.registry import build_backbone
from innx.data.base import ImageDataset
from innx.data.spec import open_dataset
from innx.errors import ConfigError
from innx.ops.distributed import SINGLE, Part, agree, current_part, local_device
from innx.ops.images import MEMORY_CAP, ImageBatch, image_bytes, iter_batches, load_images
from innx.ops.run_dirs import check_same_fit, finish_run_dir, prepare_run_dir
from innx.ops.training import LoopConfig, Progress, train
from innx.store.runs import write_run

EVAL_BATCH = 512


@dataclass(frozen=True)
class ClassifierFit:
    """The arguments of ``innx fit classifier`` (everything that determines the result)."""

    data: str
    backbone: str = "smallcnn"
    options: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    epochs: float = 4.0
    steps: int | None = None
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    workers: int = 0
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.steps is None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassifierResult:
    """Where the run was written and its final metrics."""

    run_dir: Path
    metrics: dict[str, float]


def fit_classifier(
    fit: ClassifierFit,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> ClassifierResult:
    """Train ``fit.backbone`` on ``fit.data`` into run directory ``out``; see the module docstring."""
    say = log or (lambda _message: None)
    out = Path(out)
    dataset = open_dataset(fit.data)
    if dataset.classes is None:
        raise ConfigError(
            f"dataset {dataset.spec} has no class labels; a classifier needs them "
            "(a folder with one subfolder per class, or a dataset with labels)"
        )
    started = time.perf_counter()
    part = current_part(fit.device)
    resuming = False
    if part.is_main:
        resuming = prepare_run_dir(out, resume=resume, overwrite=overwrite)
        check_same_fit(out, fit.to_dict(), resuming, ignore=("workers", "checkpoint_every"))
    resuming = agree(part, resuming)
    device = local_device(fit.device)
    torch.manual_seed(fit.seed)
    backbone = _build(fit, dataset)
    model = backbone.model.to(device)
    if device.type == "cpu":  # oneDNN convolutions run ~2x faster in channels-last on the CPU
        model.to(memory_format=torch.channels_last)

    train_rows, val_rows = split_rows(len(dataset), fit.val_fraction, fit.seed)
    say(f"{len(train_rows)} training and {len(val_rows)} validation images of {dataset.spec}")
    val = load_images(dataset, val_rows, backbone.preprocessing, workers=fit.workers)
    in_memory = image_bytes(len(train_rows), backbone.preprocessing) <= MEMORY_CAP
    train_data = (
        load_images(dataset, train_rows, backbone.preprocessing, workers=fit.workers)
        if in_memory
        else None
    )
    steps_per_epoch = max(1, len(train_rows) // fit.batch_size)
    steps = fit.steps if fit.steps is not None else math.ceil(fit.epochs * steps_per_epoch)
    task = ClassifierTask(
        backbone,
        dataset,
        train_rows,
        train_data,
        val,
        fit.batch_size,
        fit.seed,
        device,
        fit.workers,
        part,
    )
    config = LoopConfig(
        steps=steps,
        lr=fit.lr,
        weight_decay=fit.weight_decay,
        schedule="cosine",
        warmup=min(100, steps // 10),
        seed=fit.seed,
        log_every=min(20, steps),
        eval_every=steps_per_epoch,
        checkpoint_every=fit.checkpoint_every,
        device=fit.device,
    )
    result = train(task, config, out, resume=resuming, progress=progress)
    metrics = {
        **result.metrics,
        "steps": float(steps),
        "epochs": steps / steps_per_epoch,
        "seconds": time.perf_counter() - started,
    }
    if part.is_main:
        config_json = {
            "backbone": backbone.name,
            "options": backbone.options,
            "classes": list(dataset.classes),
            "preprocessing": backbone.preprocessing.to_dict(),
        }
        write_run(
            out,
            {k: v.contiguous() for k, v in model.state_dict().items()},
            CLASSIFIER_KIND,
            config_json,
            seed=fit.seed,
            metrics=metrics,
            extra={
                "dataset": {
                    "spec": dataset.spec,
                    "fingerprint": dataset.fingerprint(),
                    "n": len(dataset),
                    "train": len(train_rows),
                    "validation": len(val_rows),
                },
                "fit": fit.to_dict(),
            },
        )
        finish_run_dir(out)
    part.barrier()  # every process returns once the run directory is complete
    return ClassifierResult(out, metrics)


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation rows of ``n``: a permutation from ``seed``, cut once."""
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 1:
        raise ConfigError(f"a dataset of {n} images is too small to split for validation")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


class ClassifierTask:
    """Cross-entropy on shuffled batches; validation accuracy and loss (see :class:`~innx.ops.training.Task`)."""

    def __init__(
        self,
        backbone: Backbone,
        dataset: ImageDataset,
        train_rows: torch.Tensor,
        train_data: ImageBatch | None,
        val: ImageBatch,
        batch_size: int,
        seed: int,
        device: torch.device,
        workers: int,
        part: Part = SINGLE,
    ) -> None:
        self.model = backbone.model
        self.preprocessing: Preprocessing = backbone.preprocessing
        self.dataset = dataset
        self.train_rows = train_rows
        self.train_data = train_data
        self.val = val
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.workers = workers
        self.part = part
        self.steps_per_epoch = max(1, len(train_rows) // batch_size)
        self._epoch: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation)

    def _positions(self, step: int) -> torch.Tensor:
        """Positions (into the training rows) of the batch of ``step``: a fresh permutation per
        epoch, seeded by (seed, epoch), so any step can be recomputed alone."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:  # once per epoch, not per step
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch = (epoch, torch.randperm(len(self.train_rows), generator=generator))
        perm = self._epoch[1]
        size = min(self.batch_size, len(self.train_rows))
        return perm[offset * size : (offset + 1) * size][self.part.share(size)]

    def batches(self, start: int, stop: int) -> Iterator[ImageBatch]:
        if self.train_data is not None:
            for step in range(start, stop):
                yield self.train_data.take(self._positions(step))
            return
        rows = [self.train_rows[self._positions(step)].tolist() for step in range(start, stop)]
        yield from iter_batches(self.dataset, rows, self.preprocessing, workers=self.workers)

    def _forward(self, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocessing.normalize(images.to(self.device))
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return model(x)  # type: ignore[no-any-return]

    def loss(
        self, model: torch.nn.Module, batch: ImageBatch
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self._forward(model, batch.images)
        labels = batch.labels.to(self.device)
        loss = F.cross_entropy(logits.flatten(1), labels)
        accuracy = (logits.flatten(1).argmax(1) == labels).float().mean().item()
        return loss, {"accuracy": accuracy}

    def evaluate(self) -> dict[str, float]:
        correct, total_loss = 0, 0.0
        for i in range(0, len(self.val), EVAL_BATCH):
            images = self.val.images[i : i + EVAL_BATCH]
            labels = self.val.labels[i : i + EVAL_BATCH].to(self.device)
            logits = self._forward(self.model, images).flatten(1)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += int((logits.argmax(1) == labels).sum())
        n = max(1, len(self.val))
        return {"accuracy": correct / n, "loss": total_loss / n}


def _build(fit: ClassifierFit, dataset: ImageDataset) -> Backbone:
    """The backbone to train: ``num_classes`` from the dataset; the images' own size when the
    backbone takes a ``size`` option, none was given, and it accepts that size."""
    assert dataset.classes is not None
    options = {"num_classes": len(dataset.classes), **fit.options}
    if fit.weights is not None:
        backbone, _ = load_backbone(fit.backbone, fit.weights, options=options)
        return backbone
    size = dataset.image_size
    if "size" not in options and size is not None and size[0] == size[1]:
        try:
            return build_backbone(fit.backbone, **options, size=size[0])
        except ConfigError:
            pass  # no such option, or a size the backbone cannot take: its default is used
    return build_backbone(fit.backbone, **options)
