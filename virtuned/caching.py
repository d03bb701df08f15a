"""The one way virtuned keeps what it worked out: a bounded cache (least recently
used out first; the per-thread one on a compile's hottest path is emptied when full),
and for what comes from files, the files' stamps to check it by. What processes of
one server share (the host documents of fit) is a bounded directory, the Shelf.

A long-lived process (the HTTP service, a management app calling the library) sees
the same profiles, hosts and elements again and again; every cache here has a size
it never grows past, so no stream of distinct requests can make a process grow
without bound. Pure functions of small values use ``functools.lru_cache`` with a
``maxsize``, the standard library's form of the same rule.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

# SHA-256, for content hashes (cache keys, provenance, locks): CPython's own
# implementation where it has one, since importing hashlib first loads OpenSSL, which
# costs a command-line run more (about 10M instructions) than all it digests.
try:
    from _sha256 import sha256  # CPython 3.11
except ImportError:
    try:
        from _sha2 import sha256  # CPython 3.12 and later
    except ImportError:
        from hashlib import sha256


class Bounded:
    """A thread-safe cache of at most ``size`` entries; or, with ``weight`` (a
    function of a value: a whole number, at least 1), of entries whose weights add
    up to at most ``size``, for values of very different sizes (parsed hosts of 8
    CPUs and of 1024)."""

    def __init__(self, size: int, weight: Callable[[Any], int] | None = None):
        self.size, self._weight = size, weight
        self._entries: OrderedDict = OrderedDict()
        self._weights: dict = {}
        self.weight = 0  # of the entries held: their count without ``weight``
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            try:
                self._entries.move_to_end(key)
            except KeyError:
                return default
            return self._entries[key]

    def put(self, key: Hashable, value: Any) -> None:
        weight = 1 if self._weight is None else self._weight(value)
        with self._lock:
            self.weight += weight - self._weights.get(key, 0)
            self._entries[key], self._weights[key] = value, weight
            self._entries.move_to_end(key)
            while self.weight > self.size:
                gone, _ = self._entries.popitem(last=False)
                self.weight -= self._weights.pop(gone)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list:
        """The keys held now, least recently used first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weights.clear()
            self.weight = 0


class PerThread:
    """A cache of at most ``size`` entries of its own for each thread, for values
    that must not be shared between threads (lxml elements). It sits on a compile's
    hottest path, so a hit is one dictionary lookup: no lock, no order kept; a full
    cache is emptied, and what is still asked for is made again."""

    def __init__(self, size: int):
        self.size = size
        self._local = threading.local()

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        entries = getattr(self._local, "entries", None)
        if entries is None:
            entries = self._local.entries = {}
        value = entries.get(key)
        if value is None:
            if len(entries) >= self.size:
                entries.clear()
            value = entries[key] = make()
        return value


class Shelf:
    """Documents by their sha256, in a directory that several processes share (a
    server's workers and their operation processes), so that what one of them was
    sent the others find: about ``size`` bytes at most, the least recently used out
    first. Each process trims the directory after writing 1/16 of ``size`` since its
    last trim, so it holds at most ``size`` and that much for each process writing.
    A document is written whole before it appears under its name (a rename): a
    reader never sees part of one."""

    def __init__(self, directory: str | os.PathLike, size: int):
        self.directory, self.size = os.fspath(directory), size
        self._written = 0

    def get(self, digest: str) -> bytes | None:
        path = os.path.join(self.directory, digest)
        try:
            with open(path, "rb") as document:
                data = document.read()
            os.utime(path)  # used: the last to go
        except FileNotFoundError:
            return None
        return data

    def put(self, digest: str, data: bytes) -> None:
        path = os.path.join(self.directory, digest)
        try:
            os.utime(path)
            return  # there already
        except FileNotFoundError:
            pass
        partial = os.path.join(self.directory, f".{digest}.{os.getpid()}")
        with open(partial, "wb") as document:
            document.write(data)
        os.replace(partial, path)
        self._written += len(data)
        if self._written * 16 > self.size:
            self._written = 0
            self.trim()

    def trim(self) -> None:
        """The least recently used documents out, until the rest fit ``size``."""
        held = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    info = entry.stat()
                except FileNotFoundError:  # another process trimmed it
                    continue
                held.append((info.st_mtime_ns, info.st_size, entry.path))
        total = sum(size for _, size, _ in held)
        for _, size, path in sorted(held):
            if total <= self.size:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            total -= size


def cache_home() -> str | None:
    """virtuned's directory in the user's cache, for what a run keeps for the next:
    ``$VIRTUNED_CACHE_DIR``, else ``$XDG_CACHE_HOME/virtuned`` (``~/.cache/virtuned``);
    None when ``VIRTUNED_CACHE_DIR`` is empty (keep nothing)."""
    chosen = os.environ.get("VIRTUNED_CACHE_DIR")
    if chosen is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        chosen = os.path.join(base, "virtuned")
    return chosen or None


def owned(directory: str | os.PathLike) -> bool:
    """Whether a directory belongs to this user alone: someone else's is never
    trusted (nor written to), and neither is one that others may write in (what it
    holds is loaded as code: pickled tables, compiled methods). Where there are no
    user ids, whether it exists."""
    try:
        found = os.stat(directory)
    except OSError:
        return False
    getuid = getattr(os, "getuid", None)
    return getuid is None or (found.st_uid == getuid() and not found.st_mode & 0o022)


def stamp(path: str | os.PathLike) -> tuple[int, int, int] | None:
    """What changes when a file (or directory) changes: its modification time, size
    and inode; None when it is not there."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def unchanged(stamps) -> bool:
    """Whether every ``(path, stamp)`` still holds."""
    return all(stamp(path) == seen for path, seen in stamps)
