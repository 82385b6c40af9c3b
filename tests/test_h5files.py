"""``ProcessFile``: one handle per process, opened on first use; a pickled copy holds none."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import h5py
import numpy as np

from innx.h5files import STORE_READ, ProcessFile


def _read_in_child(file: ProcessFile, parent_id: int, queue: multiprocessing.Queue) -> None:
    handle = file.get()  # forked with the parent's handle open: this process opens its own
    queue.put((handle.id.id != parent_id, handle["x"][:].tolist()))
    file.close()


def test_a_forked_process_opens_its_own_handle_and_leaves_the_parents_open(tmp_path: Path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(4)
    file = ProcessFile(path, **STORE_READ)
    parent = file.get()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(file, parent.id.id, queue))
    child.start()
    own, values = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and own and values == [0, 1, 2, 3]
    assert parent.id.valid and file.get() is parent  # the child's close left ours open
    file.close()
    assert not parent.id.valid
    assert file.get()["x"][2] == 2  # opened again on use


def test_a_pickled_copy_carries_the_path_and_options_only(tmp_path: Path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    file = ProcessFile(path, **STORE_READ)
    file.get()
    copy = pickle.loads(pickle.dumps(file))
    assert copy._file is None and copy.options == STORE_READ
    assert copy.get()["x"][1] == 1 and copy.get() is not file.get()
    copy.close()
    file.close()
