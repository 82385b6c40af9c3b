"""A store's integrity: chunk checksums that refuse a damaged chunk with its rows named, metadata
that is read without trusting it, attribute values that are checked where they are read."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import flip_a_bit
from typer.testing import CliRunner

import innx.store.datasets as datasets
from innx.cli.app import build_app
from innx.data.base import Attribute
from innx.errors import StoreError
from innx.store import ActivationStore, StoreWriter, join_shards

sys.path.insert(0, str(Path(__file__).parent))
from test_activations import expected, make_layout, write_rows, write_store

DAMAGED = "is damaged: rows 16..23 of {name} fail their checksum; extract it again (innx extract … --overwrite)"


def chunk_places(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Offset and size of every chunk of every chunked dataset."""
    places = {}
    with h5py.File(path, "r", locking=False) as file:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.chunks:
                infos = [obj.id.get_chunk_info(i) for i in range(obj.id.get_num_chunks())]
                places[name] = [(i.byte_offset, i.size) for i in infos]

        file.visititems(visit)
    return places


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_every_chunked_dataset_has_a_checksum(tmp_path: Path, compression: str) -> None:
    layout = make_layout(compression=compression)
    write_store(tmp_path / "acts.h5", layout, expected(layout))
    with h5py.File(tmp_path / "acts.h5", "r") as file:
        names = [name for name, _, _ in layout.datasets()] + ["bad"]
        assert len(names) == 9
        for name in names:
            assert file[name].fletcher32, name


def test_rows_are_written_in_place(tmp_path: Path) -> None:
    """Writing rows moves no chunk: the file changes in place (what makes it crash-safe)."""
    path = tmp_path / "acts.h5"
    layout = make_layout()
    data = expected(layout)
    with StoreWriter.create(path, layout) as writer:
        before, size = chunk_places(path), path.stat().st_size
        for start in (16, 0, 32, 8, 24):
            write_rows(writer, data, start, min(start + 8, layout.n))
        writer.finish()
    assert chunk_places(path) == before and path.stat().st_size == size
    assert len(before["layers/conv1"]) == 5


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_flipped_bit_is_refused_on_every_read_path(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "acts.h5"
    layout = make_layout(compression=compression)
    data = expected(layout)
    write_store(path, layout, data)
    flip_a_bit(path, "layers/conv1", 2)  # rows 16..23
    message = f"{path} " + DAMAGED.format(name="layers/conv1")
    with ActivationStore(path) as store:
        reads = {
            "a row": lambda: store.layer("conv1")[20],
            "a slice": lambda: store.layer("conv1")[10:30],
            "rows": lambda: store.layer("conv1")[np.array([1, 17, 30])],
            "load": lambda: store.load("conv1"),
            "asarray": lambda: np.asarray(store.layer("conv1")),
            "dataset": lambda: store.dataset("layers/conv1")[...],
            "in memory": lambda: store.torch_dataset(["conv1"]),
            "streamed": lambda: store.torch_dataset(["conv1"], in_memory=False)[17],
            "fingerprint": store.fingerprint,
        }
        for what, read in reads.items():
            with pytest.raises(StoreError) as err:
                read()
            assert str(err.value) == message, what
        np.testing.assert_array_equal(store.layer("conv1")[:16], data["layers/conv1"][:16])
        np.testing.assert_array_equal(store.layer("conv1")[24:], data["layers/conv1"][24:])


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("index", lambda store: store.index),
        ("labels", lambda store: store.labels),
        ("attributes", lambda store: store.attributes),
        ("latents", lambda store: store.latents[16:18]),
        ("images", lambda store: store.images[:]),
        ("done", lambda store: None),  # read when the store is opened
    ],
)
def test_each_dataset_is_checked(tmp_path: Path, name: str, read: Any) -> None:
    path = tmp_path / "acts.h5"
    layout = make_layout()
    write_store(path, layout, expected(layout))
    flip_a_bit(path, name, 2)
    with pytest.raises(StoreError) as err, ActivationStore(path) as store:
        read(store)
    assert str(err.value) == f"{path} " + DAMAGED.format(name=name)


