"""Store batches: the train/validation split, deterministic batches in memory and streamed, shares
of a batch under torchrun, pickling for other processes."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from innx.errors import ConfigError, StoreError
from innx.store import LayerSpec, StoreLayout, StoreWriter
from innx.train.batches import StoreBatches
from innx.train.distributed import Part
from innx.train.split import split_store_rows

FIELDS = ["index", "fc", "conv", "latents", "labels"]


def make_store(path: Path, n: int = 120, bad: tuple[int, ...] = (), dtype: str = "float32") -> Path:
    """A store whose row ``i`` has source index ``1000 + i`` (``-1`` for the ``bad`` rows) and
    random layers ``fc [5]``, ``conv [2, 3, 3]``; chunks of 16 rows."""
    layout = StoreLayout(
        n=n,
        layers=(LayerSpec("fc", "fc", (5,)), LayerSpec("conv", "conv", (2, 3, 3))),
        attributes=(),
        has_labels=True,
        latent_dim=4,
        dtype=dtype,
        batch_size=16,
    )
    rng = np.random.default_rng(0)
    index = 1000 + np.arange(n)
    index[list(bad)] = -1
    with StoreWriter.create(path, layout) as writer:
        writer.write(
            np.arange(n),
            index=index,
            labels=rng.integers(0, 3, n),
            attributes=np.zeros((n, 0)),
            layers={"fc": rng.normal(size=(n, 5)), "conv": rng.normal(size=(n, 2, 3, 3))},
            latents=rng.normal(size=(n, 4)),
        )
        writer.finish()
    return path


def stored(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r", locking=False) as file:
        return {
            "index": file["index"][...],
            "fc": file["layers/fc"][...],
            "conv": file["layers/conv"][...],
            "latents": file["latents"][...],
            "labels": file["labels"][...],
        }


def check_values(batch: tuple[torch.Tensor, ...], data: dict[str, np.ndarray]) -> np.ndarray:
    """Every field of ``batch`` equals the store's row (found from its index); returns the rows."""
    rows = batch[0].numpy() - 1000
    assert (rows >= 0).all()
    for field, tensor in zip(FIELDS, batch, strict=True):
        expected = data[field][rows]
        assert tensor.dtype == (torch.int64 if field in ("index", "labels") else torch.float32)
        np.testing.assert_array_equal(tensor.numpy(), expected.astype(tensor.numpy().dtype))
    return rows


def epoch_rows(batches: StoreBatches, epoch: int) -> np.ndarray:
    steps = range(epoch * batches.steps_per_epoch, (epoch + 1) * batches.steps_per_epoch)
    return np.concatenate([batches.batch(s)[0].numpy() - 1000 for s in steps])


def streamed(path: Path, rows: np.ndarray, batch_size: int = 8, **options: Any) -> StoreBatches:
    options = {"in_memory": False, "chunk_rows": 7, "window_chunks": 3, **options}
    return StoreBatches(path, FIELDS, rows, batch_size, seed=3, **options)


# --- split ---------------------------------------------------------------------------------------


def test_split_drops_bad_rows_and_covers_the_rest() -> None:
    index = np.arange(5000)
    index[[3, 10, 11, 4000]] = -1
    train, val = split_store_rows(index, 0.1, seed=1)
    assert train.dtype == val.dtype == np.int64
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.union1d(train, val), np.flatnonzero(index != -1))
    assert abs(val.size - 0.1 * 4996) <= 250
    again = split_store_rows(index, 0.1, seed=1)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(split_store_rows(index, 0.1, seed=2)[1], val)
    bigger = split_store_rows(index, 0.3, seed=1)[1]
    assert set(val) <= set(bigger)


