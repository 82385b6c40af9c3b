"""Activation stores: round trips, resume after a crash (a real kill -9), one writer at a time,
shards joined as virtual datasets, torch datasets in memory and streamed, reader errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from innx.data.base import Attribute
from innx.errors import ConfigError, StoreError
from innx.store import ActivationStore, LayerSpec, StoreLayout, StoreWriter, join_shards
from innx.store.locking import lock_path

ATTRIBUTES = (
    Attribute("shape", "categorical", ("square", "disc")),
    Attribute("size", "continuous"),
)
METADATA = {
    "dataset": {"name": "shapes", "n": 100, "fingerprint": "f" * 64},
    "backbone": {"name": "smallcnn", "weights": {"path": "w", "sha256": "a" * 64}},
    "preprocessing": {"size": [8, 8], "mean": [0.5], "std": [0.5]},
    "extract": {"batch_size": 8},
}


def make_layout(n: int = 37, **changes: Any) -> StoreLayout:
    layout = StoreLayout(
        n=n,
        layers=(
            LayerSpec("conv1", "features.0", (3, 4, 4)),
            LayerSpec("layer3.1.conv2", "layer3.1.conv2", (5,)),
        ),
        attributes=ATTRIBUTES,
        has_labels=True,
        latent_dim=4,
        autoencoder="ae-run-1",
        image_shape=(6, 6, 3),
        batch_size=8,
        metadata=METADATA,
    )
    return replace(layout, **changes)


def expected(layout: StoreLayout, seed: int = 0, offset: int = 0) -> dict[str, np.ndarray]:
    """Full arrays for every dataset of ``layout`` (rows ``offset..offset+n-1`` of a bigger set)."""
    rng = np.random.default_rng(seed)
    total = offset + layout.n
    data: dict[str, np.ndarray] = {
        "index": rng.permutation(10 * total)[:total],
        "labels": rng.integers(0, 10, total),
        "attributes": rng.normal(size=(total, len(layout.attributes))).astype(np.float32),
    }
    for layer in layout.layers:
        values = rng.normal(size=(total, *layer.shape)).astype(np.float32)
        data[f"layers/{layer.name}"] = values.astype(layout.dtype)
    if layout.latent_dim is not None:
        data["latents"] = rng.normal(size=(total, layout.latent_dim)).astype(np.float32)
    if layout.image_shape is not None:
        data["images"] = rng.integers(0, 256, (total, *layout.image_shape)).astype(np.uint8)
    return {name: values[offset:] for name, values in data.items()}


def write_rows(writer: StoreWriter, data: dict[str, np.ndarray], start: int, stop: int) -> None:
    layout = writer.layout
    writer.write(
        np.arange(start, stop),
        index=data["index"][start:stop],
        labels=data["labels"][start:stop] if layout.has_labels else None,
        attributes=data["attributes"][start:stop],
        layers={la.name: data[f"layers/{la.name}"][start:stop] for la in layout.layers},
        latents=data["latents"][start:stop] if "latents" in data else None,
        images=data["images"][start:stop] if "images" in data else None,
    )


def write_store(
    path: Path, layout: StoreLayout, data: dict[str, np.ndarray], batch: int = 8
) -> None:
    order = list(range(0, layout.n, batch))
    np.random.default_rng(1).shuffle(order)
    with StoreWriter.create(path, layout) as writer:
        for start in order:
            write_rows(writer, data, start, min(start + batch, layout.n))
        writer.finish()


def assert_store_equal(store: ActivationStore, layout: StoreLayout, data: dict[str, Any]) -> None:
    assert store.complete and store.n == layout.n and store.done_count == layout.n
    np.testing.assert_array_equal(store.index, data["index"])
    np.testing.assert_array_equal(store.attributes, data["attributes"])
    if layout.has_labels:
        np.testing.assert_array_equal(store.labels, data["labels"])
    else:
        assert store.labels is None
    assert store.layer_names == [la.name for la in layout.layers]
    for layer in layout.layers:
        loaded = store.load(layer.name)
        assert loaded.dtype == np.dtype(layout.dtype)
        np.testing.assert_array_equal(loaded, data[f"layers/{layer.name}"])
    for name in ("latents", "images"):
        if name in data:
            np.testing.assert_array_equal(store.load(name), data[name])
        else:
            assert getattr(store, name) is None
    assert store.attribute_names == ["shape", "size"]
    assert store.attribute_kinds == ["categorical", "continuous"]
    assert store.attribute_categories == [["square", "disc"], []]
    assert store.metadata["dataset"] == METADATA["dataset"]
    assert store.metadata["backbone"] == METADATA["backbone"]
    assert set(store.metadata["versions"]) >= {"torch", "h5py", "numpy", "python"}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
@pytest.mark.parametrize("extras", [True, False])
def test_round_trip(tmp_path: Path, dtype: str, compression: str, extras: bool) -> None:
    changes: dict[str, Any] = {"dtype": dtype, "compression": compression}
    if not extras:
        changes.update(has_labels=False, latent_dim=None, autoencoder=None, image_shape=None)
    layout = make_layout(**changes)
    data = expected(layout)
    write_store(tmp_path / "acts.h5", layout, data)
    assert not lock_path(tmp_path / "acts.h5").exists()
    with ActivationStore(tmp_path / "acts.h5") as store:
        assert_store_equal(store, layout, data)
        info = {i["name"]: i for i in store.layer_info()}
        assert info["layer3.1.conv2"]["module"] == "layer3.1.conv2"
        assert info["conv1"]["shape"] == [3, 4, 4]
        assert info["conv1"]["compression"] == (None if compression == "none" else compression)
        summary = store.summary()
        json.dumps(summary)
        assert summary["rows"] == {"done": 37, "total": 37} and summary["complete"]


def test_chunks_are_batches_of_rows(tmp_path: Path) -> None:
    layout = make_layout(
        n=300, batch_size=64, layers=(*make_layout().layers, LayerSpec("big", "big", (64, 256)))
    )
    StoreWriter.create(tmp_path / "acts.h5", layout).close()
    with h5py.File(tmp_path / "acts.h5", "r") as file:
        for name, shape, _ in layout.datasets():
            chunks = file[name].chunks
            assert chunks[1:] == shape[1:], name
            assert 1 <= chunks[0] <= 64
        assert file["layers/conv1"].chunks == (64, 3, 4, 4)
        assert file["layers/big"].chunks == (4, 64, 256)  # capped at 256 KiB
        assert (
            file["layers/conv1"].id.get_create_plist().get_alloc_time() == h5py.h5d.ALLOC_TIME_EARLY
        )


def test_pending_after_partial_writes(tmp_path: Path) -> None:
    layout = make_layout()
    data = expected(layout)
    with StoreWriter.create(tmp_path / "acts.h5", layout) as writer:
        np.testing.assert_array_equal(writer.pending(), np.arange(37))
        write_rows(writer, data, 8, 16)
        write_rows(writer, data, 30, 37)
        assert writer.pending().tolist() == [*range(8), *range(16, 30)]
        assert writer.pending().dtype == np.int64
        with pytest.raises(StoreError, match=r"cannot finish .*: 22 of 37 rows are not written"):
            writer.finish()
    with ActivationStore(tmp_path / "acts.h5", allow_incomplete=True) as store:
        assert not store.complete and store.done_count == 15
        assert store.summary()["rows"] == {"done": 15, "total": 37}
    with pytest.raises(
        StoreError, match=r"is incomplete \(15 of 37 rows\); finish it with innx extract … --resume"
    ):
        ActivationStore(tmp_path / "acts.h5")
    with StoreWriter.resume(tmp_path / "acts.h5", layout) as writer:
        for start, stop in ((0, 8), (16, 30)):
            write_rows(writer, data, start, stop)
        writer.finish()
    with ActivationStore(tmp_path / "acts.h5") as store:
        assert_store_equal(store, layout, data)


def test_write_checks_what_it_is_given(tmp_path: Path) -> None:
    layout = make_layout()
    data = expected(layout)
    with StoreWriter.create(tmp_path / "acts.h5", layout) as writer:
        bad = dict(data, **{"layers/conv1": data["layers/conv1"][:, :2]})
        with pytest.raises(
            StoreError,
            match=r"/layers/conv1 expects a batch of shape \(8, 3, 4, 4\), got \(8, 2, 4, 4\)",
        ):
            write_rows(writer, bad, 0, 8)
        with pytest.raises(StoreError, match="contiguous"):
            writer.write(
                np.array([0, 2]),
                index=data["index"][:2],
                labels=data["labels"][:2],
                attributes=data["attributes"][:2],
                layers={},
            )
        with pytest.raises(StoreError, match="needs images"):
            write_rows(writer, {k: v for k, v in data.items() if k != "images"}, 0, 8)
        assert writer.pending().size == 37  # nothing was marked done


def test_record_bad(tmp_path: Path) -> None:
    layout = make_layout(n=8)
    with StoreWriter.create(tmp_path / "acts.h5", layout) as writer:
        writer.record_bad([3, 5])
        writer.record_bad([])
        writer.record_bad(np.array([9]))
        write_rows(writer, expected(layout), 0, 8)
        writer.finish()
    with ActivationStore(tmp_path / "acts.h5") as store:
        assert store.bad.tolist() == [3, 5, 9]


def test_create_refuses_existing_path_and_missing_folder(tmp_path: Path) -> None:
    layout = make_layout()
    (tmp_path / "acts.h5").write_text("x")
    with pytest.raises(
        StoreError, match="exists; pass --resume to finish it or --overwrite to replace it"
    ):
        StoreWriter.create(tmp_path / "acts.h5", layout)
    StoreWriter.create(tmp_path / "acts.h5", layout, overwrite=True).close()
    with pytest.raises(StoreError, match=f"folder {tmp_path / 'nope'} does not exist"):
        StoreWriter.create(tmp_path / "nope" / "acts.h5", layout)
    with pytest.raises(ConfigError, match="without '/'"):
        make_layout(layers=(LayerSpec("a/b", "a", (1,)),))


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "acts.h5"
    layout = make_layout()
    data = expected(layout)
    writer = StoreWriter.create(path, layout)
    message = (
        rf"{path} is being written by another process \(pid {os.getpid()}\); wait for it or stop it"
    )
    with pytest.raises(StoreError, match=message):
        StoreWriter.resume(path, layout)
    with pytest.raises(StoreError, match=message):
        StoreWriter.create(path, layout, overwrite=True)
    write_rows(writer, data, 0, 8)
    with ActivationStore(path, allow_incomplete=True) as reader:  # readers are not blocked
        assert reader.done_count == 8
        np.testing.assert_array_equal(reader.index[:8], data["index"][:8])
    writer.close()
    writer.close()
    with StoreWriter.resume(path, layout) as again:
        assert again.pending().size == 29


def test_resume_refuses_another_extraction(tmp_path: Path) -> None:
    path = tmp_path / "acts.h5"
    layout = make_layout()
    StoreWriter.create(path, layout).close()
    cases = {
        "rows: file has 37, now 38": replace(layout, n=38),
        'layer dtype: file has "float32", now "float16"': replace(layout, dtype="float16"),
        "layers: file has": replace(layout, layers=layout.layers[:1]),
        "latent size: file has 4, now null": replace(layout, latent_dim=None),
        "image shape": replace(layout, image_shape=(8, 8, 3)),
        "dataset.fingerprint: file has": replace(
            layout, metadata={**METADATA, "dataset": {**METADATA["dataset"], "fingerprint": "0"}}
        ),
        "backbone.weights.sha256": replace(
            layout,
            metadata={**METADATA, "backbone": {"name": "smallcnn", "weights": {"sha256": "b"}}},
        ),
    }
    for difference, other in cases.items():
        with pytest.raises(
            StoreError, match=r"cannot resume .*written for a different extraction"
        ) as err:
            StoreWriter.resume(path, other)
        assert difference in str(err.value)
        assert str(err.value).endswith("pass --overwrite to start over")
    # options of the extraction itself (batch size, workers) may change between attempts
    other_options = replace(layout, metadata={**METADATA, "extract": {"batch_size": 64}})
    StoreWriter.resume(path, other_options).close()


def test_resume_refuses_complete_damaged_and_foreign_files(tmp_path: Path) -> None:
    layout = make_layout(n=8)
    write_store(tmp_path / "acts.h5", layout, expected(layout))
    with pytest.raises(StoreError, match="is complete; nothing to resume; pass --overwrite"):
        StoreWriter.resume(tmp_path / "acts.h5", layout)
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(
        StoreError, match=r"junk.h5 is damaged \(.*\); pass --overwrite to start over"
    ):
        StoreWriter.resume(tmp_path / "junk.h5", layout)
    with h5py.File(tmp_path / "plain.h5", "w") as file:
        file["x"] = np.zeros(3)
    with pytest.raises(StoreError, match="is not an innx activation store"):
        StoreWriter.resume(tmp_path / "plain.h5", layout)
    with pytest.raises(StoreError, match="nothing to resume"):
        StoreWriter.resume(tmp_path / "missing.h5", layout)
    assert not lock_path(tmp_path / "junk.h5").exists()


KILL_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_activations import expected, kill_layout, write_rows
from innx.store import StoreWriter

layout = kill_layout({compression!r})
data = expected(layout)
writer = StoreWriter.create({path!r}, layout)
for start in np.random.default_rng({seed}).permutation(np.arange(0, layout.n, 10)):
    sys.stdin.readline()  # in step with the test, which kills it at a random moment
    write_rows(writer, data, int(start), min(int(start) + 10, layout.n))
    print("wrote", flush=True)
"""


