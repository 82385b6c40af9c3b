"""Spec strings, the registry of datasets, and option parsing."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from innx.data import Options, Spec, dataset_names, open_dataset, parse_spec
from innx.errors import ConfigError
from innx.plugins import registry

BUILTINS = ["3dshapes", "celeba", "cifar10", "colormnist", "dsprites", "folder", "mnist", "shapes"]


def test_registry_finds_every_builtin_dataset() -> None:
    assert set(BUILTINS) <= set(dataset_names())
    declared = {ep.name for ep in entry_points(group="innx.datasets")}
    assert set(BUILTINS) <= declared
    for name in BUILTINS:
        assert callable(registry().load("innx.datasets", name))


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("shapes", Spec("shapes")),
        ("shapes:", Spec("shapes")),
        (
            "shapes:n=20000,size=32,seed=0",
            Spec("shapes", None, {"n": "20000", "size": "32", "seed": "0"}),
        ),
        ("folder:/data/imgs", Spec("folder", "/data/imgs")),
        ("mnist:ROOT,split=test", Spec("mnist", "ROOT", {"split": "test"})),
        ("celeba: split=valid , /r ,", Spec("celeba", "/r", {"split": "valid"})),
        ("folder:C:\\imgs", Spec("folder", "C:\\imgs")),
    ],
)
def test_parse_spec(text: str, spec: Spec) -> None:
    assert parse_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no dataset name"),
        (":n=1", "no dataset name"),
        ("folder:/a,/b", "two locations"),
        ("shapes:n=1,n=2", "sets option 'n' twice"),
        ("shapes:=3", "option without a name"),
    ],
)
def test_malformed_specs_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_spec(text)


def test_spec_prints_back() -> None:
    assert str(parse_spec("mnist:/r,split=test")) == "mnist:/r,split=test"
    assert str(Spec("shapes")) == "shapes"


def test_unknown_dataset_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset 'imagenet'; choose one of: 3dshapes, "):
        open_dataset("imagenet:/data")


def test_options_read_check_and_spell_out() -> None:
    opts = Options("demo", {"n": " 5 ", "mode": "b", "rate": "0.5"}, "/x")
    assert opts.get_int("n", 1, min=1) == 5
    assert opts.get_choice("mode", ("a", "b"), "a") == "b"
    assert opts.get_float("rate", 1.0, min=0.0, max=1.0) == 0.5
    assert opts.get_str("tag", "none") == "none"
    assert opts.spec() == "demo:/x,n=5,mode=b,rate=0.5,tag=none"


@pytest.mark.parametrize(
    ("options", "read", "message"),
    [
        ({"n": "x"}, lambda o: o.get_int("n", 1), "n='x' .* expected an integer"),
        ({"n": "1.5"}, lambda o: o.get_int("n", 1), "expected an integer"),
        ({"n": "9"}, lambda o: o.get_int("n", 1, max=5), "expected an integer <= 5"),
        ({"r": "nan"}, lambda o: o.get_float("r", 1.0), "expected a number"),
        ({"r": "two"}, lambda o: o.get_float("r", 1.0, min=0.0), "expected a number >= 0.0"),
        ({"m": "c"}, lambda o: o.get_choice("m", ("a", "b"), "a"), "expected one of: a, b"),
        ({"t": ""}, lambda o: o.get_str("t", "x"), "expected a non-empty value"),
    ],
)
def test_bad_option_values(options: dict[str, str], read: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read(Options("demo", options))  # type: ignore[operator]


def test_unknown_option_lists_the_valid_ones() -> None:
    opts = Options("demo", {"split": "test", "spilt": "x"})
    opts.get_choice("split", ("train", "test"), "train")
    with pytest.raises(
        ConfigError, match=r"dataset 'demo' has no option 'spilt'; valid options: split"
    ):
        opts.spec()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("folder", "dataset 'folder' needs a path: write folder:PATH"),
        ("mnist:split=test", "dataset 'mnist' needs a path"),
        ("cifar10", "needs a path"),
        ("celeba", "needs a path"),
        ("dsprites", "needs a path"),
        ("3dshapes", "needs a path"),
        ("colormnist", "needs a path"),
    ],
)
def test_datasets_on_files_need_a_location(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_dataset(spec)
