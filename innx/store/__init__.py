"""Files a person can open: HDF5 activation stores and run directories (safetensors + JSON)."""

from innx.store.activations import StoreWriter
from innx.store.checked import CheckedDataset
from innx.store.layout import FORMAT, VERSION, LayerSpec, StoreLayout
from innx.store.runs import RunFiles, read_run, sha256_file, write_run
from innx.store.shards import join_shards
from innx.store.view import ActivationStore

__all__ = [
    "FORMAT",
    "VERSION",
    "ActivationStore",
    "CheckedDataset",
    "LayerSpec",
    "RunFiles",
    "StoreLayout",
    "StoreWriter",
    "join_shards",
    "read_run",
    "sha256_file",
    "write_run",
]
