"""``innx info``: in-process (CliRunner) and in a real process, complete, incomplete, joined
and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from typer.testing import CliRunner, Result

from innx.cli.app import build_app
from innx.data.base import Attribute
from innx.store import LayerSpec, StoreLayout, StoreWriter, join_shards

LAYOUT = StoreLayout(
    n=10,
    layers=(LayerSpec("layer3.1.conv2", "layer3.1.conv2", (2, 3)),),
    attributes=(Attribute("shape", "categorical", ("square", "disc")),),
    has_labels=True,
    compression="gzip",
    batch_size=4,
    metadata={"dataset": {"name": "shapes", "fingerprint": "abc"}, "backbone": {"name": "cnn"}},
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args), prog_name="innx")


def make_store(path: Path, layout: StoreLayout = LAYOUT, rows: int | None = None) -> Path:
    rows = layout.n if rows is None else rows
    with StoreWriter.create(path, layout) as writer:
        writer.write(
            np.arange(rows),
            index=np.arange(rows),
            labels=np.zeros(rows),
            attributes=np.ones((rows, 1)),
            layers={"layer3.1.conv2": np.ones((rows, 2, 3))},
        )
        if rows == layout.n:
            writer.finish()
    return path


def test_info_json(tmp_path: Path) -> None:
    path = make_store(tmp_path / "acts.h5")
    result = invoke("info", str(path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["complete"] and summary["rows"] == {"done": 10, "total": 10}
    assert summary["format"] == "innx.activations" and summary["version"] == 1
    assert summary["metadata"]["dataset"] == {"name": "shapes", "fingerprint": "abc"}
    layer = next(d for d in summary["datasets"] if d["name"] == "layers/layer3.1.conv2")
    assert layer == {
        "name": "layers/layer3.1.conv2",
        "shape": [10, 2, 3],
        "dtype": "float32",
        "chunks": [4, 2, 3],
        "compression": "gzip",
        "virtual": False,
    }
    assert summary["size_bytes"] == path.stat().st_size


def test_info_table(tmp_path: Path) -> None:
    path = make_store(tmp_path / "acts.h5")
    result = invoke("info", str(path))
    assert result.exit_code == 0, result.output
    assert "complete (10 rows)" in result.stdout
    assert "innx.activations v1" in result.stdout
    line = next(x for x in result.stdout.splitlines() if "layers/layer3.1.conv2" in x)
    assert line.split()[1:] == ["10×2×3", "float32", "4×2×3", "gzip"]


def test_info_incomplete_and_joined(tmp_path: Path) -> None:
    path = make_store(tmp_path / "acts.h5", replace(LAYOUT, compression="none"), rows=4)
    result = invoke("info", str(path))
    assert result.exit_code == 0, result.output
    assert "incomplete: 4 of 10 rows" in result.stdout
    shards = [make_store(tmp_path / f"s{k}.h5", replace(LAYOUT, n=5)) for k in range(2)]
    join_shards(tmp_path / "joined.h5", shards, LAYOUT)
    result = invoke("info", str(tmp_path / "joined.h5"))
    assert result.exit_code == 0, result.output
    assert "layers/layer3.1.conv2 (virtual)" in result.stdout
    assert '["s0.h5", "s1.h5"]' in result.stdout


def test_info_bad_input(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not hdf5")
    cases = {
        tmp_path / "missing.h5": "does not exist",
        tmp_path / "notes.txt": "is not a readable HDF5 file",
    }
    for path, message in cases.items():
        result = invoke("info", str(path))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_info_in_a_real_process(tmp_path: Path) -> None:
    path = make_store(tmp_path / "acts.h5")
    cmd = [sys.executable, "-m", "innx", "info", str(path), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == {"done": 10, "total": 10}
