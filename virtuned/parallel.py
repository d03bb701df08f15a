"""Work shared among forked processes: a fleet's hosts, evaluated on every core.

A fork, not a pool of spawned processes: the children start with everything the
parent holds (the parsed profiles, the cache of parsed hosts) and need nothing sent
but the index of their share. Each sends back its answers and what it added to the
shared cache, which the parent keeps, so the next request finds it warm. A child
ends with its parent (PR_SET_PDEATHSIG): an operation killed at its deadline
(server/pool.py) takes its helpers with it.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal

PR_SET_PDEATHSIG = 1


def map_shared(function, items: list, workers: int, cache) -> list:
    """``function(share)`` for ``workers`` contiguous shares of ``items``, the first
    in this process, the others in forked children; the results concatenated in the
    order of ``items``. ``cache`` (a caching.Bounded) gets what the children put in
    theirs. An exception in a child is raised here, as if raised by the parent."""
    size = -(-len(items) // workers)
    shares = [items[i:i + size] for i in range(0, len(items), size)]
    children = [_fork(function, share, cache) for share in shares[1:]]
    results = list(function(shares[0]))
    failure = None
    for pid, reader in children:
        with os.fdopen(reader, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        try:
            ok, value, added = pickle.loads(data)
        except Exception:  # noqa: BLE001 - it died without a word: say so
            ok, value, added = False, RuntimeError("a helper process ended unexpectedly"), ()
        for key, entry in added:
            cache.put(key, entry)
        if not ok:
            failure = failure or value
        elif failure is None:
            results += value
    if failure is not None:
        raise failure
    return results


def _fork(function, share: list, cache) -> tuple[int, int]:
    reader, writer = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        os.close(writer)
        return pid, reader
    code = 0
    try:  # the child: never returns
        # What the parent holds, out of the collector's sight (at no cost: lists are
        # moved, not walked): a collection would touch, and so copy, all its pages.
        gc.freeze()
        os.close(reader)
        _die_with_parent(parent)
        before = set(cache.keys())
        try:
            message = (True, list(function(share)), None)
        except Exception as exc:  # noqa: BLE001 - raised in the parent
            message = (False, exc, None)
        added = tuple((key, cache.get(key)) for key in cache.keys() if key not in before)
        data = pickle.dumps((message[0], message[1], added), pickle.HIGHEST_PROTOCOL)
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # noqa: BLE001 - the parent sees the pipe close
        code = 70
    os._exit(code)


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent ends (Linux); at once if it already has."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(70)
