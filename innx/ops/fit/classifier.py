"""``fit_classifier``: train a registered backbone to classify a labelled dataset.

The label is the dataset's class, or with ``label`` (``--label ATTR``) any categorical attribute
of the dataset: a shape model and a texture model from the same images. The dataset is split
once, from the seed, into training and validation rows; both are read into
memory as ``uint8`` images at the backbone's input size when they fit in :data:`MEMORY_CAP`
(otherwise training batches are streamed from the dataset). Training goes through the shared loop
(:mod:`innx.train.loop`): Adam, a cosine schedule, checkpoints, resume. The run directory holds
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
from innx.data.base import CATEGORICAL, ImageDataset
from innx.data.spec import open_dataset
from innx.device import AUTO, device_line, resolve_device, to_device
from innx.errors import ConfigError
from innx.store.runs import DatasetInput, RunInputs
from innx.train.distributed import current_part, local_device
from innx.train.images import ImageBatch, ShuffledImages, load_images
from innx.train.loop import LoopConfig, Progress, train
from innx.train.run_dir import RunDir, open_run_dir
from innx.train.split import split_rows

EVAL_BATCH = 512


@dataclass(frozen=True)
class ClassifierFit:
    """The arguments of ``innx fit classifier`` (everything that determines the result)."""

    data: str
    label: str | None = None
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
    device: str = AUTO
    workers: int = 0
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.steps is None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        resolve_device(self.device)  # a device this machine lacks: refused before any work

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
    label_of(dataset, fit.label)  # no label to learn: refused before the run directory exists
    started = time.perf_counter()
    part = current_part(fit.device)
    with open_run_dir(
        out, fit=fit.to_dict(), part=part, resume=resume, overwrite=overwrite,
        ignore=("workers", "checkpoint_every"),
    ) as run:  # fmt: skip
        metrics = _train(fit, dataset, run, started, progress, say)
    return ClassifierResult(out, metrics)


def _train(
    fit: ClassifierFit,
    dataset: ImageDataset,
    run: RunDir,
    started: float,
    progress: Progress | None,
    say: Callable[[str], None],
) -> dict[str, float]:
    """Train in ``run`` and write the run; its final metrics."""
    label = label_of(dataset, fit.label)
    part, out = run.part, run.path
    device = local_device(fit.device)
    torch.manual_seed(fit.seed)
    backbone = _build(fit, dataset, label)
    model = backbone.model.to(device)
    if device.type == "cpu":  # oneDNN convolutions run ~2x faster in channels-last on the CPU
        model.to(memory_format=torch.channels_last)

    train_rows, val_rows = split_rows(len(dataset), fit.val_fraction, fit.seed)
    say(device_line(device))
    say(f"{len(train_rows)} training and {len(val_rows)} validation images of {dataset.spec}")
    val = load_images(dataset, val_rows, backbone.preprocessing, workers=fit.workers)
    train_data = ShuffledImages(
        dataset, train_rows, backbone.preprocessing, fit.batch_size, fit.seed,
        workers=fit.workers, part=part,
    )  # fmt: skip
    steps_per_epoch = train_data.steps_per_epoch
    steps = fit.steps if fit.steps is not None else math.ceil(fit.epochs * steps_per_epoch)
    task = ClassifierTask(backbone, train_data, val, device, label)
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
        keep_best="val_accuracy",
        best_higher=True,
    )
    result = train(task, config, out, resume=run.resuming, progress=progress)
    metrics = {
        **result.metrics,
        "steps": float(steps),
        "epochs": steps / steps_per_epoch,
        "seconds": time.perf_counter() - started,
    }
    config_json = {
        "backbone": backbone.name,
        "options": backbone.options,
        "classes": list(label.classes),
        "label": fit.label,  # None: the dataset's classes
        "preprocessing": backbone.preprocessing.to_dict(),
    }
    inputs = RunInputs(
        dataset=DatasetInput(
            dataset.spec, dataset.fingerprint(), len(dataset), len(train_rows), len(val_rows)
        ),
        fit=fit.to_dict(),
    )
    run.write(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        CLASSIFIER_KIND,
        config_json,
        inputs=inputs,
        seed=fit.seed,
        metrics=metrics,
        device=device,
    )
    return metrics


@dataclass(frozen=True)
class Label:
    """What a classifier learns: the dataset's class (``column`` None, ``name`` "class") or the
    categorical attribute in column ``column`` of the items' attributes."""

    name: str
    column: int | None
    classes: tuple[str, ...]

    def of(self, batch: ImageBatch, where: str) -> torch.Tensor:
        """The labels of ``batch`` as int64 class indices; refuses a missing one (NaN, -1) or one
        outside the classes, naming ``where`` the batch comes from."""
        codes = batch.labels if self.column is None else batch.attributes[:, self.column]
        bad = ~torch.isfinite(codes.double()) | (codes < 0) | (codes >= len(self.classes))
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ConfigError(
                f"the {where} images include one without a {self.name} label (position {row}, "
                f"value {codes[row].item()}); a classifier needs every image labelled"
            )
        return codes.round().long() if self.column is not None else codes