def test_a_store_without_checksums_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "CHECKSUMS", False)
    layout = make_layout()
    data = expected(layout)
    write_store(tmp_path / "old.h5", layout, data)
    with ActivationStore(tmp_path / "old.h5") as store:
        assert not store.layer("conv1").fletcher32
        np.testing.assert_array_equal(store.load("conv1"), data["layers/conv1"])
        np.testing.assert_array_equal(store.images[3:5], data["images"][3:5])
        assert len(store.fingerprint()) == 64


def test_a_damaged_shard_is_named_through_the_joined_store(tmp_path: Path) -> None:
    layout = make_layout(n=40)
    data = expected(layout)
    shards = []
    for k, (start, stop) in enumerate(((0, 16), (16, 40))):
        shard = tmp_path / f"shard{k}.h5"
        write_store(
            shard, replace(layout, n=stop - start), {n: v[start:stop] for n, v in data.items()}
        )
        shards.append(shard)
    join_shards(tmp_path / "acts.h5", shards, layout)
    with h5py.File(tmp_path / "acts.h5", "r") as file:
        assert file["bad"].fletcher32
    flip_a_bit(shards[1], "layers/conv1", 1)  # its rows 8..15: rows 24..31 of the join
    with ActivationStore(tmp_path / "acts.h5") as store:
        with pytest.raises(StoreError) as err:
            store.load("conv1")
        assert str(err.value) == (
            f"{tmp_path / 'acts.h5'} is damaged: rows 24..31 of layers/conv1 (in shard1.h5) "
            "fail their checksum; extract it again (innx extract … --overwrite)"
        )
        np.testing.assert_array_equal(store.layer("conv1")[:24], data["layers/conv1"][:24])


# -- metadata ----------------------------------------------------------------------------------


def _set(name: str, key: str, value: Any) -> Any:
    def edit(file: h5py.File) -> None:
        file[name].attrs[key] = value

    return edit


def _delete(name: str, key: str) -> Any:
    def edit(file: h5py.File) -> None:
        del file[name].attrs[key]

    return edit


METADATA_DAMAGE = {
    "root attribute 'backbone' is not UTF-8 text": _set("/", "backbone", b"\xff\xfe"),
    "root attribute 'dataset' is not valid JSON ('{not json')": _set("/", "dataset", "{not json"),
    "root attribute 'preprocessing' is missing": _delete("/", "preprocessing"),
    "root attribute 'backbone' is not an object or null": _set("/", "backbone", "[1, 2]"),
    "root attribute 'version' is not a whole number": _set("/", "version", "one"),
    "attribute 'names' of attributes is missing": _delete("attributes", "names"),
    "attribute 'kinds' of attributes holds 'weird'": _set(
        "attributes", "kinds", json.dumps(["weird", "continuous"])
    ),
    "attribute 'categories' of attributes names 1 attributes, the store holds 2": _set(
        "attributes", "categories", json.dumps([["a"]])
    ),
    "attribute 'shape' of layers/conv1 is missing": _delete("layers/conv1", "shape"),
    "attribute 'shape' of layers/conv1 is [3, 4], the layer holds [8, 3, 4, 4]": _set(
        "layers/conv1", "shape", "[3, 4]"
    ),
    "attribute 'module' of layers/conv1 is not UTF-8 text": _set("layers/conv1", "module", b"\xff"),
}


