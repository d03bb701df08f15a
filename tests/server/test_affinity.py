"""``serve --cpu-affinity`` (virtuned/server/affinity.py): the CPUs each of the
server's processes ends up allowed, read from the kernel; nothing is timed."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from tests.server.harness import running_server
from virtuned.server import affinity
from virtuned.server.app import Limits, Service

ALLOWED = sorted(os.sched_getaffinity(0))


@pytest.mark.parametrize("allowed, taken, number, cpu", [
    ([0, 1], {}, 0, 0),
    ([0, 1], {}, 1, 1),  # started together, neither sees the other: still apart
    ([0, 1], {0: 1}, 1, 1),
    ([0, 1], {0: 1, 1: 1}, 2, 0),  # more workers than CPUs: round the CPUs again
    ([0, 1], {0: 1}, 2, 1),  # the replacement of the worker on CPU 1 (number 2)
    ([2, 5, 7], {5: 1}, 4, 7),  # a cpuset's CPUs, not 0..n
    ([3], {3: 4}, 9, 3),
])
def test_a_worker_takes_the_cpu_fewest_siblings_are_on(allowed, taken, number, cpu):
    assert affinity.choose(allowed, Counter(taken), number) == cpu


def test_without_the_option_every_process_may_use_every_cpu():
    with running_server("--workers", "2") as server:
        workers = _workers(server.process.pid, 2)
        assert [_cpus(w) for w in workers] == [ALLOWED] * 2
        assert [_cpus(p) for w in workers for p in _operations(w, 2)] == [ALLOWED] * 4


def test_each_worker_and_its_operation_processes_on_one_cpu():
    with running_server("--workers", "2", "--cpu-affinity") as server:
        assert _cpus(server.process.pid) == ALLOWED  # the supervisor is left alone
        workers = _workers(server.process.pid, 2)
        assert sorted(_cpus(w) for w in workers) == sorted(
            [[ALLOWED[0]], [ALLOWED[1 % len(ALLOWED)]]])
        for worker in workers:
            assert [_cpus(p) for p in _operations(worker, 2)] == [_cpus(worker)] * 2

        # a worker that dies is replaced on a CPU no live worker is on (with two
        # CPUs, the one it left), by the count of the CPUs its siblings are on,
        # whatever its number says (3: the first CPU's turn)
        gone, kept = workers[-1], _cpus(workers[0])
        free = [[cpu] for cpu in ALLOWED if [cpu] != kept] or [kept]
        os.kill(gone, signal.SIGKILL)
        replaced = [w for w in _workers(server.process.pid, 2, without=gone)
                    if w != workers[0]]
        assert _cpus(replaced[0]) in free
        assert ([_cpus(p) for p in _operations(replaced[0], 2)]
                == [_cpus(replaced[0])] * 2)
        server.assert_serving()


def test_one_worker_runs_on_the_first_cpu_it_may_use():
    with running_server("--cpu-affinity") as server:
        assert _cpus(server.process.pid) == [ALLOWED[0]]
        assert ([_cpus(p) for p in _operations(server.process.pid, 2)]
                == [[ALLOWED[0]]] * 2)
        answer = server.client().post(
            "/v1/compile", json={"traits": ["video qxl"]},
            headers={"Content-Type": "application/json"})
        assert answer.status_code == 200


def test_a_fit_spreads_over_every_allowed_cpu_and_comes_back(monkeypatch):
    # its helper processes fork from the operation process during api.fit
    seen = []

    def fit(**kwargs):
        seen.append(sorted(os.sched_getaffinity(0)))
        return []

    monkeypatch.setattr("virtuned.api.fit", fit)
    service = Service((), Limits())
    service.spread = frozenset(ALLOWED)
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {ALLOWED[-1]})
    try:
        answer = service.answer("fit", "POST", "/v1/fit",
                                {b"content-type": b"application/json"},
                                b'{"hosts": ["<capabilities/>"]}', "id")
        after = sorted(os.sched_getaffinity(0))
    finally:
        os.sched_setaffinity(0, own)
    assert (answer.status, answer.body) == (200, b"[]")
    assert seen == [ALLOWED]
    assert after == [ALLOWED[-1]]


def test_everywhere_comes_back_after_an_error():
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {ALLOWED[0]})
    try:
        with pytest.raises(KeyError):
            with affinity.everywhere(frozenset(ALLOWED)):
                assert sorted(os.sched_getaffinity(0)) == ALLOWED
                raise KeyError
        assert sorted(os.sched_getaffinity(0)) == [ALLOWED[0]]
        with affinity.everywhere(None):  # not pinned: left as it is
            assert sorted(os.sched_getaffinity(0)) == [ALLOWED[0]]
    finally:
        os.sched_setaffinity(0, own)


# -- the server's processes, from /proc

def _cpus(pid: int) -> list[int]:
    return sorted(os.sched_getaffinity(pid))


def _children(pid: int) -> list[int]:
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            children += [int(child) for child in listing.read().split()]
    return sorted(children)


def _command(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read()


def _workers(supervisor: int, count: int, without: int | None = None) -> list[int]:
    """The supervisor's ``count`` workers (not multiprocessing's resource tracker),
    each once it has its operation processes (and so its CPU)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [pid for pid in _children(supervisor) if pid != without
                   and b"spawn_main" in _command(pid)]
        if len(workers) == count and all(len(_children(w)) >= 2 for w in workers):
            return workers
        time.sleep(0.05)
    raise AssertionError(f"no {count} workers with their operation processes")


def _operations(worker: int, count: int) -> list[int]:
    operations = _children(worker)
    assert len(operations) == count
    return operations
