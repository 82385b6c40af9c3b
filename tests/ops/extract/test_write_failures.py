"""``innx extract`` on a disk that fills up or cannot be written: one line on stderr, exit 1,
nothing on stdout, no store marked complete, no temporary file left, and ``--resume`` finishes
once there is room. Full disks are real: small tmpfs mounts (root only; skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner, Result

import innx.store.activations as activations
from innx.cli.app import build_app
from innx.errors import StoreError
from innx.ops.extract.extraction import ExtractOptions, extract
from innx.store import ActivationStore, LayerSpec, StoreLayout, StoreWriter
from innx.writes import WriteError

pytestmark = pytest.mark.filterwarnings("ignore:backbone smallcnn has random weights")

SPEC = "shapes:n=64,size=32,seed=2"
ARGS = ["extract", SPEC, "--backbone", "smallcnn", "--layer", "conv2", "--layer", "fc"]
ARGS += ["--batch-size", "16", "--store-images"]
OPTIONS = ExtractOptions(SPEC, "smallcnn", ("conv2", "fc"), batch_size=16, store_images=True)
FIELDS = ("index", "labels", "attributes", "layers/conv2", "layers/fc", "images")

Mount = Callable[[int], Path]


@pytest.fixture
def tmpfs(small_disk) -> Mount:  # type: ignore[no-untyped-def]
    """``tmpfs(kib)``: the folder of a fresh tmpfs of that size (:class:`conftest.SmallDisk`;
    skipped where mounting is not permitted)."""
    return lambda kib: small_disk(f"{kib}k").path


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args), prog_name="innx")


def the_error(stdout: str, stderr: str) -> str:
    """The one error line of a failed command (after its info and warning lines)."""
    assert stdout == ""
    lines = stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), stderr
    assert all(line.startswith(("warning: ", "innx: ")) for line in lines[:-1]), stderr
    return lines[-1]


def rows_of(path: Path) -> dict[str, np.ndarray]:
    with ActivationStore(path, allow_incomplete=True) as store:
        done = store.dataset("done")[...]
        return {"done": done, **{name: store.dataset(name)[...] for name in FIELDS}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    path = tmp_path_factory.mktemp("reference") / "acts.h5"
    extract(OPTIONS, path)
    return rows_of(path)


def assert_rows_equal(path: Path, reference: dict[str, np.ndarray], complete: bool) -> None:
    with ActivationStore(path, allow_incomplete=True) as store:
        assert store.complete == complete
    got = rows_of(path)
    done = got["done"]
    for name in FIELDS:
        np.testing.assert_array_equal(got[name][done], reference[name][done], err_msg=name)


def test_a_store_that_does_not_fit_fails_at_once(tmpfs: Mount) -> None:
    disk = tmpfs(1024)
    result = invoke(*ARGS, "-o", str(disk / "acts.h5"))
    assert result.exit_code == 1
    layout = StoreLayout(  # the store of OPTIONS
        n=64,
        layers=(LayerSpec("conv2", "", (64, 16, 16)), LayerSpec("fc", "", (4,))),
        attributes=(),
        has_labels=True,
        image_shape=(32, 32, 3),
        batch_size=16,
    )
    needs = -(-layout.nbytes() // (1 << 20))
    assert the_error(result.stdout, result.stderr) == (
        f"error: no space left on device while writing {disk / 'acts.h5'} (the store needs "
        f"{needs} MiB, 1020 KiB free); free space and run again"
    )
    assert os.listdir(disk) == []


@pytest.mark.parametrize(("kib", "free"), [(1024, "1020 KiB"), (8, "4 KiB")])
def test_a_store_that_cannot_be_created_is_removed(
    tmpfs: Mount, monkeypatch: pytest.MonkeyPatch, kib: int, free: str
) -> None:
    """Past the check of free space (a disk filled meanwhile): the reservation of the store's
    space fails (1 MiB), or HDF5's own first writes do (8 KiB, the lock file takes 4); one
    line, the new file removed, and HDF5 left with no file open."""
    disk = tmpfs(kib)
    monkeypatch.setattr(activations, "check_room", lambda path, layout: None)
    layout = StoreLayout(
        n=64, layers=(LayerSpec("conv2", "", (64, 16, 16)),), attributes=(), has_labels=False
    )
    open_files = h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)
    with pytest.raises(WriteError) as err:
        StoreWriter.create(disk / "acts.h5", layout)
    assert str(err.value) == (
        f"no space left on device while writing {disk / 'acts.h5'} (the store needs 5 MiB, "
        f"{free} free); free space and run again"
    )
    assert os.listdir(disk) == []
    assert h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE) == open_files


def test_a_compressed_store_that_cannot_be_finished_resumes_once_there_is_room(
    tmpfs: Mount, tmp_path: Path, reference: dict[str, np.ndarray]
) -> None:
    """The store is written, its compressed copy does not fit: a real process, which must not
    crash on its way out (HDF5 closing a file whose writes failed)."""
    extract(OPTIONS, tmp_path / "plain.h5")
    size = (tmp_path / "plain.h5").stat().st_size
    disk = tmpfs(size // 1024 + 64)
    path = disk / "acts.h5"
    done = subprocess.run(
        [sys.executable, "-m", "innx", *ARGS, "--compression", "gzip", "-o", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert the_error(done.stdout, done.stderr) == (
        f"error: no space left on device while writing {path}; free space and run again "
        "with --resume"
    )
    assert os.listdir(disk) == ["acts.h5"]
    assert_rows_equal(path, reference, complete=False)
    assert rows_of(path)["done"].all()

    remount(disk, f"size={3 * size // 1024}k")
    result = invoke(*ARGS, "--compression", "gzip", "-o", str(path), "--resume")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}\n"
    assert os.listdir(disk) == ["acts.h5"]
    assert_rows_equal(path, reference, complete=True)
    with h5py.File(path, "r") as file:
        assert file["layers/conv2"].compression == "gzip" and file["layers/conv2"].fletcher32


def test_a_read_only_target_is_one_line(tmpfs: Mount) -> None:
    disk = tmpfs(1024)
    remount(disk, "ro")
    result = invoke(*ARGS, "-o", str(disk / "acts.h5"))
    assert result.exit_code == 1
    assert the_error(result.stdout, result.stderr) == (
        f"error: read-only file system while writing {disk / 'acts.h5'}; write somewhere "
        "writable and run again"
    )


def test_a_failed_write_mid_way_leaves_a_resumable_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, np.ndarray]
) -> None:
    """The 18th dataset write (the third batch's conv2) fails as h5py reports a full disk."""
    path = tmp_path / "acts.h5"
    calls = []
    setitem = h5py.Dataset.__setitem__

    def failing(self: h5py.Dataset, key: object, value: object) -> None:
        calls.append(self.name)
        if len(calls) == 18:
            raise RuntimeError(
                "Can't write data (file write failed: time = Sat Nov 28 02:41:55 2026, filename "
                f"= '{path}', file descriptor = 4, errno = 28, error message = 'No space left "
                "on device', buf = 0x7fc6d0860c88, total write size = 393216)"
            )
        setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing)
    with pytest.raises(WriteError) as err:
        extract(OPTIONS, path)
    assert str(err.value) == (
        f"no space left on device while writing {path}; free space and run again with --resume"
    )
    assert calls[17] == "/layers/conv2"
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["acts.h5"]
    assert_rows_equal(path, reference, complete=False)
    assert np.flatnonzero(rows_of(path)["done"]).tolist() == list(range(32))
    result = extract(OPTIONS, path, resume=True)
    assert result.written == 32
    assert_rows_equal(path, reference, complete=True)


def test_a_resume_names_the_store_as_it_was_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    options = ExtractOptions("shapes:n=8,size=32", "smallcnn", ("fc",), batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        extract(options, "sub/acts.h5", progress=lambda done, n: _interrupt(done))
    other = ExtractOptions("shapes:n=8,size=32", "smallcnn", ("pool",), batch_size=4)
    with pytest.raises(StoreError) as err:
        extract(other, "sub/acts.h5", resume=True)
    assert str(err.value).startswith(
        "cannot resume sub/acts.h5: it was written for a different extraction (layers: file has"
    )


def _interrupt(done: int) -> None:
    if done >= 4:
        raise KeyboardInterrupt