def label_of(dataset: ImageDataset, label: str | None) -> Label:
    """The :class:`Label` that ``--label`` names on ``dataset`` (default: its classes)."""
    if label is None:
        if dataset.classes is None:
            raise ConfigError(
                f"dataset {dataset.spec} has no class labels; a classifier needs them "
                "(a folder with one subfolder per class, a dataset with labels, or --label ATTR "
                "naming a categorical attribute)"
            )
        return Label("class", None, tuple(dataset.classes))
    names = dataset.attribute_names()
    categorical = [a.name for a in dataset.attributes if a.kind == CATEGORICAL]
    if label not in names:
        raise ConfigError(
            f"--label {label}: dataset {dataset.spec} has no attribute {label!r}; "
            f"its categorical attributes: {', '.join(categorical) or 'none'}"
        )
    column = names.index(label)
    attribute = dataset.attributes[column]
    if attribute.kind != CATEGORICAL or not attribute.categories:
        raise ConfigError(
            f"--label {label}: attribute {label!r} of {dataset.spec} is {attribute.kind}, and a "
            f"classifier needs categories; categorical attributes: {', '.join(categorical) or 'none'}"
        )
    return Label(label, column, tuple(attribute.categories))


class ClassifierTask:
    """Cross-entropy on shuffled batches; validation accuracy and loss (see :class:`~innx.train.loop.Task`)."""

    def __init__(
        self,
        backbone: Backbone,
        train: ShuffledImages,
        val: ImageBatch,
        device: torch.device,
        label: Label,
    ) -> None:
        self.model = backbone.model
        self.preprocessing: Preprocessing = backbone.preprocessing
        self.train = train
        self.val = val
        self.device = device
        self.label = label
        self.val_labels = label.of(val, "validation")

    def batches(self, start: int, stop: int) -> Iterator[ImageBatch]:
        return self.train.batches(start, stop)

    def _forward(self, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocessing.normalize(to_device(images, self.device))
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return model(x)  # type: ignore[no-any-return]

    def loss(
        self, model: torch.nn.Module, batch: ImageBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self._forward(model, batch.images)
        labels = to_device(self.label.of(batch, "training"), self.device)
        loss = F.cross_entropy(logits.flatten(1), labels)
        accuracy = (logits.flatten(1).argmax(1) == labels).float().mean()
        return loss, {"accuracy": accuracy}  # a tensor: read once per log line

    def warm_start(self) -> None:
        """Nothing to initialise from data."""

    def evaluate(self) -> dict[str, float]:
        correct, total_loss = 0, 0.0
        for i in range(0, len(self.val), EVAL_BATCH):
            images = self.val.images[i : i + EVAL_BATCH]
            labels = self.val_labels[i : i + EVAL_BATCH].to(self.device)
            logits = self._forward(self.model, images).flatten(1)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += int((logits.argmax(1) == labels).sum())
        n = max(1, len(self.val))
        return {"accuracy": correct / n, "loss": total_loss / n}


def _build(fit: ClassifierFit, dataset: ImageDataset, label: Label) -> Backbone:
    """The backbone to train: ``num_classes`` from the label; the images' own size when the
    backbone takes a ``size`` option, none was given, and it accepts that size."""
    options = {"num_classes": len(label.classes), **fit.options}
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
