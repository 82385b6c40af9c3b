"""The semantic fit's data side: store vectors in memory or read per batch, and pair batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from innx.data.pairs import Pairs
from innx.errors import ConfigError
from innx.ops.fit.semantic.inputs import InputTable, PairBatches, input_field
from innx.store import ActivationStore
from innx.train.distributed import Part


def test_rows_read_from_the_file_equal_rows_held_in_memory(synthetic_store):
    rows = np.array([5, 3, 5, 1999, 0, 3])  # any order, with repeats
    memory = InputTable(synthetic_store, "conv", in_memory=True)
    streamed = InputTable(synthetic_store, "conv", in_memory=False)
    assert memory.in_memory and not streamed.in_memory
    with ActivationStore(synthetic_store) as store:
        expected = torch.from_numpy(store.layer("conv")[...][rows].reshape(len(rows), 64))
    assert memory.dim == streamed.dim == 64  # a feature map is flattened
    assert torch.equal(memory.take(rows), expected)
    assert torch.equal(streamed.take(rows), expected)
    streamed.close()


def test_the_memory_cap_decides_where_rows_live(synthetic_store):
    assert InputTable(synthetic_store, "latents").in_memory
    assert not InputTable(synthetic_store, "latents", cap_bytes=1000).in_memory


def test_fixed_pairs_are_permuted_per_epoch_and_split_over_processes(synthetic_store):
    table = InputTable(synthetic_store, "latents")
    pairs = Pairs(np.arange(100), np.arange(100, 200), np.ones(100, dtype=np.int64))
    whole = PairBatches(table, pairs, 20, seed=0)
    assert whole.steps_per_epoch == 5
    epoch = np.concatenate([whole.pairs(step).a for step in range(5)])
    assert sorted(epoch.tolist()) == list(range(100))  # every pair once per epoch
    assert not np.array_equal(whole.pairs(5).a, whole.pairs(0).a)  # a new order next epoch
    za, zb, factor = whole.global_batch(3)
    assert factor.tolist() == [1] * 20
    assert torch.equal(za, table.take(whole.pairs(3).a)) and torch.equal(
        zb, table.take(whole.pairs(3).b)
    )
    halves = [PairBatches(table, pairs, 20, seed=0, part=Part(rank, 2)).batch(3) for rank in (0, 1)]
    assert torch.equal(torch.cat([halves[0][0], halves[1][0]]), za)
    with pytest.raises(ConfigError, match="larger than the 100 training pairs"):
        PairBatches(table, pairs, 128, seed=0)


def test_on_names_the_field():
    assert input_field("latents") == "latents"
    assert input_field("layer:conv2") == "conv2"
    for bad in ("layer:", "conv2"):
        with pytest.raises(ConfigError, match="--on must be 'latents' or 'layer:NAME'"):
            input_field(bad)
