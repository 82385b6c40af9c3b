"""Failed writes are failures: ``innx.writes`` on its own, then ``innx data shapes``, ``innx render``
and ``innx analyze`` writing onto a real full disk and a real read-only one (a small tmpfs): one
``error:`` line, exit 1, nothing on stdout, nothing half written left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from innx.writes import WriteError, atomic_write, is_write_failure, write_errno, writing

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
HDF5_FULL = (
    "Unable to synchronously flush file (file write failed: time = Sat Nov 28 02:39:46 2026\n"
    ", filename = 'mnt/a.h5', file descriptor = 3, errno = 28, error message = 'No space left on "
    "device', buf = 0x1, total write size = 4000, bytes this sub-write = 4000, offset = 7256)"
)


def innx(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "innx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)


def assert_one_line_failure(done: subprocess.CompletedProcess[str], *phrases: str) -> str:
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    for phrase in phrases:
        assert phrase in errors[0]
    return errors[0]


def test_the_errno_is_read_from_python_hdf5_and_torch_errors() -> None:
    assert write_errno(OSError(errno.ENOSPC, "No space left on device")) == errno.ENOSPC
    assert write_errno(RuntimeError(HDF5_FULL)) == errno.ENOSPC
    assert write_errno(RuntimeError("[Errno 30] Read-only file system: 'x'")) == errno.EROFS
    torch_failure = RuntimeError(
        "PytorchStreamWriter failed writing file data/0: file write failed"
    )
    assert write_errno(torch_failure) is None and is_write_failure(torch_failure)
    assert not is_write_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_write_failure(ValueError("not storage"))


def test_writing_names_the_file_the_cause_and_the_way_on() -> None:
    with pytest.raises(WriteError) as caught, writing("out/acts.h5", "run again with --resume"):
        raise RuntimeError(HDF5_FULL)
    assert str(caught.value) == (
        "no space left on device while writing out/acts.h5; free space and run again with --resume"
    )
    with pytest.raises(RuntimeError, match="shapes"), writing("x"):  # a bug stays a bug
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")


def test_atomic_write_on_a_full_disk_leaves_nothing(small_disk) -> None:
    disk = small_disk(64 << 10)
    target = disk.path / "big.bin"
    with pytest.raises(WriteError, match=r"^no space left on device while writing .*big\.bin; "):
        atomic_write(target, lambda tmp: tmp.write_bytes(b"x" * (256 << 10)))
    assert disk.files() == []
    atomic_write(target, lambda tmp: tmp.write_bytes(b"x" * 1000))
    assert disk.files() == ["big.bin"] and target.stat().st_size == 1000


def test_data_shapes_onto_a_full_disk_then_a_read_only_one(small_disk) -> None:
    disk = small_disk(48 << 10)
    out = disk.path / "shapes"
    done = innx("data", "shapes", str(out), "--n", "300", "--size", "32")
    line = assert_one_line_failure(done, "no space left on device while writing", str(out))
    assert line.endswith("free space and run again")
    assert disk.files() == []  # no half-written folder, no .partial
    disk.read_only()
    done = innx("data", "shapes", str(out), "--n", "3", "--size", "32")
    assert_one_line_failure(done, "read-only file system while writing", "write somewhere writable")


def test_render_and_analyze_onto_a_full_disk(tiny_pipeline, small_disk) -> None:
    tiny = tiny_pipeline
    disk = small_disk(4 << 10)
    png = disk.path / "samples.png"
    args = ["--rows", "0-3", "--invariance", str(tiny.invariance["pool"]), "--samples", "4"]
    done = innx("render", "samples", str(tiny.store), *args, "-o", str(png))
    assert_one_line_failure(done, "no space left on device while writing", str(png))
    assert disk.files() == []
    report = disk.path / "report"
    analyze = ["--invariance", f"pool={tiny.invariance['pool']}", "--samples", "8", "--draws", "2"]
    analyze += ["--judge-steps", "0"]  # no concepts to judge: the report is what is written
    done = innx("analyze", str(tiny.store), *analyze, "-o", str(report))
    assert_one_line_failure(done, "no space left on device while writing", str(report))
    assert disk.files() == []  # the report's temporary folder is gone too
    disk.read_only()
    done = innx("render", "samples", str(tiny.store), *args, "-o", str(png))
    assert_one_line_failure(done, "read-only file system while writing", str(png))
