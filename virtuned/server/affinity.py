"""``virtuned serve --cpu-affinity``: each server worker, and so each operation process
it forks (a fork inherits it), kept on one CPU of those the server may use.

A request goes through two processes, the worker that reads and writes its HTTP and
the operation process that compiles it, and they take turns: on one CPU they share its
caches (and the pages a fork shares: the interpreter, the frozen heap), where the
kernel would otherwise move them between CPUs and each would start cold. Worker i is
meant for CPU i of the allowed set (modulo its size); one that replaces a worker that
ended takes the CPU fewest of its live siblings are on. Off by default: see
docs/server.md#cpu-affinity for when it pays.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import multiprocessing
import os
import re
from collections import Counter

LOG = logging.getLogger("virtuned.server")


def pin_worker() -> int:
    """Keep this worker on one CPU of those it may use now; that CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    cpu = choose(allowed, Counter(_sibling_cpus()), _worker_number())
    os.sched_setaffinity(0, {cpu})
    LOG.info("worker kept on CPU %d", cpu, extra={"fields": {"cpu": cpu,
                                                             "allowed": allowed}})
    return cpu


def choose(allowed: list[int], taken: Counter, number: int) -> int:
    """The CPU of ``allowed`` that fewest sibling workers are on (``taken``: CPU ->
    workers); of those, the first from ``allowed[number % len(allowed)]`` on, so that
    workers that start together, each not yet seeing the others, still spread out."""
    start = number % len(allowed)
    in_turn = allowed[start:] + allowed[:start]
    return min(in_turn, key=lambda cpu: taken[cpu])


def _worker_number() -> int:
    """This worker's number among those its supervisor started, from 0: uvicorn's
    workers are ``SpawnProcess-N`` (N from 1, counting replacements on); a server
    of one worker runs it in its own process: 0."""
    found = re.search(r"-(\d+)$", multiprocessing.current_process().name)
    return int(found.group(1)) - 1 if found else 0


def _sibling_cpus():
    """The CPU of each other child of this worker's supervisor that is kept on one
    (its other workers; not yet started or not pinned, a sibling counts nowhere).
    A worker that has no supervisor (``--workers 1``) has no siblings."""
    if multiprocessing.parent_process() is None:
        return
    for pid in _children(os.getppid()):
        if pid == os.getpid():
            continue
        try:
            cpus = os.sched_getaffinity(pid)
        except OSError:  # gone meanwhile
            continue
        if len(cpus) == 1:
            yield next(iter(cpus))


def _children(parent: int) -> list[int]:
    """The processes ``parent``'s threads have started (uvicorn's supervisor starts
    its workers from its main thread). A kernel without the listing shows none: the
    workers' numbers alone spread them then."""
    children = []
    for task in glob.glob(f"/proc/{parent}/task/*/children"):
        try:
            with open(task) as listing:
                children += [int(pid) for pid in listing.read().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return children


@contextlib.contextmanager
def everywhere(cpus: frozenset[int] | None):
    """This process on every CPU of ``cpus`` (the server's allowed set) meanwhile, and
    back on its own after: for an operation that forks helpers to run at once (fit),
    which would otherwise inherit one CPU. ``None``: not pinned, nothing to do."""
    if cpus is None:
        yield
        return
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, own)
