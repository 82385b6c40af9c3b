"""``--device`` in real processes: a command says once, on stderr, which device it runs on, and
what it writes records that device, resolved (``cpu``, ``cuda:0``), beside the ``auto`` asked for.
"""

from __future__ import annotations

import json

from conftest import run_innx as innx

from innx.device import device_line, resolve_device
from innx.store import ActivationStore

AUTO = str(resolve_device("auto"))  # what auto is on this machine: cpu, or cuda:0 on a GPU


def test_extract_says_its_device_once_and_the_store_records_it(tmp_path):
    store = tmp_path / "a.h5"
    args = ["shapes:n=20,size=32", "--backbone", "smallcnn", "--layer", "pool", "-o", str(store)]
    done = innx("extract", *args)
    assert done.stderr.count("innx: using device") == 1, done.stderr
    assert device_line(resolve_device("auto")) in done.stderr.splitlines()
    with ActivationStore(store) as acts:
        assert acts.metadata["device"] == AUTO
        assert acts.metadata["extract"]["device"] == "auto"  # what was asked
    again = innx("extract", *args, "--device", "cpu", "--overwrite")
    assert again.stderr.splitlines().count("innx: using device cpu") == 1, again.stderr
    with ActivationStore(store) as acts:
        assert acts.metadata["device"] == acts.metadata["extract"]["device"] == "cpu"


def test_a_fit_says_its_device_once_and_the_manifest_records_it(synthetic_store, tmp_path):
    run = tmp_path / "inv"
    args = [str(synthetic_store), "--layer", "fc", "--steps", "2", "--batch-size", "64"]
    done = innx("fit", "invariance", *args, "-o", str(run))
    assert done.stderr.count("innx: using device") == 1, done.stderr
    assert device_line(resolve_device("auto")) in done.stderr.splitlines()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["device"] == AUTO and manifest["fit"]["device"] == "auto"