def kill_layout(compression: str = "none") -> StoreLayout:
    layers = (LayerSpec("conv1", "features.0", (16, 8, 8)),)
    return make_layout(n=2000, layers=layers, compression=compression)


def test_kill_9_then_resume_equals_an_uninterrupted_write(tmp_path: Path) -> None:
    """Writers killed after a random number of batches, at a random moment of the next one.

    A compressed store is written uncompressed (crash-safe) and compressed by finish()."""
    rng = np.random.default_rng()
    procs = []
    for k, compression in enumerate(("none", "none", "gzip")):
        path = tmp_path / f"acts{k}.h5"
        script = KILL_SCRIPT.format(
            tests=str(Path(__file__).parent), path=str(path), seed=k, compression=compression
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        procs.append((path, kill_layout(compression), proc))
    for path, layout, proc in procs:
        assert proc.stdin is not None and proc.stdout is not None
        for _ in range(rng.integers(1, 150)):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "wrote\n"
        with pytest.raises(
            StoreError, match=rf"being written by another process \(pid {proc.pid}\)"
        ):
            StoreWriter.resume(path, layout)  # a second writer, in another process
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0, 0.003))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    for path, layout, _ in procs:
        data = expected(layout)
        with StoreWriter.resume(path, layout) as writer:
            pending = writer.pending()
            assert 0 < pending.size < layout.n
            with ActivationStore(path, allow_incomplete=True) as reader:
                done = np.flatnonzero(reader.file["done"][...])
                for name in ("index", "layers/conv1", "images"):
                    np.testing.assert_array_equal(reader.file[name][...][done], data[name][done])
            for run in np.split(pending, np.flatnonzero(np.diff(pending) != 1) + 1):
                write_rows(writer, data, int(run[0]), int(run[-1]) + 1)
            writer.finish()
        with ActivationStore(path) as store:
            assert_store_equal(store, layout, data)
            assert store.layer_info()[0]["compression"] == (
                None if layout.compression == "none" else "gzip"
            )
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(path.name)] == [path.name]


