"""``extract``: run a backbone over a dataset and stream layer activations into an HDF5 store.

The pipeline, and why:

- **Bounded memory.** Batches flow from a ``DataLoader`` (``workers`` processes decode and
  preprocess) through the model to a writer thread (:mod:`innx.ops.extract.store_thread`) over a short
  queue, so memory does not grow with N and HDF5 writes overlap the next forward pass.
- **Safe and resumable.** The store (:class:`~innx.store.StoreWriter`) is created at full size,
  rows are marked ``done`` only after their data is flushed, and the file is marked complete only
  at the end; ``resume`` recomputes exactly the rows not done, so a killed run finishes to the
  same arrays.
- **Distributed.** Under ``torchrun`` each rank extracts a contiguous shard of rows into its own
  file, and rank 0 joins them as HDF5 virtual datasets into the requested path.
- **Shuffled.** Store rows follow a seeded random order of the dataset (``/index`` maps each row
  back to its sample), so any block of rows is a random sample: held-out blocks, streamed
  windows and the rows ``analyze`` reads are unbiased on a dataset sorted by class (an image
  folder lists its classes one after the other). ``--limit N`` keeps the first ``N`` rows of that
  order, a random sample; ``shuffle=False`` keeps the dataset's order.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from innx import __version__
from innx.autoencoders.loader import Autoencoder, load_autoencoder
from innx.backbones import Backbone, Preprocessing, load_backbone
from innx.backbones.family import split_name
from innx.backbones.registry import warn_random_weights
from innx.data.base import ImageDataset
from innx.data.spec import open_dataset
from innx.device import AUTO, device_line, resolve_device
from innx.errors import ConfigError, InnxWarning, ShapeError
from innx.ops.extract.inputs import ExtractItems
from innx.ops.extract.store_thread import StoreThread
from innx.plugins import registry
from innx.store import LayerSpec, StoreLayout, StoreWriter, join_shards
from innx.store.layout import COMPRESSIONS, DTYPES, check_layer_name

ALL = "all"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExtractOptions:
    """The arguments of ``innx extract`` (everything that determines the store's content)."""

    data: str
    backbone: str | None
    layers: tuple[str, ...]
    weights: str | None = None
    backbone_options: dict[str, Any] = field(default_factory=dict)
    autoencoder: str | None = None
    store_images: bool = False
    dtype: str = "float32"
    compression: str = "none"
    batch_size: int = 128
    workers: int = 0
    device: str = AUTO
    limit: int | None = None
    skip_bad: bool = False
    fail_on_nonfinite: bool = False
    seed: int = 0  # random weights and the rows' order, the same in every process and on --resume
    shuffle: bool = True  # store rows in a seeded random order of the dataset

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError("name at least one --layer (or --layer all)")
        for name in self.layers:
            if name != ALL:
                check_layer_name(name)  # before the backbone is built
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"--compression must be one of {', '.join(COMPRESSIONS)}, not {self.compression!r}"
            )
        if self.batch_size < 1 or self.workers < 0 or (self.limit is not None and self.limit < 1):
            raise ConfigError("--batch-size and --limit must be positive, --workers >= 0")
        resolve_device(self.device)  # a device this machine lacks: refused before any work


@dataclass(frozen=True)
class ExtractResult:
    """What was written: the store, its rows, and what went wrong along the way."""

    path: Path
    rows: int
    written: int
    nonfinite: int
    bad: list[int]
    shards: list[Path]


