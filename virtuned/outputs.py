"""Writing what a command produces (``-o``, ``--write-lock``, ``fmt``).

A regular file is replaced in one step: the text goes to a new file beside it, which
takes the old one's mode and owner and is then renamed over it, so a reader sees the
old file or the new one, never half of either, and a failed write leaves the old
file as it was. A symbolic link is followed: its target is replaced, the link stays.
A device node, a FIFO, a socket or anything under /dev or /proc (``/dev/stdout``) is
written in place, never replaced. Errors are OSError, as the system gives them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile


def write(path: str, text: str) -> None:
    data = text.encode("utf-8")
    target = os.path.realpath(path)  # a link's target is what is replaced
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if path.startswith(("/dev/", "/proc/")) or target.startswith(("/dev/", "/proc/")) \
            or (info is not None and not stat.S_ISREG(info.st_mode)):
        _write_in_place(path, data)
    else:
        _replace(target, data, info)


def _write_in_place(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _replace(target: str, data: bytes, info: os.stat_result | None) -> None:
    directory, name = os.path.split(target)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            _take_mode_and_owner(stream.fileno(), info)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _take_mode_and_owner(handle: int, info: os.stat_result | None) -> None:
    """The replaced file's mode and owner (mkstemp makes 0600 files of our own); a
    new file's mode is what the umask gives, as open() would make it."""
    if info is None:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(handle, 0o666 & ~mask)
        return
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give files away
            os.fchown(handle, info.st_uid, info.st_gid)
    os.fchmod(handle, stat.S_IMODE(info.st_mode))  # after: chown clears set-id bits