def test_join_shards_reads_like_one_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make_layout(n=37)
    data = expected(layout)
    write_store(tmp_path / "whole.h5", layout, data)
    (tmp_path / "set").mkdir()
    shards = []
    for k, (start, stop) in enumerate(((0, 20), (20, 37))):
        shard_layout = replace(layout, n=stop - start)
        path = tmp_path / "set" / f"shard{k}.h5"
        write_store(path, shard_layout, {name: v[start:stop] for name, v in data.items()})
        shards.append(path)
    join_shards(tmp_path / "set" / "acts.h5", shards, layout)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "set", moved)
    monkeypatch.chdir(
        tmp_path
    )  # sources resolve relative to the joined file, not the working directory
    with (
        ActivationStore(moved / "acts.h5") as joined,
        ActivationStore(tmp_path / "whole.h5") as whole,
    ):
        assert_store_equal(joined, layout, data)
        assert joined.metadata["shards"] == ["shard0.h5", "shard1.h5"]
        assert all(d["virtual"] for d in joined.summary()["datasets"] if d["name"] != "bad")
        fields = ["latents", "labels", "attributes", "images", "layer3.1.conv2", "conv1"]
        streamed, memory = (
            joined.torch_dataset(fields, in_memory=False),
            whole.torch_dataset(fields),
        )
        for a, b in zip(streamed, memory, strict=True):
            for x, y in zip(a, b, strict=True):
                assert torch.equal(x, y)


