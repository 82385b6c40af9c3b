"""The conv autoencoder: shapes, the posterior mean, bad configs, the run directory round trip."""

from __future__ import annotations

import json

import pytest
import torch

from innx.autoencoders.conv import AutoencoderConfig, ConvAutoencoder
from innx.autoencoders.loader import Autoencoder, load_autoencoder
from innx.errors import ConfigError, RunError, ShapeError
from innx.store.runs import WEIGHTS, write_run


def trained_a_little(config: AutoencoderConfig) -> ConvAutoencoder:
    """A model whose batch-norm statistics are not the initial ones."""
    torch.manual_seed(0)
    model = ConvAutoencoder(config)
    size = config.image_size
    with torch.no_grad():
        model(torch.rand(8, config.channels, size, size))
    return model.eval()


@pytest.mark.parametrize("size", [32, 64, 128])
def test_encode_and_decode_shapes(size):
    model = trained_a_little(AutoencoderConfig(image_size=size, latent_dim=12, width=4))
    x = torch.rand(3, 3, size, size)
    zbar = model.encode(x)
    assert zbar.shape == (3, 12)
    x_hat = model.decode(zbar)
    assert x_hat.shape == (3, 3, size, size)
    assert x_hat.min() >= 0.0 and x_hat.max() <= 1.0
    assert isinstance(model, Autoencoder)
    assert (model.latent_dim, model.image_size) == (12, size)


def test_one_channel_images():
    model = trained_a_little(AutoencoderConfig(channels=1, latent_dim=8, width=4))
    assert model.decode(model.encode(torch.rand(2, 1, 32, 32))).shape == (2, 1, 32, 32)


def test_encode_is_the_posterior_mean_and_training_samples_around_it():
    model = trained_a_little(AutoencoderConfig(latent_dim=8, width=4))
    x = torch.rand(4, 3, 32, 32)
    mean, logvar = model.posterior(x)
    assert torch.equal(model.encode(x), mean)
    assert torch.equal(model.encode(x), model.encode(x))
    x_hat, _, _ = model(x)  # eval mode: the mean is decoded
    assert torch.equal(x_hat, model.decode(mean))
    model.train()
    torch.manual_seed(1)
    a = model(x)[0]
    torch.manual_seed(2)
    b = model(x)[0]
    assert not torch.equal(a, b)  # a sample of the posterior, not its mean
    assert logvar.shape == mean.shape


@pytest.mark.parametrize("size", [16, 48, 256])
def test_other_sizes_are_refused_with_the_allowed_ones(size):
    with pytest.raises(ConfigError, match=f"32, 64, 128 px, not {size}"):
        AutoencoderConfig(image_size=size)


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError, match="1 or 3 channels"):
        AutoencoderConfig(channels=4)
    with pytest.raises(ConfigError, match="latent_dim >= 1"):
        AutoencoderConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="choose one of: demo, standard"):
        AutoencoderConfig.preset("huge")


def test_wrong_inputs_name_the_expected_shape():
    model = trained_a_little(AutoencoderConfig(latent_dim=8, width=4))
    with pytest.raises(ShapeError, match=r"\[B, 3, 32, 32\].*resize them to 32 px"):
        model.encode(torch.rand(2, 3, 64, 64))
    with pytest.raises(ShapeError, match=r"codes \[B, 8\]"):
        model.decode(torch.rand(2, 9))


def test_config_round_trip_through_json():
    config = AutoencoderConfig.preset("standard", image_size=64, channels=1, latent_dim=128)
    assert (config.width, config.blocks) == (32, 2)
    data = json.loads(json.dumps(config.to_dict()))
    assert AutoencoderConfig.from_dict(data) == config
    assert config.levels == [32, 64, 128, 256, 256]


def save(model: ConvAutoencoder, run_dir):
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    return write_run(run_dir, state, "autoencoder", {"plugin": "conv", **model.config.to_dict()})


def test_a_saved_run_loads_through_the_entry_point_with_identical_outputs(tmp_path):
    model = trained_a_little(AutoencoderConfig(latent_dim=8, width=4))
    save(model, tmp_path / "ae")
    loaded = load_autoencoder(tmp_path / "ae")
    assert isinstance(loaded, ConvAutoencoder)
    assert not loaded.training
    assert loaded.config == model.config
    x = torch.rand(5, 3, 32, 32)
    zbar = model.encode(x)
    assert torch.equal(loaded.encode(x), zbar)
    assert torch.equal(loaded.decode(zbar), model.decode(zbar))


def test_corrupted_weights_are_refused(tmp_path):
    save(trained_a_little(AutoencoderConfig(latent_dim=8, width=4)), tmp_path / "ae")
    weights = tmp_path / "ae" / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(RunError, match="does not match the sha256"):
        load_autoencoder(tmp_path / "ae")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    save(trained_a_little(AutoencoderConfig(latent_dim=8, width=4)), tmp_path / "ae")
    config = tmp_path / "ae" / "config.json"
    data = json.loads(config.read_text())
    data["config"]["latent_dim"] = 9
    config.write_text(json.dumps(data))
    with pytest.raises(RunError, match=r"config\.json does not match the sha256 in its manifest"):
        load_autoencoder(tmp_path / "ae")
    manifest = json.loads((tmp_path / "ae" / "manifest.json").read_text())
    del manifest["files"]  # a run written before config.json was hashed
    (tmp_path / "ae" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="do not fit its config"):
        load_autoencoder(tmp_path / "ae")
    data["config"]["depth"] = 3
    config.write_text(json.dumps(data))
    with pytest.raises(RunError, match="does not describe a conv autoencoder"):
        load_autoencoder(tmp_path / "ae")
