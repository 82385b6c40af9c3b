"""Preprocessing as data: resize, crop, channels, normalisation, undo, and a JSON round trip."""

from __future__ import annotations

import pytest
import torch

from innx.backbones import IMAGENET, Preprocessing
from innx.errors import ConfigError, ShapeError


def test_normalises_and_undoes():
    pre = Preprocessing(size=(8, 8), **IMAGENET)
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    y = pre(x)
    mean = torch.tensor(IMAGENET["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET["std"]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, (x / 255.0 - mean) / std)
    torch.testing.assert_close(pre.undo(y), x / 255.0)


def test_resize_shorter_side_then_centre_crop():
    pre = Preprocessing(
        size=(4, 4), resize=6, mean=(0.0,) * 3, std=(1.0,) * 3, interpolation="nearest"
    )
    x = torch.arange(12 * 18, dtype=torch.float32).view(1, 1, 12, 18).expand(1, 3, 12, 18) / 255
    y = pre(x)
    assert y.shape == (1, 3, 4, 4)
    # nearest: 12x18 -> 6x9 keeps every second row/column, then the centre 4x4
    expected = x[:, :, ::2, ::2][:, :, 1:5, 2:6]
    torch.testing.assert_close(y, expected)


def test_grey_images_become_rgb_and_back():
    rgb = Preprocessing(size=(5, 5), mean=(0.0,) * 3, std=(1.0,) * 3)
    grey = torch.randint(0, 256, (2, 1, 5, 5), dtype=torch.uint8)
    out = rgb(grey)
    assert out.shape == (2, 3, 5, 5) and torch.equal(out[:, 0], out[:, 2])
    to_grey = Preprocessing(size=(5, 5), mean=(0.0,), std=(1.0,), channels=1)
    assert to_grey(torch.zeros(2, 3, 5, 5, dtype=torch.uint8)).shape == (2, 1, 5, 5)
    with pytest.raises(ShapeError, match="4-channel"):
        rgb(torch.zeros(1, 4, 5, 5, dtype=torch.uint8))


def test_fit_keeps_uint8_and_matches_the_float_path():
    pre = Preprocessing(size=(16, 16), mean=(0.0,) * 3, std=(1.0,) * 3)
    x = torch.randint(0, 256, (3, 3, 40, 30), dtype=torch.uint8)
    small = pre.fit(x)
    assert small.dtype == torch.uint8 and small.shape == (3, 3, 16, 16)
    assert (pre(small) - pre(x)).abs().max() <= 0.5 / 255 + 1e-6
    assert pre.fit(small) is small


def test_json_round_trip_and_checks():
    pre = Preprocessing(size=(224, 224), resize=256, **IMAGENET)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    with pytest.raises(ConfigError, match="interpolation"):
        Preprocessing(size=(2, 2), mean=(0.0,) * 3, std=(1.0,) * 3, interpolation="lanczos")
    with pytest.raises(ConfigError, match="one mean and std per channel"):
        Preprocessing(size=(2, 2), mean=(0.0,), std=(1.0,))
