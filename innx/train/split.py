"""Training and validation rows: of a dataset (:func:`split_rows`, a seeded permutation cut once)
and of an activation store (:func:`split_store_rows`, blocks or single rows, whichever keeps the
validation rows a random sample)."""

from __future__ import annotations

import numpy as np
import torch

from innx.errors import ConfigError

_VAL_BLOCKS = 20  # a small store gets smaller validation blocks, so there are at least this many


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation rows of ``n``: a permutation from ``seed``, cut once."""
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 1:
        raise ConfigError(f"a dataset of {n} images is too small to split for validation")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def split_store_rows(
    index: np.ndarray, val_fraction: float, seed: int, block: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation store rows: sorted ``int64`` arrays, disjoint, together every row
    whose ``index`` is not ``-1`` (rows of skipped images are dropped).

    On a shuffled store (rows in a random order of the dataset: ``index`` not increasing, as
    ``innx extract`` writes them), validation takes whole blocks of up to ``block`` consecutive
    valid rows, chosen from ``seed`` (smaller blocks for a small store, so that there are about 20
    or more), so that a streamed store reads validation rows contiguously too. On a store in the
    dataset's order (``index`` increasing: written before stores were shuffled, or with
    ``--no-shuffle``), where a block could hold a single class of a class-sorted dataset, it takes
    single rows instead. Either way the rows or blocks are a prefix of one seeded order, so a
    larger ``val_fraction`` with the same seed keeps the smaller one's validation rows.

    >>> train, val = split_store_rows(np.array([5, -1, 7, 8, 9, 3]), 0.25, seed=0)
    >>> sorted(train.tolist() + val.tolist()), len(val)
    ([0, 2, 3, 4, 5], 1)
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    if block < 1:
        raise ConfigError(f"validation blocks need at least one row, got block={block}")
    if seed < 0:
        raise ConfigError(f"the seed must be non-negative, got {seed}")
    valid = np.flatnonzero(np.asarray(index) != -1).astype(np.int64)
    if valid.size < 2:
        raise ConfigError(
            f"the store has {valid.size} usable rows (index not -1); training and validation "
            "need at least one each; extract more images"
        )
    in_order = bool(np.all(np.diff(np.asarray(index)[valid]) > 0))
    size = 1 if in_order else max(1, min(block, valid.size // _VAL_BLOCKS))
    starts = np.arange(0, valid.size, size)
    order = np.random.default_rng([seed, 2]).permutation(starts.size)
    lengths = np.minimum(starts + size, valid.size)[order] - starts[order]
    wanted = val_fraction * valid.size
    count = int(np.argmin(np.abs(np.cumsum(lengths) - wanted))) + 1
    count = min(max(count, 1), starts.size - 1)  # starts.size >= 2: both splits get rows
    in_val = np.zeros(valid.size, bool)
    for start in starts[order[:count]]:
        in_val[start : start + size] = True
    return valid[~in_val], valid[in_val]
