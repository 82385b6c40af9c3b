"""``dsprites`` on an npz with the real keys, including a pickled ``metadata`` never loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from innx.data import open_dataset
from innx.errors import DataError

if TYPE_CHECKING:
    from conftest import DSprites


def test_images_factors_and_label(dsprites: DSprites) -> None:
    ds = open_dataset(f"dsprites:{dsprites.path}")
    assert len(ds) == 10 and ds.channels == 1 and ds.image_size == (64, 64)
    assert ds.classes == ("square", "ellipse", "heart")
    assert [a.name for a in ds.attributes] == ["shape", "scale", "orientation", "x", "y"]
    for i in range(len(ds)):
        x, label, attributes = ds[i]
        assert np.array_equal(x[0].numpy(), dsprites.imgs[i] * 255)
        assert label == dsprites.classes[i, 1]
        expected = np.concatenate([[label], dsprites.values[i, 2:]]).astype(np.float32)
        assert np.array_equal(attributes.numpy(), expected)


def test_metadata_is_never_unpickled(dsprites: DSprites, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    ds = open_dataset(f"dsprites:{dsprites.path}")
    ds[3]
    ds.fingerprint()


def test_wrong_file(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"dsprites expects .*nope.npz, not found; download dsprites_"
    ):
        open_dataset(f"dsprites:{tmp_path / 'nope.npz'}")
    np.savez(tmp_path / "other.npz", imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match=r"has no latents_values, latents_classes"):
        open_dataset(f"dsprites:{tmp_path / 'other.npz'}")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match=r"is not an .npz file"):
        open_dataset(f"dsprites:{tmp_path / 'text.npz'}")


def test_images_must_be_binary(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(
        path,
        imgs=np.full((1, 64, 64), 7, np.uint8),
        latents_values=np.zeros((1, 6)),
        latents_classes=np.zeros((1, 6), np.int64),
    )
    ds = open_dataset(f"dsprites:{path}")
    with pytest.raises(DataError, match=r"must hold only 0 and 1"):
        ds[0]


def test_fingerprint_changes_with_content(dsprites: DSprites, tmp_path: Path) -> None:
    first = open_dataset(f"dsprites:{dsprites.path}").fingerprint()
    values = dsprites.values.copy()
    values[0, 2] += 1
    np.savez_compressed(
        dsprites.path, imgs=dsprites.imgs, latents_values=values, latents_classes=dsprites.classes
    )
    assert open_dataset(f"dsprites:{dsprites.path}").fingerprint() != first