@pytest.mark.parametrize("problem", list(METADATA_DAMAGE))
def test_damaged_metadata_is_one_line_wherever_it_is_read(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "acts.h5"
    layout = make_layout(n=8)
    write_store(path, layout, expected(layout))
    with h5py.File(path, "r+") as file:
        METADATA_DAMAGE[problem](file)
    message = f"{path} is damaged: {problem}; extract it again (innx extract … --overwrite)"
    with pytest.raises(StoreError) as err:
        ActivationStore(path, allow_incomplete=True)
    assert str(err.value) == message
    with pytest.raises(StoreError) as err:
        StoreWriter.resume(path, layout)
    assert str(err.value) == message
    with pytest.raises(StoreError) as err:
        join_shards(tmp_path / "joined.h5", [path], layout)
    assert str(err.value) == message
    result = CliRunner().invoke(build_app(), ["info", str(path)], prog_name="innx")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: {message}\n"


def test_damaged_metadata_is_one_line_for_extract_resume(tmp_path: Path, monkeypatch) -> None:
    """The store named as the user named it (a relative path), by the command line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    layout = make_layout(n=8)
    write_store(tmp_path / "sub" / "acts.h5", layout, expected(layout))
    with h5py.File(tmp_path / "sub" / "acts.h5", "r+") as file:
        file.attrs["backbone"] = b"\xff\xfe"
    args = ["extract", "shapes:n=8,size=32", "-o", "sub/acts.h5", "--backbone", "smallcnn"]
    result = CliRunner().invoke(build_app(), [*args, "--layer", "fc", "--resume"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: sub/acts.h5 is damaged: root attribute 'backbone' is not UTF-8 text; "
        "extract it again (innx extract … --overwrite)"
    )
    assert "Traceback" not in result.stderr


def test_a_store_with_unknown_root_attributes_still_opens(tmp_path: Path) -> None:
    """Attributes innx does not write are the user's: read as they are, never refused."""
    layout = make_layout(n=8, metadata={})  # dataset, backbone … recorded as null
    write_store(tmp_path / "acts.h5", layout, expected(layout))
    with h5py.File(tmp_path / "acts.h5", "r+") as file:
        file.attrs["note"] = "{not json"
        file.attrs["count"] = "3"
    with ActivationStore(tmp_path / "acts.h5") as store:
        assert store.metadata["note"] == "{not json" and store.metadata["count"] == 3
        assert store.metadata["backbone"] is None


# -- attribute values ----------------------------------------------------------------------------


def attribute_store(path: Path, shape: list[float], size: list[float], index: list[int]) -> Path:
    layout = make_layout(
        n=len(shape),
        attributes=(
            Attribute("shape", "categorical", ("square", "disc")),
            Attribute("size", "continuous"),
        ),
    )
    data = expected(layout)
    data["attributes"] = np.array([shape, size], np.float32).T
    data["index"] = np.array(index)
    write_store(path, layout, data)
    return path


CATEGORY = ", which is not a category index (0..1)"


@pytest.mark.parametrize(
    ("shape", "size", "problem"),
    [
        ([0, 1, 1, 7], [0.5] * 4, f"'shape' holds 7 at row 3{CATEGORY}"),
        ([0, 1, 0.5, 1], [0.5] * 4, f"'shape' holds 0.5 at row 2{CATEGORY}"),
        ([0, 1, -1, 1], [0.5] * 4, f"'shape' holds -1 at row 2{CATEGORY}"),
        ([0, 1, 0, 1], [0.5, np.nan, 1, 2], "'size' holds NaN at row 1"),
        ([0, 1, 0, 1], [0.5, 1, np.inf, 2], "'size' holds inf at row 2"),
        ([0, np.nan, 0, 1], [0.5] * 4, "'shape' holds NaN at row 1"),
    ],
)
def test_attribute_values_that_cannot_be_are_refused(
    tmp_path: Path, shape: list[float], size: list[float], problem: str
) -> None:
    path = attribute_store(tmp_path / "acts.h5", shape, size, [0, 1, 2, 3])
    name = problem.split("'")[1]
    message = (
        f"{path} is damaged: attribute {problem}; extract it again (innx extract … --overwrite)"
    )
    with ActivationStore(path) as store:
        for kind in (None, "categorical", "continuous"):
            with pytest.raises(StoreError) as err:
                store.attribute(name, kind)  # type: ignore[arg-type]
            assert str(err.value) == message


def test_attribute_values_of_rows_without_a_sample_do_not_count(tmp_path: Path) -> None:
    path = attribute_store(tmp_path / "acts.h5", [0, 9, 1, 0], [0.5, np.nan, 2, 3], [0, -1, 2, 3])
    with ActivationStore(path) as store:
        kind, values = store.attribute("shape")
        assert kind == "categorical" and values[[0, 2, 3]].tolist() == [0, 1, 0]
        assert store.attribute("size", "continuous")[1][[0, 2, 3]].tolist() == [0.5, 2, 3]