def test_join_refuses_mismatched_or_missing_shards(tmp_path: Path) -> None:
    layout = make_layout(n=16)
    write_store(tmp_path / "a.h5", replace(layout, n=8), expected(replace(layout, n=8)))
    other = replace(layout, n=8, dtype="float16")
    write_store(tmp_path / "b.h5", other, expected(other))
    with pytest.raises(StoreError, match=r"shard .*b.h5 does not match the others \(layer dtype"):
        join_shards(tmp_path / "acts.h5", [tmp_path / "a.h5", tmp_path / "b.h5"], layout)
    with pytest.raises(StoreError, match="the shards hold 8 rows, the layout 16"):
        join_shards(tmp_path / "acts.h5", [tmp_path / "a.h5"], layout)
    join_shards(tmp_path / "acts.h5", [tmp_path / "a.h5", tmp_path / "a.h5"], layout)
    (tmp_path / "a.h5").unlink()
    with pytest.raises(StoreError, match=r"joins shard files that are missing: a\.h5"):
        ActivationStore(tmp_path / "acts.h5")


def test_torch_dataset_streamed_by_workers_equals_in_memory(tmp_path: Path) -> None:
    layout = make_layout(dtype="float16")
    data = expected(layout)
    write_store(tmp_path / "acts.h5", layout, data)
    fields = ["conv1", "labels", "latents", "attributes", "images"]
    with ActivationStore(tmp_path / "acts.h5") as store:
        memory = store.torch_dataset(fields)
        streamed = store.torch_dataset(fields, cap_bytes=100)  # too big: streams
        assert type(memory).__name__ == "MemoryDataset"
        assert type(streamed).__name__ == "StreamingDataset"
        loaders = [
            DataLoader(ds, batch_size=5, num_workers=n) for ds, n in ((memory, 0), (streamed, 2))
        ]
        batches = list(zip(*loaders, strict=True))
    assert len(batches) == 8
    for a, b in batches:
        for x, y in zip(a, b, strict=True):
            assert x.dtype == y.dtype and torch.equal(x, y)
    first = next(iter(DataLoader(memory, batch_size=37)))
    assert first[0].dtype == torch.float16 and first[0].shape == (37, 3, 4, 4)
    np.testing.assert_array_equal(first[1].numpy(), data["labels"])


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist; make it with innx extract"):
        ActivationStore(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(StoreError, match="is not a readable HDF5 file"):
        ActivationStore(tmp_path / "text.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as file:
        file["x"] = np.zeros(3)
    with pytest.raises(
        StoreError, match=r"is not an innx activation store \(format attribute None"
    ):
        ActivationStore(tmp_path / "plain.h5")
    layout = make_layout(n=8)
    write_store(tmp_path / "acts.h5", layout, expected(layout))
    message = r"layer 'nope' is not in .*; choose one of: conv1, layer3\.1\.conv2"
    with ActivationStore(tmp_path / "acts.h5") as store, pytest.raises(StoreError, match=message):
        store.layer("nope")
    with h5py.File(tmp_path / "acts.h5", "r+") as file:
        file.attrs["version"] = 2
    with pytest.raises(StoreError, match=r"newer innx \(format version 2"):
        ActivationStore(tmp_path / "acts.h5")
