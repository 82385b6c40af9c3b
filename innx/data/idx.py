"""The IDX file format of MNIST (``train-images-idx3-ubyte``, optionally gzipped).

An IDX file is a big-endian header, then the array in C order: two zero bytes, a type code
(``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
float64), the number of dimensions, one uint32 per dimension. MNIST images have magic
``0x00000803`` (uint8, 3 dims ``[N, 28, 28]``), labels ``0x00000801`` (uint8, ``[N]``).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from innx.data.files import read_bytes
from innx.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _parse_header(path: Path, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, header length)`` from the first bytes of an IDX file."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); download it again")
    ndim = head[3]
    end = 4 + 4 * ndim
    if len(head) < end:
        raise DataError(f"{path} is truncated (incomplete IDX header); download it again")
    shape = struct.unpack(f">{ndim}I", head[4:end])
    return np.dtype(_TYPES[head[2]]), tuple(shape), end


def read_idx_header(path: Path) -> tuple[int, tuple[int, ...]]:
    """``(magic, shape)`` of an IDX file, reading only its first bytes (gunzipping ``.gz``)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                head = f.read(4 + 4 * 255)
        else:
            with open(path, "rb") as f:
                head = f.read(4 + 4 * 255)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}; download it again") from exc
    _, shape, _ = _parse_header(path, head)
    return struct.unpack(">I", head[:4])[0], shape


def read_idx(path: Path, magic: int | None = None) -> NDArray[np.generic]:
    """The array stored in an IDX file, in native byte order; ``DataError`` when the file is not
    IDX, has another ``magic`` than expected, or is truncated."""
    data = read_bytes(path)
    dtype, shape, start = _parse_header(path, data[:1024])
    found = struct.unpack(">I", data[:4])[0]
    if magic is not None and found != magic:
        raise DataError(
            f"{path} has IDX magic 0x{found:08x}, expected 0x{magic:08x}; "
            "is it the right file (images vs labels)?"
        )
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - start != count * dtype.itemsize:
        raise DataError(
            f"{path} holds {len(data) - start} bytes of data for an array of shape {shape}; "
            "the file is truncated or corrupt, download it again"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)