def extract(
    options: ExtractOptions,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Write the activation store of ``options`` to ``out``; see the module docstring."""
    say = log or (lambda _message: None)
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("pass either --resume or --overwrite, not both")
    if not out.parent.is_dir():
        raise ConfigError(f"the output folder {out.parent} does not exist; create it first")
    dataset = open_dataset(options.data)
    torch.manual_seed(options.seed)
    backbone, weights = load_backbone(
        options.backbone, options.weights, options=options.backbone_options, warn_random=False
    )
    names = backbone.public_layers() if ALL in options.layers else list(options.layers)
    for name in names:
        check_layer_name(name)  # a backbone's own names too, before any work
    infos = backbone.layer_info(names)  # checks the names before any work
    if weights.path is None:
        warn_random_weights(backbone.name)
    autoencoder = load_autoencoder(options.autoencoder) if options.autoencoder else None
    device = resolve_device(options.device)
    say(device_line(device))
    backbone.model.to(device)
    if autoencoder is not None:
        autoencoder.to(device)
    n = len(dataset) if options.limit is None else min(options.limit, len(dataset))
    # images at the autoencoder's size feed it and are the stored thumbnails
    thumb: tuple[int, int] | None = _thumbnail_size(backbone.preprocessing, autoencoder)
    if autoencoder is None and not options.store_images:
        thumb = None
    layout = StoreLayout(
        n=n,
        layers=tuple(LayerSpec(i.name, i.module, i.shape) for i in infos),
        attributes=dataset.attributes,
        has_labels=dataset.classes is not None,
        dtype=options.dtype,
        compression=options.compression,
        latent_dim=autoencoder.latent_dim if autoencoder else None,
        autoencoder=options.autoencoder,
        image_shape=(*thumb, backbone.preprocessing.channels)
        if thumb and options.store_images
        else None,
        batch_size=options.batch_size,
        metadata=_metadata(options, dataset, backbone, weights.path, weights.sha256, n, device),
    )
    job = _Job(dataset, backbone, names, autoencoder, thumb, options, device, resume, overwrite)
    order = row_order(len(dataset), n, options.seed, options.shuffle)
    rank, world = _rank_and_world()
    if world == 1:
        written = _extract_rows(job, layout, out, order, progress, say)
        return ExtractResult(out, n, *written, shards=[])
    # whole batches per rank: the same batches as one process, so the same arithmetic, bit for bit
    batches = -(-n // options.batch_size)
    if batches < world:
        raise ConfigError(
            f"{n} images make {batches} batches of {options.batch_size}, fewer than the {world} "
            "processes; lower --batch-size or use fewer processes"
        )
    bounds = [min(n, batches * k // world * options.batch_size) for k in range(world + 1)]
    start, stop = bounds[rank], bounds[rank + 1]
    shards = [shard_path(out, k, world) for k in range(world)]
    shard_layout = replace(layout, n=stop - start)
    written = _extract_rows(job, shard_layout, shards[rank], order[start:stop], progress, say)
    torch.distributed.barrier()
    if rank == 0:
        if out.exists() and not (resume or overwrite):
            raise ConfigError(f"{out} exists; pass --resume to finish it or --overwrite")
        out.unlink(missing_ok=True)
        join_shards(out, shards, layout)
    torch.distributed.barrier()
    return ExtractResult(out, n, *written, shards=shards)


@dataclass(frozen=True)
class _Job:
    """What every shard of one extraction shares."""

    dataset: ImageDataset
    backbone: Backbone
    names: list[str]
    autoencoder: Autoencoder | None
    thumb: tuple[int, int] | None
    options: ExtractOptions
    device: torch.device
    resume: bool
    overwrite: bool


def row_order(size: int, n: int, seed: int, shuffle: bool) -> np.ndarray:
    """The dataset index of each of ``n`` store rows: the first ``n`` of a permutation of the
    ``size`` samples seeded by ``seed`` (``shuffle``), or ``0 … n-1``.

    >>> row_order(10, 4, seed=0, shuffle=False).tolist()
    [0, 1, 2, 3]
    >>> order = row_order(10, 10, seed=0, shuffle=True)
    >>> sorted(order.tolist()) == list(range(10)), order.tolist() == list(range(10))
    (True, False)
    """
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, 3]).permutation(size)[:n].astype(np.int64)


def shard_path(out: Path, rank: int, world: int) -> Path:
    """``acts.h5`` → ``acts.rank0-of-2.h5``, beside it."""
    return out.with_name(f"{out.stem}.rank{rank}-of-{world}{out.suffix or '.h5'}")


def _extract_rows(
    job: _Job,
    layout: StoreLayout,
    path: Path,
    rows: np.ndarray,
    progress: Progress | None,
    say: Callable[[str], None],
) -> tuple[int, int, list[int]]:
    """Extract dataset ``rows`` into store ``path`` (its row i is dataset row ``rows[i]``);
    return rows written now, non-finite values seen, bad dataset indices."""
    options, backbone = job.options, job.backbone
    if job.resume and path.exists():
        writer = StoreWriter.resume(path, layout)
    else:
        writer = StoreWriter.create(path, layout, overwrite=job.overwrite)
    with writer:
        pending = writer.pending()
        if job.resume:
            say(f"resuming {path}: {len(pending)} of {layout.n} rows left")
        batches = _contiguous_batches(pending, options.batch_size)
        source = ExtractItems(job.dataset, backbone.preprocessing, job.thumb, options.skip_bad)
        loader = DataLoader(
            source,
            batch_sampler=[rows[b].tolist() for b in batches],
            num_workers=options.workers,
            collate_fn=source.collate,
        )
        sink = StoreThread(writer, layout.image_shape is not None, layout.has_labels)
        nonfinite, bad, done = 0, [], layout.n - len(pending)
        try:
            for local, batch in zip(batches, _iterate(loader), strict=True):
                values = _forward(batch, backbone, job.names, job.autoencoder, job.device)
                count = sum(_nonfinite(v) for v in values["layers"].values())
                if count and options.fail_on_nonfinite:
                    raise ShapeError(
                        f"{count} non-finite activations in rows {local[0]}..{local[-1]}; the "
                        "rows before are saved: fix the model or input, then --resume"
                    )
                nonfinite += count
                bad += batch["bad"]
                sink.put(local, batch, values)
                done += len(local)
                if progress is not None:
                    progress(done, layout.n)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        if bad:
            writer.record_bad(bad)
        writer.finish()
    if nonfinite:
        warnings.warn(
            f"{nonfinite} non-finite activation values were stored in {path}; "
            "pass --fail-on-nonfinite to stop at the first",
            InnxWarning,
            stacklevel=2,
        )
    return len(pending), nonfinite, bad


def _nonfinite(values: np.ndarray) -> int:
    """How many values are NaN or infinite (one pass: a quarter of the time of a float64 sum)."""
    finite = np.isfinite(values)
    return 0 if finite.all() else int(finite.size - np.count_nonzero(finite))


def _contiguous_batches(pending: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split sorted rows into runs of consecutive rows, each cut into batches."""
    if len(pending) == 0:
        return []
    breaks = np.flatnonzero(np.diff(pending) != 1) + 1
    batches = []
    for run in np.split(pending, breaks):
        batches += [run[i : i + batch_size] for i in range(0, len(run), batch_size)]
    return batches


def _iterate(loader: DataLoader[Any]) -> Iterator[dict[str, Any]]:
    yield from loader


def _forward(
    batch: dict[str, Any],
    backbone: Backbone,
    names: list[str],
    autoencoder: Autoencoder | None,
    device: torch.device,
) -> dict[str, Any]:
    with torch.no_grad():
        x = batch["x"].to(device)
        acts = backbone.capture(x, names)
        values: dict[str, Any] = {"layers": {k: v.float().cpu().numpy() for k, v in acts.items()}}
        if autoencoder is not None:
            images = batch["image"].permute(0, 3, 1, 2).to(device).float() / 255.0
            values["latents"] = autoencoder.encode(images).float().cpu().numpy()
    return values


def _thumbnail_size(pre: Preprocessing, autoencoder: Autoencoder | None) -> tuple[int, int]:
    if autoencoder is not None:
        return (autoencoder.image_size, autoencoder.image_size)
    return pre.size


def _metadata(
    options: ExtractOptions,
    dataset: ImageDataset,
    backbone: Backbone,
    weights_path: str | None,
    weights_sha: str | None,
    n: int,
    device: torch.device,
) -> dict[str, Any]:
    """The store's metadata: what it was extracted from, with which options, and on which
    ``device`` (resolved: ``cuda:0``, where ``extract.device`` keeps the ``auto`` asked for)."""
    family = split_name(backbone.name)[0]  # "timm:resnet18" is provided by entry "timm"
    entry = next((e for e in registry().entries("innx.backbones") if e.name == family), None)
    return {
        "dataset": {
            "name": dataset.name,
            "spec": dataset.spec,
            "root": dataset.root,
            "fingerprint": dataset.fingerprint(),
            "n": n,
        },
        "backbone": {
            "name": backbone.name,
            "plugin": entry.dist if entry else None,
            "version": entry.version if entry else None,
            "options": backbone.options,
            "weights": weights_path,
            "weights_sha256": weights_sha,
        },
        "preprocessing": backbone.preprocessing.to_dict(),
        "extract": {**asdict(options), "innx_version": __version__},
        "device": str(device),
    }


def _rank_and_world() -> tuple[int, int]:
    """Rank and world size under ``torchrun`` (process group started here, gloo), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()
