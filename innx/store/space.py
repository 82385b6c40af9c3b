"""Room for a new store: refused at once when it cannot fit, created sparse, then reserved.

HDF5 writes every chunk of a checksummed dataset when it allocates it at creation (zeros, whose
checksum is zero too): a write of the whole store before any row is written. :class:`_NewFile`
creates the file through HDF5's file-object driver and leaves those zeros unwritten (a new file
reads as zeros anyway); ``posix_fallocate`` then reserves the store's blocks, so a store that does
not fit fails at creation, and is removed, and no row written later can meet a full disk.
"""

from __future__ import annotations

import bisect
import errno
import io
import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from innx.store.layout import StoreLayout
from innx.writes import REASONS, WriteError, is_write_failure, write_errno, write_failed, writing


def check_room(path: Path, layout: StoreLayout) -> None:
    """Refuse at once a store that cannot fit in the free space (counting a file it replaces)."""
    free = _free(path) + (path.stat().st_blocks * 512 if path.is_file() else 0)
    if layout.nbytes() > free:
        raise _no_room(path, layout, free)


def _free(path: Path) -> int:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return 1 << 62  # unknown: let the writes tell


def _no_room(path: Path, layout: StoreLayout, free: int) -> WriteError:
    need = f"the store needs {_size(layout.nbytes(), up=True)}, {_size(free)} free"
    return WriteError(
        f"{REASONS[errno.ENOSPC]} while writing {path} ({need}); free space and run again"
    )


def _size(n: int, up: bool = False) -> str:
    """``n`` bytes in MiB (KiB below one MiB), rounded up or to the nearest."""
    unit, name = (1 << 20, "MiB") if n >= 1 << 20 else (1 << 10, "KiB")
    return f"{-(-n // unit) if up else round(n / unit)} {name}"


def new_store_file(
    path: Path, layout: StoreLayout, create: Callable[[h5py.File], None]
) -> h5py.File:
    """Create store ``path``, ``create(file)`` its datasets, reserve its space and open it for
    writing; on failure remove it (it holds nothing to resume) and say why in one line."""
    with writing(path, "run again"):
        target = _NewFile(path)
    try:
        with h5py.File(target, "w", locking=False) as file:
            create(file)
        target.close()
        _reserve(path)
        return h5py.File(path, "r+", locking=False, rdcc_nbytes=0)
    except BaseException as err:
        target.close()
        with suppress(OSError):
            path.unlink(missing_ok=True)
        cause = target.error or err
        if write_errno(cause) in (errno.ENOSPC, errno.EDQUOT):
            raise _no_room(path, layout, _free(path)) from err
        if is_write_failure(cause):
            raise write_failed(cause, path, "run again") from err
        raise


class _NewFile(io.RawIOBase):
    """A new file, for HDF5's ``fileobj`` driver, that leaves blocks of zeros unwritten.

    HDF5 writes every chunk of a checksummed dataset when it allocates it at creation: zeros,
    whose checksum is zero too. The file being new, those bytes read as zeros already; written,
    they would cost a write of the whole store before its rows are written. A block is skipped
    only when it is all zeros and overlaps nothing written, so the file reads back exactly as
    HDF5 wrote it. A failed write is kept in ``error`` (HDF5 reports it without its errno), and
    the writes after it are dropped, so that HDF5 can close the file, which is then removed.
    """

    SMALLEST = 4096
    """Blocks shorter than this are written (metadata; not worth checking)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        self._at = 0
        self._starts: list[int] = []  # the extents written: disjoint, sorted
        self._ends: list[int] = []
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at}.get(whence)
        self._at = offset + (os.fstat(self._fd).st_size if base is None else base)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self._fd, len(view), self._at)
        view[: len(data)] = data
        view[len(data) :] = bytes(len(view) - len(data))  # past the end: zeros, as HDF5 expects
        self._at += len(view)
        return len(view)

    def write(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start, stop = self._at, self._at + len(view)
        zeros = len(view) >= self.SMALLEST and not np.frombuffer(view, np.uint8).any()
        if self.error is not None:
            pass  # the file is removed
        elif not zeros or self._overlaps(start, stop):
            try:
                os.pwrite(self._fd, view, start)
            except OSError as err:
                self.error = err
                raise
            self._add(start, stop)
        self._at = stop
        return len(view)

    def _overlaps(self, start: int, stop: int) -> bool:
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] > start:
            return True
        return i + 1 < len(self._starts) and self._starts[i + 1] < stop

    def _add(self, start: int, stop: int) -> None:
        """Add ``[start, stop)``, merged with the extents it touches."""
        i = bisect.bisect_left(self._ends, start)
        j = bisect.bisect_right(self._starts, stop)
        if i < j:
            start, stop = min(start, self._starts[i]), max(stop, self._ends[j - 1])
        self._starts[i:j], self._ends[i:j] = [start], [stop]

    def truncate(self, size: int | None = None) -> int:
        size = self._at if size is None else size
        if self.error is None:
            os.ftruncate(self._fd, size)
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
        super().close()


def _reserve(path: Path) -> None:
    """Allocate the file's blocks (without writing them), so that no write of a row can meet a
    full disk; skipped where the file system (or the operating system: macOS) cannot."""
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        allocate(fd, 0, os.fstat(fd).st_size)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)
