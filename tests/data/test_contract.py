"""Every built-in dataset keeps the ImageDataset contract (innx/data/base.py), on small files
written in the real formats: item types, index errors, canonical spec, cheap pickling."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from innx.data import CATEGORICAL, ImageDataset, open_dataset
from innx.ops.data.folders import write_shapes_folder

SPECS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "shapes": lambda r, t: "shapes:n=12,size=24,seed=2",
    "cues": lambda r, t: "cues:n=12,size=24,seed=2",
    "digits": lambda r, t: "digits:n=12,size=24,seed=2",
    "folder": lambda r, t: f"folder:{write_shapes_folder(t / 'shapes', 12, 16, 0)}",
    "mnist": lambda r, t: f"mnist:{r.getfixturevalue('mnist').root}",
    "mnist-test": lambda r, t: f"mnist:{r.getfixturevalue('mnist').root},split=test",
    "colormnist": lambda r, t: f"colormnist:{r.getfixturevalue('mnist').root},seed=3",
    "colormnist-independent": lambda r, t: (
        f"colormnist:{r.getfixturevalue('mnist').root},colors=independent,split=test"
    ),
    "cifar10": lambda r, t: f"cifar10:{r.getfixturevalue('cifar').root}",
    "celeba": lambda r, t: f"celeba:{r.getfixturevalue('celeba').root},split=all",
    "celeba-labelled": lambda r, t: f"celeba:{r.getfixturevalue('celeba').root},label=Male",
    "dsprites": lambda r, t: f"dsprites:{r.getfixturevalue('dsprites').path}",
    "3dshapes": lambda r, t: f"3dshapes:{r.getfixturevalue('shapes3d').path}",
}


@pytest.fixture(params=sorted(SPECS))
def dataset(request: pytest.FixtureRequest, tmp_path: Path) -> ImageDataset:
    return open_dataset(SPECS[request.param](request, tmp_path))


def test_items_follow_the_contract(dataset: ImageDataset) -> None:
    assert len(dataset) > 0
    for i in (0, len(dataset) - 1):
        x, label, attributes = dataset[i]
        assert x.dtype == torch.uint8 and x.ndim == 3 and x.shape[0] == dataset.channels
        if dataset.image_size is not None:
            assert tuple(x.shape[1:]) == dataset.image_size
        assert type(label) is int
        if dataset.classes is None:
            assert label == -1
        else:
            assert 0 <= label < len(dataset.classes)
        assert attributes.dtype == torch.float32
        assert attributes.shape == (len(dataset.attributes),)
        for value, a in zip(attributes.tolist(), dataset.attributes, strict=True):
            if a.kind == CATEGORICAL:
                assert value == int(value) and 0 <= value < len(a.categories)


def test_out_of_range_indices_raise_index_error(dataset: ImageDataset) -> None:
    for i in (len(dataset), -1):
        with pytest.raises(IndexError):
            dataset[i]


def test_spec_is_canonical_and_reopens_the_same_data(dataset: ImageDataset) -> None:
    again = open_dataset(dataset.spec)
    assert again.spec == dataset.spec and type(again) is type(dataset)
    assert dataset.root is None or os.path.isabs(dataset.root)
    assert len(again) == len(dataset) and again.fingerprint() == dataset.fingerprint()
    for i in range(len(dataset)):
        a, b = dataset[i], again[i]
        assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])


def test_pickles_without_its_data(dataset: ImageDataset) -> None:
    before = len(pickle.dumps(dataset))
    dataset[0]  # loads lazily held arrays
    data = pickle.dumps(dataset)
    assert len(data) <= before + 64
    copy = pickle.loads(data)
    assert torch.equal(copy[0][0], dataset[0][0])


def test_describe_is_json(dataset: ImageDataset) -> None:
    description = json.loads(json.dumps(dataset.describe()))
    assert description["spec"] == dataset.spec and description["n"] == len(dataset)
    assert len(dataset.fingerprint()) == 64