def test_split_takes_whole_blocks_of_a_shuffled_store() -> None:
    index = np.random.default_rng(0).permutation(3000)  # rows in a random order of the dataset
    index[::97] = -1
    valid = np.flatnonzero(index != -1)
    _, val = split_store_rows(index, 0.2, seed=0, block=64)
    positions = np.searchsorted(valid, val)  # val rows as positions among the valid rows
    for block in np.unique(positions // 64):
        wanted = np.arange(block * 64, min(block * 64 + 64, valid.size))
        assert np.isin(wanted, positions).all()


def test_split_of_a_store_in_dataset_order_is_random_by_row() -> None:
    """A store in the dataset's order (written before stores were shuffled) of a class-sorted
    dataset: blocks would hold one class each; single rows give every class its share."""
    labels = np.repeat(np.arange(10), 300)  # all 0s, then all 1s, …
    index = np.arange(labels.size)
    index[[5, 700]] = -1
    for seed in range(3):
        train, val = split_store_rows(index, 0.1, seed=seed)
        counts = np.bincount(labels[val], minlength=10)
        assert counts.min() >= 15 and counts.max() <= 45, counts  # 30 each on average
        assert set(train) | set(val) == set(np.flatnonzero(index != -1))
        positions = np.searchsorted(np.flatnonzero(index != -1), val)
        assert (np.diff(positions) == 1).mean() < 0.3  # not blocks of consecutive rows
    assert set(val) <= set(split_store_rows(index, 0.3, seed=2)[1])


@pytest.mark.parametrize("n", [2, 3, 5, 30])
def test_split_tiny_stores(n: int) -> None:
    for fraction in (0.01, 0.5, 0.99):
        train, val = split_store_rows(np.arange(n), fraction, seed=0)
        assert train.size >= 1 and val.size >= 1 and train.size + val.size == n


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_split_bad_fraction(fraction: float) -> None:
    with pytest.raises(ConfigError, match="validation fraction"):
        split_store_rows(np.arange(100), fraction, seed=0)


def test_split_needs_two_usable_rows() -> None:
    with pytest.raises(ConfigError, match="1 usable rows"):
        split_store_rows(np.array([-1, 4, -1]), 0.5, seed=0)
    with pytest.raises(ConfigError, match="block"):
        split_store_rows(np.arange(10), 0.5, seed=0, block=0)


# --- batches -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "acts.h5", bad=(0, 17, 18, 50))


@pytest.mark.parametrize("in_memory", [True, False])
def test_batches_are_deterministic(store: Path, in_memory: bool) -> None:
    rows = np.arange(120)
    first = streamed(store, rows, in_memory=in_memory)
    steps = [0, 1, 13, 14, 15, 40, 2]
    expected = [first.batch(s) for s in range(41)]
    for order in (steps, steps[::-1]):
        fresh = streamed(store, rows, in_memory=in_memory)
        for step in order:
            for a, b in zip(fresh.batch(step), expected[step], strict=True):
                assert torch.equal(a, b)
    assert not torch.equal(expected[0][0], expected[first.steps_per_epoch][0])  # reshuffled
    assert [b[0].tolist() for b in first.batches(3, 6)] == [
        expected[s][0].tolist() for s in (3, 4, 5)
    ]


CHUNKINGS = {
    "memory": {"in_memory": True},
    "windows of 21": {},
    "batches over 4 windows": {"chunk_rows": 2, "window_chunks": 1},
    "one window": {"chunk_rows": 256},
}


@pytest.mark.parametrize("options", CHUNKINGS.values(), ids=CHUNKINGS.keys())
def test_an_epoch_covers_each_training_row_once(store: Path, options: dict[str, Any]) -> None:
    data = stored(store)
    train, val = split_store_rows(data["index"], 0.2, seed=0, block=8)
    batches = streamed(store, train, **options)
    assert batches.in_memory is options.get("in_memory", False)
    assert batches.steps_per_epoch == train.size // 8
    for epoch in range(3):
        seen = epoch_rows(batches, epoch)
        assert seen.size == np.unique(seen).size == batches.steps_per_epoch * 8
        assert set(seen) <= set(train) and train.size - seen.size < 8
        assert not set(seen) & set(val) and (data["index"][seen] != -1).all()
    for step in range(batches.steps_per_epoch):
        check_values(batches.batch(step), data)


def test_memory_and_streamed_give_the_same_rows(store: Path) -> None:
    data = stored(store)
    rows = np.flatnonzero(data["index"] != -1)[:112]  # 112 = 14 batches, nothing dropped
    memory = streamed(store, rows, in_memory=True)
    stream = streamed(store, rows)
    for epoch in range(2):
        a, b = epoch_rows(memory, epoch), epoch_rows(stream, epoch)
        np.testing.assert_array_equal(np.sort(a), rows)
        np.testing.assert_array_equal(np.sort(b), rows)
    for step in range(0, 28, 3):
        check_values(memory.batch(step), data)
        check_values(stream.batch(step), data)


def test_rows_with_index_minus_one_are_left_out(store: Path) -> None:
    batches = streamed(store, np.arange(120), in_memory=True)
    assert batches.rows.size == 116 and batches.steps_per_epoch == 14
    seen = epoch_rows(batches, 0)
    assert not {0, 17, 18, 50} & set(seen)


def test_memory_is_chosen_from_the_cap(store: Path) -> None:
    row_bytes = 8 + 5 * 4 + 18 * 4 + 4 * 4 + 8
    rows = np.arange(1, 17)
    assert StoreBatches(store, FIELDS, rows, 4, 0, cap_bytes=16 * row_bytes).in_memory
    assert not StoreBatches(store, FIELDS, rows, 4, 0, cap_bytes=16 * row_bytes - 1).in_memory
    default = StoreBatches(store, FIELDS, rows, 4, 0)  # one block of 256 rows or fewer
    assert default.chunk_rows == 256 and default.in_memory
    check_values(default.batch(7), stored(store))


def test_float16_layers_come_back_as_float32(tmp_path: Path) -> None:
    path = make_store(tmp_path / "half.h5", n=40, dtype="float16")
    data = stored(path)
    assert data["fc"].dtype == np.float16
    for in_memory in (True, False):
        batches = streamed(path, np.arange(40), in_memory=in_memory)
        batch = batches.batch(2)
        assert batch[2].shape == (8, 2, 3, 3) and batch[1].shape == (8, 5)
        check_values(batch, data)
        fc = batches.all()[1]
        assert fc.dtype == torch.float32
        np.testing.assert_array_equal(fc.numpy(), data["fc"].astype(np.float32))


@pytest.mark.parametrize("in_memory", [True, False])
def test_shares_make_the_batch(store: Path, in_memory: bool) -> None:
    rows = np.arange(120)
    whole = streamed(store, rows, in_memory=in_memory)
    halves = [streamed(store, rows, in_memory=in_memory, part=Part(r, 2)) for r in (0, 1)]
    for step in (0, 5, 20):
        both = [h.batch(step) for h in halves]
        assert both[0][0].shape == (4,)
        for i, tensor in enumerate(whole.batch(step)):
            assert torch.equal(torch.cat([both[0][i], both[1][i]]), tensor)
            assert torch.equal(halves[1].global_batch(step)[i], tensor)


def test_bad_arguments(store: Path) -> None:
    rows = np.arange(1, 40)
    with pytest.raises(ConfigError, match="split evenly over 3"):
        StoreBatches(store, FIELDS, rows, 8, 0, part=Part(0, 3))
    with pytest.raises(ConfigError, match="larger than the 37 usable rows"):
        StoreBatches(store, FIELDS, rows, 38, 0)
    with pytest.raises(ConfigError, match="increasing"):
        StoreBatches(store, FIELDS, rows[::-1], 8, 0)
    with pytest.raises(ConfigError, match="increasing"):
        StoreBatches(store, FIELDS, np.array([1, 500]), 1, 0)
    with pytest.raises(StoreError, match="choose one of: fc, conv"):
        StoreBatches(store, ["nope"], rows, 8, 0)
    with pytest.raises(StoreError, match="has no images"):
        StoreBatches(store, ["images"], rows, 8, 0)


@pytest.mark.parametrize("in_memory", [True, False])
def test_all_reads_rows_in_order(store: Path, in_memory: bool) -> None:
    data = stored(store)
    _, val = split_store_rows(data["index"], 0.3, seed=0, block=8)
    batches = streamed(store, val, in_memory=in_memory)
    everything = batches.all()
    np.testing.assert_array_equal(check_values(everything, data), val)
    first = batches.all(max_rows=10)
    np.testing.assert_array_equal(first[0].numpy() - 1000, val[:10])
    everything[1].zero_()  # a copy: the next batch is unharmed
    check_values(batches.batch(0), data)


def test_a_pickled_stream_works_in_another_process(store: Path, tmp_path: Path) -> None:
    batches = streamed(store, np.arange(120))
    expected = batches.batch(20)
    state = pickle.dumps(batches)  # with the file open and windows cached
    copy = pickle.loads(state)
    assert copy._file._file is None and len(state) < 10_000  # no handle, no cached rows
    assert all(torch.equal(a, b) for a, b in zip(copy.batch(20), expected, strict=True))
    (tmp_path / "batches.pkl").write_bytes(state)
    code = (
        "import pickle, sys, numpy; b = pickle.load(open(sys.argv[1], 'rb')); "
        "numpy.save(sys.argv[2], b.batch(20)[1].numpy()); b.close()"
    )
    args = [sys.executable, "-c", code, str(tmp_path / "batches.pkl"), str(tmp_path / "fc.npy")]
    subprocess.run(args, check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "fc.npy"), expected[1].numpy())
    batches.close()
    batches.close()


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_damaged_chunk_stops_training_in_one_line(tmp_path: Path, in_memory: bool) -> None:
    """Not garbage fed to the loop (which would end as "loss became nan"): the rows named."""
    from conftest import flip_a_bit, write_synthetic_store

    path = write_synthetic_store(tmp_path / "acts.h5", n=2000)
    with h5py.File(path, "r") as file:
        chunk = file["layers/fc"].chunks[0]
    flip_a_bit(path, "layers/fc", 3)  # away from the rows a fingerprint reads
    batches = StoreBatches(path, ["fc", "latents"], np.arange(2000), 50, 0, in_memory=in_memory)
    with pytest.raises(StoreError) as caught:
        for step in range(batches.steps_per_epoch):
            batches.batch(step)
    rows = f"rows {3 * chunk}..{4 * chunk - 1}"
    assert str(caught.value) == (
        f"{path} is damaged: {rows} of layers/fc fail their checksum; "
        "extract it again (innx extract … --overwrite)"
    )


def test_a_fit_on_a_damaged_store_is_one_line_and_writes_no_run(tmp_path: Path) -> None:
    from conftest import flip_a_bit, write_synthetic_store
    from typer.testing import CliRunner

    from innx.cli.app import build_app

    path = write_synthetic_store(tmp_path / "acts.h5", n=2000)
    flip_a_bit(path, "layers/fc", 3)
    out = tmp_path / "inv"
    args = ["fit", "invariance", str(path), "--layer", "fc", "--steps", "3", "-o", str(out)]
    result = CliRunner().invoke(build_app(), args, prog_name="innx")
    assert result.exit_code == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "is damaged: rows" in errors[0] and "Traceback" not in result.stderr
    assert not (out / "manifest.json").exists()
