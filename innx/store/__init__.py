"""Files a person can open: HDF5 activation stores and run directories (safetensors + JSON)."""

from innx.store.runs import RunFiles, read_run, sha256_file, write_run

__all__ = ["RunFiles", "read_run", "sha256_file", "write_run"]
