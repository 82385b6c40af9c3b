"""One writer at a time: an exclusive ``flock`` on a sidecar ``<path>.lock`` file.

``innx extract`` locks its store (``acts.h5.lock``), a fit its run directory (``runs/t.lock``,
beside the directory, so that ``--overwrite`` can remove the directory while holding the lock).

The lock is held on an open file descriptor, so the operating system frees it when the writer
exits for any reason (``kill -9`` included): a crashed extraction never blocks ``--resume``. The
lock file holds the writer's pid, for the message a second writer gets. Locks are per open file,
so a second writer in the same process is refused too.

HDF5's own file locking is not used (files are opened with ``locking=False``): it fails on some
network file systems and would stop ``innx info`` from reading a store while it is being written.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from innx.errors import InnxError, StoreError


def lock_path(path: Path) -> Path:
    """The sidecar lock file of ``path``: ``acts.h5`` → ``acts.h5.lock``, ``runs/t`` →
    ``runs/t.lock``."""
    return path.with_name(path.name + ".lock")


class WriteLock:
    """An exclusive, non-blocking lock on ``<path>.lock``; :meth:`release` unlinks the file.

    A second writer gets ``error`` (a :class:`~innx.errors.StoreError` unless told otherwise)
    naming ``path`` and the holder's pid; ``what`` names ``path`` in the message for a file
    system that cannot lock (``store``, ``run directory``).

    >>> import tempfile
    >>> store = Path(tempfile.mkdtemp()) / "acts.h5"
    >>> lock = WriteLock(store)
    >>> WriteLock(store)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    innx.errors.StoreError: ...acts.h5 is being written by another process (pid ...); wait for it or stop it
    >>> lock.release()
    >>> WriteLock(store).release()
    """

    def __init__(
        self, path: Path, *, error: type[InnxError] = StoreError, what: str = "store"
    ) -> None:
        self.path = lock_path(path)
        self._fd: int | None = None
        for _ in range(10):  # the holder may unlink the file between our open and our lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = _read_pid(fd)
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise error(
                        f"{path} is being written by another process (pid {holder}); "
                        "wait for it or stop it"
                    ) from None
                raise error(
                    f"cannot lock {self.path} ({os.strerror(err.errno or 0)}); "
                    f"write the {what} on a local file system"
                ) from err
            if _same_file(fd, self.path):
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                except OSError:  # a full disk: no lock left held by a descriptor nobody owns
                    os.close(fd)
                    raise
                self._fd = fd
                return
            os.close(fd)  # locked a file that was unlinked meanwhile; take the new one
        raise error(f"cannot lock {self.path}: it keeps being replaced; try again")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlink the lock file and release the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown"


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
