"""The pool's side of operation processes (virtuned/server/pool.py): its frames, and
its one timer a process that serves a request's deadline however many requests that
process answers. The event loop's timers order each scenario; nothing is timed."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading

import msgspec
import pytest

from virtuned.server import pool
from virtuned.server.http import PROBLEM_JSON, Response
from virtuned.server.validation import Problem


@pytest.mark.parametrize("response, retiring", [
    (Response(200, b'{"xml":"<domain/>","warnings":[]}'), None),
    (Response(200, b"<domain/>", b"application/xml; charset=utf-8",
              ((b"virtuned-warnings", b"0"),)), None),
    (Response(422, b"{}", PROBLEM_JSON, (), "invalid-input"), "memory"),
    (Response(200, b""), "recycled"),
])
def test_an_answer_frame_read_whole_or_in_pieces(response, retiring):
    frame = pool.encode_answer(response, retiring)
    answers = []
    the_pool = _Pool(answered=lambda process, *answer: answers.append(answer))
    process = pool.OperationProcess(the_pool, 0)
    process.data_received(frame)
    for at in range(len(frame)):  # a byte at a time: nothing until the last
        process.data_received(frame[at:at + 1])
    assert answers == [(response, retiring)] * 2
    assert not process.buffer


@pytest.mark.parametrize("payload", [
    ("compile", "POST", "/v1/compile", {b"content-type": b"application/json",
                                        b"accept": b"application/xml, */*;q=0.1"},
     b'{"traits":["video qxl"]}', "f3a1c2"),
    ("profiles", "HEAD", "/v1/profiles", {}, b"", "client-chosen id \u00e9"),
    ("check", "POST", "/v1/check", {b"x-odd": b"\x00\xff, \x80"}, bytes(range(256)) * 800,
     "r"),
])
def test_a_request_frame_read_as_it_was_sent(payload):
    # through a socket pair as the operation process reads it: the 200 KB body over
    # several reads; headers, body and text as they were, no more, no less
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = threading.Thread(target=ours.sendall, args=(pool.encode_request(payload),))
        writer.start()
        received = pool._receive(theirs)
        writer.join()
    assert received == payload
    assert type(received[3]) is dict


def test_a_request_frame_of_another_shape_is_refused():
    frame = pool.encode_request(("compile", "POST", "/v1/compile", {}, b"", 7))
    with pytest.raises(msgspec.ValidationError):
        pool.decode_request(frame)


class _Pool:
    def __init__(self, answered):
        self.answered = answered


class _Transport:
    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(pool.decode_request(data))

    def abort(self):
        pass


def _scenario(steps, timeout=0.2):
    """A pool of one process (a real child, ``sleep``, for its deadline to kill) and
    its answers: ``steps`` are (seconds from the start, what to do with the pool)."""
    loop = asyncio.new_event_loop()
    child = subprocess.Popen(["sleep", "60"])
    try:
        the_pool = pool.Pool(None, 0, timeout, 8, 0)
        the_pool.loop, the_pool.spawn = loop, lambda: None
        process = pool.OperationProcess(the_pool, child.pid)
        process.transport = _Transport()
        the_pool.processes.add(process)
        the_pool.idle.append(process)
        replies = []
        start = loop.time()
        for at, step in steps:
            loop.call_at(start + at, step, the_pool, process, replies)
        loop.call_at(start + steps[-1][0] + 0.01, loop.stop)
        loop.run_forever()
        return process, replies, child.poll()
    finally:
        child.kill()
        child.wait()
        loop.close()


def _submit(name):
    return lambda the_pool, process, replies: the_pool.submit(
        ("compile", "POST", "/v1/compile", {}, name.encode(), name),
        lambda answer: replies.append((name, answer)))


def _answer(name):
    return lambda the_pool, process, replies: the_pool.answered(
        process, Response(200, name.encode()), None)


def test_a_process_timer_set_for_an_earlier_request_serves_the_next():
    # the timer set for "one" (at 0.2) goes off while "two" runs: set again for
    # "two"'s deadline (0.35), which "two" meets
    process, replies, ended = _scenario([
        (0.0, _submit("one")), (0.15, _answer("one")), (0.15, _submit("two")),
        (0.3, _answer("two"))])
    assert replies == [("one", Response(200, b"one")), ("two", Response(200, b"two"))]
    assert [request[-1] for request in process.transport.written] == ["one", "two"]
    assert ended is None and not process.gone


def test_the_request_past_its_deadline_is_504_and_its_process_killed():
    def too_late(the_pool, process, replies):
        replies.append(("gone by 0.45", process.gone))  # killed at 0.35, before this
    process, replies, ended = _scenario([
        (0.0, _submit("one")), (0.15, _answer("one")), (0.15, _submit("two")),
        (0.45, too_late)])
    assert replies[0] == ("one", Response(200, b"one"))
    assert replies[2] == ("gone by 0.45", True)
    name, problem = replies[1]
    assert name == "two" and isinstance(problem, Problem)
    assert problem.kind == "timeout"
    assert problem.message == "the operation did not finish within 0.2 s"
    assert process.gone and process.timer is None
