"""Writing output so that a failed write is a failure: one line, nothing half written left behind.

A full disk, a read-only target, a quota or a missing permission can surface as an ``OSError``
(Python's own writes), as a ``RuntimeError`` (h5py: "file write failed … errno = 28"; torch:
"PytorchStreamWriter failed writing file") or only when a file is closed. :func:`writing` turns
any of these inside its block into a :class:`WriteError` that names the file, the cause and the
fix, e.g.::

    no space left on device while writing runs/t/model.safetensors; free space and run again

:func:`atomic_write` writes a file under a temporary name beside its target and renames it into
place, so a reader never sees half a file and a failure leaves no ``.tmp`` file to keep the disk
full. The command line turns a ``WriteError`` (an :class:`~innx.errors.InnxError`) into exit 1.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from innx.errors import ConfigError, InnxError, first_line

REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error",
}
"""The write failures a user can fix, by errno, as the message names them."""
ONLY_ON_WRITE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
"""Errnos that only a write raises: wherever they come from, the output could not be written."""

_FIXES = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space",
    errno.EFBIG: "write to another file system",
    errno.EROFS: "write somewhere writable",
    errno.EACCES: "write somewhere writable",
    errno.EPERM: "write somewhere writable",
    errno.EIO: "check the disk",
}
_HDF5_ERRNO = re.compile(r"errno = (\d+)")
_WRITE_WORDS = ("write failed", "failed writing", "unable to write", "can't write", "flush")
_TORCH_SHORT_WRITE = "unexpected pos"  # torch's zip writer when its bytes did not all arrive


class WriteError(InnxError):
    """Output that could not be written (full disk, read-only, no permission); says the fix."""


def write_errno(exc: BaseException) -> int | None:
    """The errno behind a failed write: ``OSError.errno``, or the one quoted in an h5py,
    safetensors or torch message (``errno = 28``, ``No space left on device (os error 28)``),
    looked for in ``exc`` and in the exceptions it was raised from or while handling (torch
    raises "unexpected pos 704 vs 598" while handling the ``OSError`` of the write); ``None``
    when there is none."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno:
            return link.errno
        text = str(link)
        found = _HDF5_ERRNO.search(text)
        if found:
            return int(found.group(1))
        for code in REASONS:
            if os.strerror(code) in text:
                return code
    return None


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the storage failing (not a bug): an ``OSError``, an h5py or torch
    ``RuntimeError`` that reports a failed write, or any error quoting a write failure's errno
    (safetensors' ``SafetensorError``)."""
    if isinstance(exc, InnxError):
        return False
    if isinstance(exc, OSError):
        return True
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and (
        _TORCH_SHORT_WRITE in text or any(word in text for word in _WRITE_WORDS)
    ):
        return True
    return write_errno(exc) in REASONS


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, then what it was raised from or while handling, and so on (at most 8)."""
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(links) < 8:
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


def write_failed(exc: BaseException, path: str | os.PathLike[str], then: str) -> WriteError:
    """The one-line error for ``exc`` raised while writing ``path``; ``then`` says how to go on
    once fixed (``"run again"``, ``"run again with --resume"``)."""
    code = write_errno(exc)
    reason = REASONS.get(code or 0) or first_line(exc)
    fix = _FIXES.get(code or 0, "fix the cause")
    return WriteError(f"{reason} while writing {path}; {fix} and {then}")


@contextmanager
def writing(
    path: str | os.PathLike[str], then: str | Callable[[], str] = "run again"
) -> Iterator[None]:
    """Turn a failed write inside the block into a :class:`WriteError` naming ``path``;
    ``then`` may be a function, asked when the write fails (whether a checkpoint is there to
    resume from, say).

    >>> with writing("/nonexistent/dir/x.txt"):  # doctest: +ELLIPSIS
    ...     _ = open("/nonexistent/dir/x.txt", "w")
    Traceback (most recent call last):
    innx.writes.WriteError: FileNotFoundError: [Errno 2] No such file or directory: ... while writing /nonexistent/dir/x.txt; fix the cause and run again
    """
    try:
        yield
    except Exception as exc:
        if not is_write_failure(exc):
            raise
        raise write_failed(exc, path, then if isinstance(then, str) else then()) from exc


def temporary_sibling(path: Path) -> Path:
    """A new, empty, hidden file beside ``path`` (``.name.XXXX.tmp``), on the same file system
    so that :func:`os.replace` can move it into place."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(name)


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], object], then: str = "run again"
) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, sync it, then rename it to ``path``.

    Whatever fails, no temporary file is left and ``path`` is either untouched or complete; a
    failed write is a :class:`WriteError` naming ``path``.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "hello.txt"
    >>> _ = atomic_write(target, lambda tmp: tmp.write_text("hi"))
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('hi', ['hello.txt'])
    """
    path = Path(path)
    with writing(path, then):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_sibling(path)
        try:
            write(tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def check_output_folder(out: Path, overwrite: bool, marker: str, what: str) -> None:
    """Refuse output folder ``out`` when it exists, unless ``overwrite`` and it is an earlier
    output of the same command (it holds ``marker``) or empty: ``--overwrite`` never deletes
    anything else. ``what`` names such an output (``"report of innx analyze"``)."""
    if not out.exists():
        return
    if not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it, or choose another -o")
    if not out.is_dir() or not ((out / marker).is_file() or not any(out.iterdir())):
        raise ConfigError(
            f"{out} exists and is not a {what}; --overwrite replaces only those, choose another -o"
        )


def atomic_folder(
    out: Path, overwrite: bool, marker: str, what: str, write: Callable[[Path], list[str]]
) -> list[str]:
    """``write`` the files of output folder ``out`` into a temporary sibling, then put it in
    ``out``'s place (checked again with :func:`check_output_folder`: the work took a while).
    Whatever fails, nothing half-written is left; returns what ``write`` returns."""
    check_output_folder(out, overwrite, marker, what)
    tmp = out.parent / f".{out.name}.tmp-{time.time_ns()}"
    try:
        with writing(out):  # a full disk: one line, and no half-written output left
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            files = write(tmp)
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files
